//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Devcloud runs a local OpenStack (Keystone, Glance, Neutron, Nova, Octavia, Cinder) for tests.
type Devcloud mg.Namespace

// Up installs (once) and starts devcloud; idempotent.
func (Devcloud) Up(ctx context.Context) error { return notImplemented("devcloud:up") }

// Down stops every devcloud process it started.
func (Devcloud) Down(ctx context.Context) error { return notImplemented("devcloud:down") }
