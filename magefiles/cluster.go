//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
)

// Cluster creates and deletes workload clusters.
type Cluster mg.Namespace

// Create creates or updates workload cluster CLUSTER.
func (Cluster) Create(ctx context.Context) error {
	return run(ctx, "cluster:create")
}

// Delete deletes workload cluster CLUSTER and everything it owns.
func (Cluster) Delete(ctx context.Context) error {
	return run(ctx, "cluster:delete")
}

// Kubeconfig writes the kubeconfig of CLUSTER (0600) into the state directory.
func (Cluster) Kubeconfig(ctx context.Context) error {
	return run(ctx, "cluster:kubeconfig")
}
