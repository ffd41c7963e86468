//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Check runs sonobuoy conformance against a workload cluster.
type Check mg.Namespace

// Run runs sonobuoy against CLUSTER in mode SONOMODE.
func (Check) Run(ctx context.Context) error { return run(ctx, "check:run") }

// Quick runs the sonobuoy quick check against CLUSTER.
func (Check) Quick(ctx context.Context) error { return run(ctx, "check:quick") }

// Conformance runs certified-conformance against CLUSTER.
func (Check) Conformance(ctx context.Context) error {
	return run(ctx, "check:conformance")
}

// Storage runs the non-disruptive storage e2e tests against CLUSTER.
func (Check) Storage(ctx context.Context) error { return run(ctx, "check:storage") }

// Csi runs the non-disruptive CSI e2e tests against CLUSTER.
func (Check) Csi(ctx context.Context) error { return run(ctx, "check:csi") }
