//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Mgmt manages the kind management cluster and its Cluster API controllers.
type Mgmt mg.Namespace

// Create creates the kind management cluster, installs Cluster API and creates the first workload cluster.
func (Mgmt) Create(ctx context.Context) error { return run(ctx, "mgmt:create") }

// Delete deletes the kind management cluster.
func (Mgmt) Delete(ctx context.Context) error { return run(ctx, "mgmt:delete") }

// SSH opens a shell on the remote management node (MGMT_MODE=remote).
func (Mgmt) SSH(ctx context.Context) error { return run(ctx, "mgmt:ssh") }

// Status shows the management cluster's providers, their versions, controller health and the source used.
func (Mgmt) Status(ctx context.Context) error { return run(ctx, "mgmt:status") }
