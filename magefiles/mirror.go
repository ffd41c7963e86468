//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Mirror fills devcloud's local registry mirror.
type Mirror mg.Namespace

// Push builds OCCM and Cinder CSI and pushes every image capilab built into devcloud's registry mirror.
func (Mirror) Push(ctx context.Context) error { return run(ctx, "mirror:push") }
