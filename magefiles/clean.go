//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Clean removes what the lab created.
type Clean mg.Namespace

// All deletes every workload cluster through the management cluster, then the management cluster.
func (Clean) All(ctx context.Context) error { return run(ctx, "clean:all") }

// Full deletes every leaked OpenStack resource of the lab, in dependency order, and verifies.
func (Clean) Full(ctx context.Context) error { return run(ctx, "clean:full") }

// Check lists leaks (owned OpenStack resources that outlive their cluster) and fails if there are any; LEAK_SCOPE=lab counts everything the lab owns.
func (Clean) Check(ctx context.Context) error { return run(ctx, "clean:check") }
