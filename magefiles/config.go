//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Config shows and checks the settings model.
type Config mg.Namespace

// Show prints the effective settings and where each value came from (secrets redacted).
func (Config) Show(ctx context.Context) error { return run(ctx, "config:show") }

// Check validates the settings and authenticates against the cloud (OS_CLOUD).
func (Config) Check(ctx context.Context) error { return run(ctx, "config:check") }
