//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/capilab/capilab/internal/lab"
)

// Config shows and checks the settings model.
type Config mg.Namespace

// Show prints the effective settings and where each value came from (secrets redacted).
func (Config) Show(ctx context.Context) error { return run(ctx, lab.ConfigShow) }
