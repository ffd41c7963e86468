//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Appcred manages OpenStack application credentials of the lab.
type Appcred mg.Namespace

// Create creates the lab's application credential and CLUSTER's (APPCRED_SCOPE=lab: only the lab's), with their clouds.yaml entries and cloud.conf.
func (Appcred) Create(ctx context.Context) error {
	return run(ctx, "appcred:create")
}

// Delete revokes CLUSTER's application credential (APPCRED_SCOPE=lab: the lab's) and removes its local entries.
func (Appcred) Delete(ctx context.Context) error {
	return run(ctx, "appcred:delete")
}

// List shows the lab's application credentials and whether their secret is known locally.
func (Appcred) List(ctx context.Context) error { return run(ctx, "appcred:list") }
