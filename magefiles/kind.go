//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Kind builds the kind node image locally for machines without a registry.
type Kind mg.Namespace

// Image builds kindest/node:<pinned>-local from source (cached by content).
func (Kind) Image(ctx context.Context) error { return notImplemented("kind:image") }
