package mgmt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capilab/capilab/internal/kube"
)

func isNoMatch(err error) bool { return meta.IsNoMatchError(err) }

// DeleteResult says what Delete did.
type DeleteResult struct {
	Existed          bool
	WorkloadClusters []string // deleted through CAPI first
	Elapsed          time.Duration
}

// ErrHasClusters is returned when deleting the management cluster alone
// would orphan workload clusters.
var ErrHasClusters = errors.New("the management cluster still manages workload clusters")

// Delete deletes the management cluster. With workload set (make clean)
// every Cluster object is deleted through Cluster API first — its
// controllers remove the clusters' cloud resources — and waited for;
// without it, Delete refuses while Cluster objects exist. A cluster it
// cannot prove is capilab's is never touched. dryRun only reports.
func (m *Manager) Delete(ctx context.Context, workload, dryRun bool) (*DeleteResult, error) {
	start := time.Now()
	res := &DeleteResult{}
	if err := m.Host.Preflight(ctx); err != nil {
		return nil, err
	}
	exists, err := m.ownership(ctx)
	if err != nil {
		return nil, err
	}
	if !exists {
		m.Log.Info("no management cluster: nothing to do", "cluster", m.Name)
		return res, m.forget()
	}
	res.Existed = true
	if err := m.writeKubeconfig(ctx); err != nil {
		return nil, err
	}
	c, err := m.Cluster()
	if err != nil {
		return nil, err
	}
	reachable := c.Reachable(ctx, 30*time.Second) == nil
	if reachable {
		names, err := clusterNames(ctx, c)
		if err != nil {
			return nil, err
		}
		if len(names) > 0 && !workload {
			return nil, fmt.Errorf("%w: %s (make clean deletes them first, then the management cluster)", ErrHasClusters, strings.Join(names, ", "))
		}
		res.WorkloadClusters = names
		if dryRun {
			return res, nil
		}
		if err := m.deleteWorkloadClusters(ctx, c, names); err != nil {
			return nil, err
		}
	} else {
		if dryRun {
			return res, nil
		}
		m.Log.Warn("the management cluster does not answer: its workload clusters cannot be deleted through it; make fullclean removes what they left in the cloud", "cluster", m.Name)
	}
	m.Log.Info("deleting "+m.Host.Describe(), "cluster", m.Name)
	if err := m.Host.Delete(ctx); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(start)
	return res, m.forget()
}

func (m *Manager) forget() error {
	for _, p := range []string{m.recordPath(), m.KubeconfigPath()} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// deleteWorkloadClusters deletes every Cluster object and waits (bounded)
// until they are gone.
func (m *Manager) deleteWorkloadClusters(ctx context.Context, c *kube.Cluster, names []string) error {
	for _, n := range names {
		ns, name, _ := strings.Cut(n, "/")
		cl := &clusterv1.Cluster{}
		cl.Namespace, cl.Name = ns, name
		m.Log.Info("deleting workload cluster through Cluster API", "cluster", n)
		if err := client.IgnoreNotFound(c.Client.Delete(ctx, cl)); err != nil {
			return fmt.Errorf("delete Cluster %s: %w", n, err)
		}
	}
	for _, n := range names {
		ns, name, _ := strings.Cut(n, "/")
		cl := &clusterv1.Cluster{}
		cl.Namespace, cl.Name = ns, name
		if err := c.Gone(ctx, kube.Wait{Name: "wait-delete-cluster", What: "workload cluster " + n + " to be deleted", Timeout: m.Waits.Delete}, cl); err != nil {
			return err
		}
	}
	return nil
}
