// Package workload creates, updates and deletes workload clusters through
// the management cluster: one Cluster object per cluster with a topology on
// capilab's ClusterClass (class.go), whose variables carry every cluster
// knob of the settings.
//
// Create goes step by step; a re-run after any interruption converges:
//
//  1. Preflight, before anything is created: flavors, the node image and
//     the external network exist; the node CIDR does not overlap another
//     cluster of the lab where they share a network (the local lab); the
//     set of clusters fits the project's quotas. Every problem is one line.
//  2. The cluster is recorded in the state (proof for fullclean that it is
//     the lab's, from its first cloud resource on).
//  3. Its application credential (restricted, per cluster) becomes the
//     Secret CAPO reads; server groups when anti_affinity is set; the
//     cilium security group when the CNI is cilium.
//  4. Namespace, ClusterClass, addons (ClusterResourceSets) and the
//     Cluster are applied server-side: on an existing cluster this is the
//     update, and changed variables (image, flavor, version) roll the
//     machines through Cluster API — there are no generation counters.
//  5. Named, bounded waits, each printing the Cluster's conditions while
//     it waits and dumping conditions, events and controller logs on
//     timeout: infrastructure ready, control plane initialized (then the
//     kubeconfig is written), addons Ready, control plane available,
//     workers available.
package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	capov1 "sigs.k8s.io/cluster-api-provider-openstack/api/v1beta1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/internal/naming"
	"github.com/capilab/capilab/internal/state"
)

// Waits are the budgets of the named waits of one cluster.
type Waits struct {
	Cluster      time.Duration // infrastructure ready
	ControlPlane time.Duration // control plane initialized, then available
	Workers      time.Duration // workers available
	Addons       time.Duration // every addon Ready
	Delete       time.Duration // the Cluster object gone, addon cleanup inside the cluster
}

// Credentials are a cluster's application credential.
type Credentials interface {
	// Ensure returns the cluster's clouds.yaml (one cloud, CloudName) and CA
	// bundle, creating its application credential when needed.
	Ensure(ctx context.Context, cluster string) (CloudSecret, error)
	// Revoke revokes the cluster's credential and removes its local entries.
	Revoke(ctx context.Context, cluster string) error
}

// CloudSecret is a cluster's clouds.yaml for CAPO.
type CloudSecret struct {
	CloudName string
	Clouds    []byte
	CACert    []byte
}

// Addons deliver what a cluster gets once its API answers.
type Addons interface {
	// Objects are applied with the Cluster on the management cluster
	// (ClusterResourceSets and their resources).
	Objects(ctx context.Context, s Spec) ([]client.Object, error)
	// WaitReady waits (bounded) until every addon works in the cluster.
	WaitReady(ctx context.Context, workload *kube.Cluster, s Spec) error
	// DeleteCloudResources deletes what makes OCCM and Cinder CSI create
	// cloud resources (LoadBalancer Services, PVCs) and waits for them to go.
	DeleteCloudResources(ctx context.Context, workload *kube.Cluster, s Spec) error
}

// Options are the lab-wide choices of how clusters are made.
type Options struct {
	AntiAffinity               bool
	SoftAntiAffinityController bool
	// CiliumGroup: the cluster gets <prefix>-<cluster>-cilium (cni cilium).
	CiliumGroup bool
	// DistinctNodeCIDRs: clusters share one network space (the local
	// lab's data plane), so node CIDRs must not overlap.
	DistinctNodeCIDRs bool
}

// Manager creates and deletes clusters of one lab.
type Manager struct {
	Prefix    string
	Mgmt      *kube.Cluster
	Cloud     Cloud
	State     state.Dir
	Creds     Credentials
	Addons    Addons
	Options   Options
	Waits     Waits
	Log       *slog.Logger
	Artifacts string
}

// BadInputError lists problems found before anything was created.
type BadInputError struct{ Problems []string }

func (e *BadInputError) Error() string {
	return fmt.Sprintf("%d problem(s), nothing was created:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// Preflight checks a set of clusters before anything is created.
func (m *Manager) Preflight(ctx context.Context, specs []Spec) error {
	var problems []string
	flavors := map[string]Flavor{}
	flavor := func(name string) (Flavor, bool) {
		if f, ok := flavors[name]; ok {
			return f, true
		}
		f, err := m.Cloud.Flavor(ctx, name)
		if err != nil {
			problems = append(problems, err.Error())
			return Flavor{}, false
		}
		flavors[name] = f
		return f, true
	}
	existing, err := m.NodeCIDRs(ctx)
	if err != nil {
		return err
	}
	images := map[string]bool{}
	var needs []Need
	for i, s := range specs {
		cp, ok1 := flavor(s.ControlPlaneFlavor)
		w, ok2 := flavor(s.WorkerFlavor)
		if !images[s.ImageName] {
			if _, err := m.Cloud.Image(ctx, s.ImageName); err != nil {
				problems = append(problems, fmt.Sprintf("cluster %s: node image: %v (make image registers it)", s.Name, err))
			}
			images[s.ImageName] = true
		}
		if _, err := m.Cloud.ExternalNetwork(ctx, s.ExternalNetwork); err != nil {
			problems = append(problems, fmt.Sprintf("cluster %s: %v", s.Name, err))
		}
		if m.Options.DistinctNodeCIDRs {
			problems = append(problems, overlaps(s, specs[:i], existing)...)
		}
		if ok1 && ok2 {
			if _, exists := existing[s.Name]; !exists {
				needs = append(needs, NeedOf(s, cp, w, m.Options.AntiAffinity, m.Options.CiliumGroup))
			}
		}
	}
	if len(problems) == 0 && len(needs) > 0 {
		q, err := m.Cloud.Quota(ctx)
		if err != nil {
			return err
		}
		problems = append(problems, CheckQuota(m.Cloud.Name(), q, needs)...)
	}
	if len(problems) > 0 {
		return &BadInputError{Problems: problems}
	}
	return nil
}

// overlaps reports node CIDRs that overlap another cluster's.
func overlaps(s Spec, earlier []Spec, existing map[string]string) []string {
	p, err := netip.ParsePrefix(s.NodeCIDR)
	if err != nil {
		return []string{fmt.Sprintf("cluster %s: node_cidr %q is not a CIDR", s.Name, s.NodeCIDR)}
	}
	var out []string
	check := func(other, cidr string) {
		if other == s.Name {
			return
		}
		if q, err := netip.ParsePrefix(cidr); err == nil && p.Overlaps(q) {
			out = append(out, fmt.Sprintf("cluster %s: node_cidr %s overlaps cluster %s's %s (clusters of the local lab share one network space; give each its own node_cidr)", s.Name, p, other, q))
		}
	}
	names := make([]string, 0, len(existing))
	for n := range existing {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		check(n, existing[n])
	}
	for _, e := range earlier {
		check(e.Name, e.NodeCIDR)
	}
	return out
}

// NodeCIDRs maps the names of this lab's Cluster objects to their node CIDR.
func (m *Manager) NodeCIDRs(ctx context.Context) (map[string]string, error) {
	var list clusterv1.ClusterList
	if err := m.Mgmt.Client.List(ctx, &list, client.MatchingLabels{"capilab.dev/lab": m.Prefix}); err != nil {
		return nil, fmt.Errorf("list the lab's clusters: %w", err)
	}
	out := map[string]string{}
	for _, c := range list.Items {
		cidr := ""
		for _, v := range c.Spec.Topology.Variables {
			if v.Name == VarNodeCIDR {
				cidr = strings.Trim(string(v.Value.Raw), `"`)
			}
		}
		out[c.Name] = cidr
	}
	return out, nil
}

// Result is what Create did for one cluster.
type Result struct {
	Name       string
	Updated    bool // the Cluster existed
	Kubeconfig string
	Phases     []Phase
	Err        error
}

// Phase is one timed step.
type Phase struct {
	Name    string
	Elapsed time.Duration
}

func (r *Result) phase(name string, start time.Time) {
	r.Phases = append(r.Phases, Phase{Name: name, Elapsed: time.Since(start)})
}

// KubeconfigPath is where a cluster's kubeconfig is kept (0600).
func (m *Manager) KubeconfigPath(cluster string) string {
	return filepath.Join(m.State.ClusterDir(cluster), "kubeconfig")
}

// Create creates or updates one cluster (see the package doc). Preflight
// is the caller's (it covers a set of clusters at once).
func (m *Manager) Create(ctx context.Context, s Spec) *Result {
	res := &Result{Name: s.Name}
	res.Err = m.create(ctx, s, res)
	return res
}

func (m *Manager) create(ctx context.Context, s Spec, res *Result) error {
	log := m.Log.With("cluster", s.Name)
	start := time.Now()
	if err := m.State.RecordCluster(s.Name); err != nil {
		return err
	}
	var existing clusterv1.Cluster
	err := m.Mgmt.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, &existing)
	res.Updated = err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s: %w", s.Name, err)
	}

	cred, err := m.Creds.Ensure(ctx, s.Name)
	if err != nil {
		return fmt.Errorf("cluster %s: application credential: %w", s.Name, err)
	}
	s.IdentitySecret, s.CloudName = s.Name+"-cloud-config", cred.CloudName
	if m.Options.AntiAffinity {
		cpPolicy := "anti-affinity"
		if m.Options.SoftAntiAffinityController {
			cpPolicy = "soft-anti-affinity"
		}
		if s.ControlPlaneServerGroupID, err = m.Cloud.EnsureServerGroup(ctx, naming.ServerGroup(m.Prefix, s.Name, naming.RoleController), cpPolicy); err != nil {
			return err
		}
		if s.WorkerServerGroupID, err = m.Cloud.EnsureServerGroup(ctx, naming.ServerGroup(m.Prefix, s.Name, naming.RoleWorker), "soft-anti-affinity"); err != nil {
			return err
		}
	}
	if m.Options.CiliumGroup {
		name := naming.CiliumSecurityGroup(m.Prefix, s.Name)
		rules := []Rule{{"udp", 8472, s.NodeCIDR}, {"tcp", 4240, s.NodeCIDR}, {"tcp", 4244, s.NodeCIDR}}
		if err := m.Cloud.EnsureSecurityGroup(ctx, name, "capilab: cilium of cluster "+s.Name+" of lab "+m.Prefix, rules); err != nil {
			return err
		}
		s.ExtraSecurityGroups = append(s.ExtraSecurityGroups, name)
	}
	res.phase("credentials and cloud prerequisites", start)

	start = time.Now()
	objs := []client.Object{s.NamespaceObject(), cloudSecret(s, cred)}
	objs = append(objs, ClassObjects(s.Namespace)...)
	if m.Addons != nil {
		addons, err := m.Addons.Objects(ctx, s)
		if err != nil {
			return fmt.Errorf("cluster %s: addons: %w", s.Name, err)
		}
		objs = append(objs, addons...)
	}
	objs = append(objs, s.Cluster())
	if err := m.apply(ctx, objs); err != nil {
		return fmt.Errorf("cluster %s: %w", s.Name, err)
	}
	verb := "created"
	if res.Updated {
		verb = "updated"
	}
	log.Info("cluster objects applied ("+verb+")", "namespace", s.Namespace, "version", s.KubernetesVersion, "controlPlane", s.ControlPlaneCount, "workers", s.WorkerCount)
	res.phase("apply", start)

	dumpNS := []string{"capi-system", "capi-kubeadm-bootstrap-system", "capi-kubeadm-control-plane-system", "capo-system", "orc-system", s.Namespace}
	key := client.ObjectKey{Namespace: s.Namespace, Name: s.Name}
	wait := func(name, what string, budget time.Duration, cond string) error {
		start := time.Now()
		err := m.Mgmt.WaitFor(ctx, kube.Wait{Name: name + "-" + s.Name, What: what, Timeout: budget, Interval: 5 * time.Second, DumpNamespaces: dumpNS},
			func(ctx context.Context) (bool, string, error) { return m.clusterCondition(ctx, key, cond) })
		res.phase(name, start)
		return err
	}
	if err := wait("wait-cluster", "cluster "+s.Name+": infrastructure ready (network, router, security groups, API load balancer)", m.Waits.Cluster, "InfrastructureReady"); err != nil {
		return err
	}
	if err := wait("wait-control-plane-initialized", "cluster "+s.Name+": control plane initialized (first control-plane node)", m.Waits.ControlPlane, "ControlPlaneInitialized"); err != nil {
		return err
	}
	kubeconfig, err := m.WriteKubeconfig(ctx, s)
	if err != nil {
		return err
	}
	res.Kubeconfig = kubeconfig
	if m.Addons != nil {
		start := time.Now()
		wl, err := kube.New(s.Name, kubeconfig, kube.Options{Log: m.Log, Artifacts: m.Artifacts})
		if err != nil {
			return err
		}
		if err := m.Addons.WaitReady(ctx, wl, s); err != nil {
			return fmt.Errorf("cluster %s: addons: %w", s.Name, err)
		}
		res.phase("addons ready", start)
	}
	if err := wait("wait-control-plane", fmt.Sprintf("cluster %s: control plane available (%d node(s))", s.Name, s.ControlPlaneCount), m.Waits.ControlPlane, "ControlPlaneAvailable"); err != nil {
		return err
	}
	if s.WorkerCount > 0 {
		if err := wait("wait-workers", fmt.Sprintf("cluster %s: workers available (%d node(s))", s.Name, s.WorkerCount), m.Waits.Workers, "WorkersAvailable"); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) apply(ctx context.Context, objs []client.Object) error {
	var us []*unstructured.Unstructured
	for _, o := range objs {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return err
		}
		obj := &unstructured.Unstructured{Object: u}
		unstructured.RemoveNestedField(obj.Object, "status")
		unstructured.RemoveNestedField(obj.Object, "metadata", "creationTimestamp")
		us = append(us, obj)
	}
	// The ClusterClass webhook needs its templates, and the Cluster webhook
	// its class: apply in order, retrying a webhook that is not serving yet.
	return m.Mgmt.Apply(ctx, us...)
}

func cloudSecret(s Spec, c CloudSecret) *corev1.Secret {
	data := map[string][]byte{"clouds.yaml": c.Clouds}
	if len(c.CACert) > 0 {
		data["cacert"] = c.CACert
	}
	return &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.IdentitySecret,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "capilab", "clusterctl.cluster.x-k8s.io/move": "true"}},
		Type: corev1.SecretTypeOpaque, Data: data}
}

// clusterCondition polls one condition of the Cluster and reports the
// conditions and machines while it waits.
func (m *Manager) clusterCondition(ctx context.Context, key client.ObjectKey, cond string) (bool, string, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(clusterv1.GroupVersion.WithKind("Cluster"))
	if err := m.Mgmt.Client.Get(ctx, key, u); err != nil {
		return false, "get Cluster: " + err.Error(), nil
	}
	conds := kube.Conditions(u)
	if c, ok := kube.FindCondition(conds, cond); ok && c.Status == "True" {
		return true, cond + "=True", nil
	}
	if cond != "InfrastructureReady" {
		if err := m.failedMachines(ctx, key); err != nil {
			return false, "", err
		}
	}
	return false, kube.SummarizeConditions(conds) + "; " + m.machineSummary(ctx, key), nil
}

// failedMachines is an error naming the cluster's OpenStackMachines that
// CAPO marked failed for good (a server in ERROR before it became a node:
// CAPO never retries it, and the class has no health check that would
// replace it), with Nova's fault for each; nil when there are none or
// they cannot be listed (the wait goes on).
func (m *Manager) failedMachines(ctx context.Context, key client.ObjectKey) error {
	var list unstructured.UnstructuredList
	list.SetGroupVersionKind(capov1.SchemeGroupVersion.WithKind("OpenStackMachineList"))
	if err := m.Mgmt.Client.List(ctx, &list, client.InNamespace(key.Namespace), client.MatchingLabels{clusterv1.ClusterNameLabel: key.Name}); err != nil {
		return nil
	}
	var failed []string
	for _, om := range list.Items {
		msg, _, _ := unstructured.NestedString(om.Object, "status", "failureMessage")
		if msg == "" {
			continue
		}
		what := om.GetName()
		if id, _, _ := unstructured.NestedString(om.Object, "status", "instanceID"); id != "" {
			what += " (server " + id + ")"
			if m.Cloud != nil {
				if fault, err := m.Cloud.ServerFault(ctx, id); err == nil && fault != "" {
					msg += "; Nova says: " + fault
				}
			}
		}
		failed = append(failed, what+": "+msg)
	}
	if len(failed) == 0 {
		return nil
	}
	sort.Strings(failed)
	return fmt.Errorf("cluster %s: %d machine(s) failed for good, and Cluster API does not replace them: %s (make delete_cluster CLUSTER=%s, then create it again)",
		key.Name, len(failed), strings.Join(failed, "; "), key.Name)
}

// machineSummary is "machines: 1 Running, 1 Provisioning".
func (m *Manager) machineSummary(ctx context.Context, key client.ObjectKey) string {
	var list clusterv1.MachineList
	if err := m.Mgmt.Client.List(ctx, &list, client.InNamespace(key.Namespace), client.MatchingLabels{clusterv1.ClusterNameLabel: key.Name}); err != nil {
		return "machines: " + err.Error()
	}
	phases := map[string]int{}
	for _, mach := range list.Items {
		phases[mach.Status.Phase]++
	}
	if len(phases) == 0 {
		return "machines: none yet"
	}
	var parts []string
	for p, n := range phases {
		parts = append(parts, fmt.Sprintf("%d %s", n, p))
	}
	sort.Strings(parts)
	return "machines: " + strings.Join(parts, ", ")
}

// WriteKubeconfig writes the cluster's admin kubeconfig (Cluster API's
// <cluster>-kubeconfig Secret) to the state, 0600, context
// <cluster>-admin@<cluster>, and merges it into the state's kubeconfig.
func (m *Manager) WriteKubeconfig(ctx context.Context, s Spec) (string, error) {
	var sec corev1.Secret
	if err := m.Mgmt.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name + "-kubeconfig"}, &sec); err != nil {
		return "", fmt.Errorf("cluster %s: kubeconfig Secret: %w", s.Name, err)
	}
	data := sec.Data["value"]
	if len(data) == 0 {
		return "", fmt.Errorf("cluster %s: kubeconfig Secret %s/%s-kubeconfig has no value", s.Name, s.Namespace, s.Name)
	}
	path := m.KubeconfigPath(s.Name)
	if err := state.WriteSecretFile(path, data); err != nil {
		return "", err
	}
	if err := mergeKubeconfig(filepath.Join(string(m.State), "kubeconfig"), data); err != nil {
		return "", err
	}
	return path, nil
}

// mergeKubeconfig merges a kubeconfig's contexts into the file at path.
func mergeKubeconfig(path string, data []byte) error {
	add, err := clientcmd.Load(data)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if errors.Is(err, os.ErrNotExist) {
		cfg = clientcmdNewConfig()
	} else if err != nil {
		return err
	}
	for k, v := range add.Clusters {
		cfg.Clusters[k] = v
	}
	for k, v := range add.AuthInfos {
		cfg.AuthInfos[k] = v
	}
	for k, v := range add.Contexts {
		cfg.Contexts[k] = v
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return state.WriteSecretFile(path, out)
}

func clientcmdNewConfig() *clientcmdapi.Config { return clientcmdapi.NewConfig() }
