package workload

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/internal/naming"
)

// DeleteResult says what Delete did for one cluster.
type DeleteResult struct {
	Name    string
	Existed bool // the Cluster object existed
	// InsideSkipped says why the in-cluster cleanup (LoadBalancer Services,
	// PVCs) did not run, if it did not.
	InsideSkipped string
	Phases        []Phase
	Err           error
}

func (r *DeleteResult) phase(name string, start time.Time) {
	r.Phases = append(r.Phases, Phase{Name: name, Elapsed: time.Since(start)})
}

// Delete deletes one cluster: inside the cluster first (Services of type
// LoadBalancer and volumes, so OCCM and Cinder CSI delete their cloud
// resources; a cluster that does not answer is reported and skipped), then
// the Cluster object through Cluster API (bounded), then what capilab made
// for it (server groups, the cilium security group, its Secrets and
// ClusterClass with the namespace when capilab made it) and its
// application credential. The state record stays: the caller checks for
// leaks with it, then forgets the cluster.
func (m *Manager) Delete(ctx context.Context, s Spec) *DeleteResult {
	res := &DeleteResult{Name: s.Name}
	res.Err = m.delete(ctx, s, res)
	return res
}

func (m *Manager) delete(ctx context.Context, s Spec, res *DeleteResult) error {
	log := m.Log.With("cluster", s.Name)
	var cl clusterv1.Cluster
	key := client.ObjectKey{Namespace: s.Namespace, Name: s.Name}
	err := m.Mgmt.Client.Get(ctx, key, &cl)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("cluster %s: %w", s.Name, err)
	default:
		res.Existed = true
	}
	if res.Existed && cl.DeletionTimestamp == nil {
		start := time.Now()
		res.InsideSkipped = m.cleanInside(ctx, s)
		if res.InsideSkipped != "" {
			log.Warn("skipping the cleanup inside the cluster: "+res.InsideSkipped+"; fullclean removes what OCCM and Cinder CSI leave", "cluster", s.Name)
		}
		res.phase("inside the cluster", start)
	}
	if res.Existed {
		start := time.Now()
		log.Info("deleting the Cluster object through Cluster API", "namespace", s.Namespace)
		if err := client.IgnoreNotFound(m.Mgmt.Client.Delete(ctx, &cl)); err != nil {
			return fmt.Errorf("cluster %s: delete: %w", s.Name, err)
		}
		err := m.Mgmt.Gone(ctx, kube.Wait{Name: "wait-delete-cluster-" + s.Name, What: "cluster " + s.Name + " to be deleted (machines, load balancer, network)",
			Timeout: m.Waits.Delete, DumpNamespaces: []string{"capi-system", "capo-system", s.Namespace}}, &cl)
		if err != nil {
			return err
		}
		res.phase("delete through Cluster API", start)
	}
	start := time.Now()
	for _, role := range []string{naming.RoleController, naming.RoleWorker} {
		if err := m.Cloud.DeleteServerGroups(ctx, naming.ServerGroup(m.Prefix, s.Name, role)); err != nil {
			return err
		}
	}
	if err := m.Cloud.DeleteSecurityGroups(ctx, naming.CiliumSecurityGroup(m.Prefix, s.Name)); err != nil {
		return err
	}
	if err := m.deleteNamespace(ctx, s); err != nil {
		return err
	}
	if err := m.Creds.Revoke(ctx, s.Name); err != nil {
		return fmt.Errorf("cluster %s: revoke its application credential: %w", s.Name, err)
	}
	res.phase("server groups, security group, credential", start)
	return nil
}

// cleanInside runs the addons' in-cluster cleanup; it returns why it did
// not run ("" when it ran).
func (m *Manager) cleanInside(ctx context.Context, s Spec) string {
	if m.Addons == nil {
		return "no addons are managed"
	}
	kubeconfig, err := m.WriteKubeconfig(ctx, s)
	if err != nil {
		return "no kubeconfig: " + err.Error()
	}
	wl, err := kube.New(s.Name, kubeconfig, kube.Options{Log: m.Log, Artifacts: m.Artifacts})
	if err != nil {
		return err.Error()
	}
	if err := wl.Reachable(ctx, 30*time.Second); err != nil {
		return "the cluster does not answer (" + err.Error() + ")"
	}
	if err := m.Addons.DeleteCloudResources(ctx, wl, s); err != nil {
		return "cleanup failed: " + err.Error()
	}
	return ""
}

// deleteNamespace removes the cluster's namespace when capilab made it and
// no other Cluster lives there; otherwise only the cluster's Secret.
func (m *Manager) deleteNamespace(ctx context.Context, s Spec) error {
	var others clusterv1.ClusterList
	if err := m.Mgmt.Client.List(ctx, &others, client.InNamespace(s.Namespace)); err != nil {
		return err
	}
	var ns corev1.Namespace
	err := m.Mgmt.Client.Get(ctx, client.ObjectKey{Name: s.Namespace}, &ns)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(others.Items) == 0 && ns.Labels["app.kubernetes.io/managed-by"] == "capilab" {
		if err := client.IgnoreNotFound(m.Mgmt.Client.Delete(ctx, &ns)); err != nil {
			return fmt.Errorf("delete namespace %s: %w", s.Namespace, err)
		}
		return m.Mgmt.Gone(ctx, kube.Wait{Name: "wait-delete-namespace-" + s.Namespace, What: "namespace " + s.Namespace + " to be deleted", Timeout: 5 * time.Minute}, &ns)
	}
	sec := &corev1.Secret{}
	sec.Namespace, sec.Name = s.Namespace, s.Name+"-cloud-config"
	return client.IgnoreNotFound(m.Mgmt.Client.Delete(ctx, sec))
}
