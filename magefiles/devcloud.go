//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"

	"github.com/capilab/capilab/internal/devcloud"
)

// Devcloud runs a local OpenStack (Keystone, Glance, Neutron, Nova, Octavia, Cinder) for tests.
type Devcloud mg.Namespace

// Up installs (once) and starts devcloud; idempotent, quick when it already runs.
func (Devcloud) Up(ctx context.Context) error { return devcloud.New().Up(ctx) }

// Down stops every devcloud process it started.
func (Devcloud) Down(ctx context.Context) error { return devcloud.New().Down(ctx) }

// Status shows each devcloud service and API; fails unless all run.
func (Devcloud) Status(ctx context.Context) error { return devcloud.New().Status(ctx) }

// Env prints the shell exports that point OpenStack clients at devcloud (OS_CLOUD=devcloud-member).
func (Devcloud) Env(ctx context.Context) error { return devcloud.New().Env(ctx) }

// Reset wipes devcloud's databases and images and starts it from scratch.
func (Devcloud) Reset(ctx context.Context) error { return devcloud.New().Reset(ctx) }
