//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Check runs Kubernetes e2e tests against a cluster through sonobuoy's Go
// library (internal/conformance): CLUSTER's kubeconfig from the lab's state,
// or KUBECONFIG; reports under artifacts/check/.
type Check mg.Namespace

// Run runs sonobuoy against CLUSTER (or KUBECONFIG) in mode SONOMODE.
func (Check) Run(ctx context.Context) error { return run(ctx, "check:run") }

// Quick runs the sonobuoy quick check against CLUSTER.
func (Check) Quick(ctx context.Context) error { return run(ctx, "check:quick") }

// Conformance runs certified-conformance against CLUSTER.
func (Check) Conformance(ctx context.Context) error {
	return run(ctx, "check:conformance")
}

// Storage runs the non-disruptive storage e2e tests against CLUSTER.
func (Check) Storage(ctx context.Context) error { return run(ctx, "check:storage") }

// Csi runs the external storage e2e suite against the Cinder CSI driver of CLUSTER (non-disruptive).
func (Check) Csi(ctx context.Context) error { return run(ctx, "check:csi") }
