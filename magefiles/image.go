//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Image registers CAPI node images in Glance.
type Image mg.Namespace

// Register registers the CAPI node image for KUBERNETES_VERSION in Glance (a no-op when it is there).
func (Image) Register(ctx context.Context) error {
	return run(ctx, "image:register")
}
