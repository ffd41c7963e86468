//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Kind builds the kind node image locally for machines without a registry.
type Kind mg.Namespace

// Image builds kindest/node:<pinned>-local from source (cached by content; a no-op when current).
func (Kind) Image(ctx context.Context) error { return run(ctx, "kind:image") }

// NodeImage prints the node image kind clusters use here (KIND_NODE_IMAGE, else upstream when reachable, else local) and why.
func (Kind) NodeImage(ctx context.Context) error { return run(ctx, "kind:nodeimage") }
