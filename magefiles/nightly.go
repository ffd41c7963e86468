//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Nightly runs the whole job for nightly CI.
type Nightly mg.Namespace

// Run creates the management cluster (or reuses it), CLUSTERS, checks them (SONOMODE), always deletes them, cleans up and asserts no leaks; report in ARTIFACTS_DIR/nightly/.
func (Nightly) Run(ctx context.Context) error { return run(ctx, "nightly:run") }
