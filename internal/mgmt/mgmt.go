package mgmt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/providers"
	"github.com/capilab/capilab/internal/state"
)

// Waits are the budgets of the management cluster's named waits.
type Waits struct {
	Controllers time.Duration // every provider Deployment Available
	Delete      time.Duration // workload clusters gone (make clean)
}

// Issuer is the certificate issuer the local source installs instead of
// cert-manager.
type Issuer struct {
	Program modbuild.Program
	// Ref names the image of a built binary.
	Ref func(binary string) (string, error)
	// Manifests renders the issuer's objects for an image.
	Manifests func(image string) ([]*unstructured.Unstructured, error)
	// Namespace is where its Deployment runs.
	Namespace string
}

// CredentialNamespace holds the lab's cloud credential in the management cluster.
const CredentialNamespace = "capilab-system"

// CloudSecret is the lab's credential as CAPO reads it (identityRef): a
// clouds.yaml with one cloud, and the CA bundle if the cloud has one.
type CloudSecret struct {
	Name      string // Secret name
	CloudName string // the cloud's name inside clouds.yaml
	Clouds    []byte
	CACert    []byte
}

// Manager creates, checks and deletes one management cluster.
type Manager struct {
	// Name is the cluster's name and its kubeconfig context (<prefix>-mgmt).
	Name      string
	Host      Host
	State     state.Dir
	Source    providers.Source
	Providers []providers.Provider
	Repo      providers.Repository
	Builder   *modbuild.Builder
	Issuer    *Issuer      // local source only
	Cloud     *CloudSecret // nil: none is installed
	// Variables are clusterctl variables for the components.
	Variables map[string]string
	Waits     Waits
	Log       *slog.Logger
	Artifacts string

	issuerRef string // the issuer image built this run
}

// Record is the state's record of a management cluster capilab made.
type Record struct {
	Name      string    `json:"name"`
	Host      string    `json:"host"`
	NodeIDs   []string  `json:"nodeIDs"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"createdAt"`
}

func (m *Manager) dir() string { return filepath.Join(string(m.State), "mgmt") }

// KubeconfigPath is where the management cluster's kubeconfig is kept (0600).
func (m *Manager) KubeconfigPath() string { return filepath.Join(m.dir(), "kubeconfig") }

func (m *Manager) recordPath() string { return filepath.Join(m.dir(), "record.json") }

// ReadRecord reads the record; nil when there is none.
func (m *Manager) ReadRecord() (*Record, error) {
	data, err := os.ReadFile(m.recordPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("state record %s: %w", m.recordPath(), err)
	}
	return &r, nil
}

func (m *Manager) writeRecord(r Record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.dir(), 0o700); err != nil {
		return err
	}
	return state.WriteSecretFile(m.recordPath(), append(data, '\n'))
}

// ErrNotOurs is returned for a host of that name that capilab cannot prove
// it made.
var ErrNotOurs = errors.New("not made by capilab")

// ownership checks that an existing host is the recorded one.
func (m *Manager) ownership(ctx context.Context) (exists bool, err error) {
	ids, exists, err := m.Host.Identity(ctx)
	if err != nil || !exists {
		return exists, err
	}
	rec, err := m.ReadRecord()
	if err != nil {
		return true, err
	}
	if rec == nil || rec.Name != m.Name || !slices.Equal(rec.NodeIDs, ids) {
		return true, fmt.Errorf("%s exists but %w (its node containers are not the ones recorded in %s); capilab leaves it alone — delete it yourself or choose another PREFIX",
			m.Host.Describe(), ErrNotOurs, m.recordPath())
	}
	return true, nil
}

// Result says what Create did.
type Result struct {
	Created  bool     // the host was created
	Actions  []string // what changed, in order
	Elapsed  time.Duration
	Versions []providers.Installed
}

// Create makes the management cluster ready (see the package doc).
func (m *Manager) Create(ctx context.Context) (*Result, error) {
	start := time.Now()
	res := &Result{}
	if err := m.Host.Preflight(ctx); err != nil {
		return nil, err
	}
	exists, err := m.ownership(ctx)
	if err != nil {
		return nil, err
	}
	if exists {
		done, err := m.upToDate(ctx, res)
		if err != nil || done {
			res.Elapsed = time.Since(start)
			return res, err
		}
	}

	// Build the images while kind creates the cluster.
	g, gctx := errgroup.WithContext(ctx)
	var images []string
	if m.Source == providers.Local {
		g.Go(func() error {
			var err error
			images, err = m.buildImages(gctx)
			return err
		})
	}
	if !exists {
		g.Go(func() error {
			m.Log.Info("creating "+m.Host.Describe(), "source", m.Source)
			if err := m.Host.Create(gctx); err != nil {
				return err
			}
			ids, _, err := m.Host.Identity(gctx)
			if err != nil {
				return err
			}
			res.Created = true
			res.Actions = append(res.Actions, "created "+m.Host.Describe())
			return m.writeRecord(Record{Name: m.Name, Host: m.Host.Describe(), NodeIDs: ids, Source: string(m.Source), CreatedAt: time.Now().UTC()})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := m.writeKubeconfig(ctx); err != nil {
		return nil, err
	}
	c, err := m.Cluster()
	if err != nil {
		return nil, err
	}
	if len(images) > 0 {
		start := time.Now()
		if err := m.Host.LoadImages(ctx, images); err != nil {
			return nil, err
		}
		res.Actions = append(res.Actions, fmt.Sprintf("loaded %d images in %s", len(images), time.Since(start).Round(time.Second)))
	}
	if err := m.install(ctx, c, res); err != nil {
		return nil, err
	}
	if res.Versions, err = providers.Inventory(ctx, c.Client); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// upToDate handles an existing cluster: nothing to do when every provider
// is at its pin and Available (done=true); otherwise it says what differs.
func (m *Manager) upToDate(ctx context.Context, res *Result) (bool, error) {
	if err := m.writeKubeconfig(ctx); err != nil {
		return false, err
	}
	c, err := m.Cluster()
	if err != nil {
		return false, err
	}
	if err := c.Reachable(ctx, 30*time.Second); err != nil {
		return false, fmt.Errorf("%s exists but its API server does not answer: %w (make clean deletes it; then make create again)", m.Host.Describe(), err)
	}
	installed, err := providers.Inventory(ctx, c.Client)
	if err != nil {
		return false, err
	}
	diff := providers.Compare(m.Providers, installed)
	unavailable, err := m.unavailableDeployments(ctx, c)
	if err != nil {
		return false, err
	}
	if diff.Empty() && len(unavailable) == 0 && m.cloudSecretCurrent(ctx, c) {
		res.Versions = installed
		m.Log.Info("management cluster is ready at the pinned versions; nothing to do", "cluster", m.Name)
		return true, nil
	}
	if !diff.Empty() {
		m.Log.Info("management cluster differs from the pins", "cluster", m.Name, "difference", diff.String())
	}
	if len(unavailable) > 0 {
		m.Log.Info("management cluster has controllers that are not Available", "cluster", m.Name, "deployments", strings.Join(unavailable, ", "))
	}
	return false, nil
}

func (m *Manager) cloudSecretCurrent(ctx context.Context, c *kube.Cluster) bool {
	if m.Cloud == nil {
		return true
	}
	var s corev1.Secret
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: CredentialNamespace, Name: m.Cloud.Name}, &s); err != nil {
		return false
	}
	return string(s.Data["clouds.yaml"]) == string(m.Cloud.Clouds) && string(s.Data["cacert"]) == string(m.Cloud.CACert)
}

// unavailableDeployments lists provider Deployments that are not Available.
func (m *Manager) unavailableDeployments(ctx context.Context, c *kube.Cluster) ([]string, error) {
	var out []string
	for _, ns := range m.namespaces() {
		var list appsv1.DeploymentList
		if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("list deployments in %s: %w", ns, err)
		}
		if len(list.Items) == 0 {
			out = append(out, ns+"/(none)")
		}
		for _, d := range list.Items {
			if !kube.DeploymentAvailable(&d) {
				out = append(out, ns+"/"+d.Name)
			}
		}
	}
	return out, nil
}

func (m *Manager) namespaces() []string {
	var out []string
	if m.Issuer != nil {
		out = append(out, m.Issuer.Namespace)
	}
	for _, p := range m.Providers {
		out = append(out, p.Namespace())
	}
	return out
}

func (m *Manager) buildImages(ctx context.Context) ([]string, error) {
	start := time.Now()
	refs, err := providers.BuildImages(ctx, m.Builder, m.Providers)
	if err != nil {
		return nil, err
	}
	if m.Issuer != nil {
		bin, err := m.Builder.Build(ctx, m.Issuer.Program)
		if err != nil {
			return nil, err
		}
		if m.issuerRef, err = m.Issuer.Ref(bin); err != nil {
			return nil, err
		}
		if _, err := m.Builder.EnsureImage(ctx, providers.ControllerImage(m.issuerRef, bin)); err != nil {
			return nil, err
		}
		refs = append(refs, m.issuerRef)
	}
	m.Log.Info("controller images are current", "images", len(refs), "elapsed", time.Since(start).Round(100*time.Millisecond))
	return refs, nil
}

// install brings the providers to the pins: issuer, render, init of what
// is missing, upgrade of what differs, the cloud secret.
func (m *Manager) install(ctx context.Context, c *kube.Cluster, res *Result) error {
	if m.Issuer != nil {
		objs, err := m.Issuer.Manifests(m.issuerRef)
		if err != nil {
			return err
		}
		if err := c.Apply(ctx, objs...); err != nil {
			return err
		}
		if err := c.DeploymentsAvailable(ctx, kube.Wait{Name: "wait-issuer", What: "the certificate issuer to be Available",
			Timeout: m.Waits.Controllers}, m.Issuer.Namespace, nil, 1); err != nil {
			return err
		}
	}
	if err := m.render(ctx); err != nil {
		return err
	}
	installer := &providers.Installer{Providers: m.Providers, Kubeconfig: m.KubeconfigPath(), Context: m.Name, Source: m.Source, Repo: m.Repo, Log: m.Log,
		Variables: m.Variables, WaitProviderTimeout: m.Waits.Controllers}
	installed, err := providers.Inventory(ctx, c.Client)
	if err != nil {
		return err
	}
	diff := providers.Compare(m.Providers, installed)
	if len(diff.Changed) > 0 {
		var ps []providers.Provider
		for _, ch := range diff.Changed {
			ps = append(ps, ch.Provider)
		}
		m.Log.Info("upgrading providers through clusterctl", "difference", diff.String())
		if err := installer.Upgrade(ctx, installed, ps); err != nil {
			return fmt.Errorf("%w\n(to retry by hand: clusterctl upgrade apply --kubeconfig %s with the versions above)", err, m.KubeconfigPath())
		}
		res.Actions = append(res.Actions, "upgraded: "+diff.String())
	}
	// ORC must run before CAPO: first everything but the infrastructure
	// provider, then the infrastructure provider.
	var first, second []providers.Provider
	for _, p := range diff.Missing {
		if p.Type == "InfrastructureProvider" {
			second = append(second, p)
		} else {
			first = append(first, p)
		}
	}
	for _, batch := range [][]providers.Provider{first, second} {
		if len(batch) == 0 {
			continue
		}
		if err := m.awaitCertManagerCheck(ctx, c); err != nil {
			return err
		}
		if err := installer.Init(ctx, batch); err != nil {
			return err
		}
		for _, p := range batch {
			res.Actions = append(res.Actions, "installed "+p.Label()+" "+p.Version)
		}
	}
	if err := c.DeploymentsAvailable(ctx, kube.Wait{Name: "wait-controllers", What: "every provider controller to be Available",
		Timeout: m.Waits.Controllers, DumpNamespaces: m.namespaces()}, "", client.MatchingLabels{}, len(m.Providers)); err != nil {
		return err
	}
	if m.Cloud != nil && !m.cloudSecretCurrent(ctx, c) {
		if err := m.applyCloudSecret(ctx, c); err != nil {
			return err
		}
		res.Actions = append(res.Actions, "installed the lab's cloud credential as Secret "+CredentialNamespace+"/"+m.Cloud.Name)
	}
	return nil
}

// certManagerTestNamespace is where clusterctl's cert-manager check creates
// (and then deletes) a test Issuer and Certificate. A check that starts
// while the last one's namespace is still terminating fails, so each init
// waits for it to be gone.
const certManagerTestNamespace = "cert-manager-test"

func (m *Manager) awaitCertManagerCheck(ctx context.Context, c *kube.Cluster) error {
	ns := &corev1.Namespace{}
	ns.Name = certManagerTestNamespace
	return c.Gone(ctx, kube.Wait{Name: "wait-cert-manager-check", What: "namespace " + certManagerTestNamespace + " of the last cert-manager check to be gone",
		Timeout: 2 * time.Minute, Interval: time.Second}, ns)
}

func (m *Manager) render(ctx context.Context) error {
	for _, p := range m.Providers {
		if m.Source != providers.Local && !p.RenderedUpstream {
			continue
		}
		if err := m.Repo.Render(ctx, p, m.moduleDir); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) moduleDir(ctx context.Context, module, version string) (string, error) {
	return m.Builder.ModuleDir(ctx, module, version)
}

func (m *Manager) applyCloudSecret(ctx context.Context, c *kube.Cluster) error {
	data := map[string][]byte{"clouds.yaml": m.Cloud.Clouds}
	if len(m.Cloud.CACert) > 0 {
		data["cacert"] = m.Cloud.CACert
	}
	ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: CredentialNamespace}}
	secret := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: m.Cloud.Name, Namespace: CredentialNamespace,
			Labels: map[string]string{"clusterctl.cluster.x-k8s.io/move": "true", "app.kubernetes.io/managed-by": "capilab"}},
		Type: corev1.SecretTypeOpaque, Data: data}
	var objs []*unstructured.Unstructured
	for _, o := range []runtime.Object{ns, secret} {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			return err
		}
		objs = append(objs, &unstructured.Unstructured{Object: u})
	}
	return c.Apply(ctx, objs...)
}

// writeKubeconfig exports the host's kubeconfig to the state (0600).
func (m *Manager) writeKubeconfig(ctx context.Context) error {
	data, err := m.Host.Kubeconfig(ctx, m.Name)
	if err != nil {
		return err
	}
	return kube.WriteKubeconfig(m.KubeconfigPath(), data)
}

// Cluster is a handle on the management cluster (from the state's kubeconfig).
func (m *Manager) Cluster() (*kube.Cluster, error) {
	return kube.New(m.Name, m.KubeconfigPath(), kube.Options{Context: m.Name, Log: m.Log, Artifacts: m.Artifacts})
}

// Status is what mgmt:status reports.
type Status struct {
	Exists      bool
	Reachable   bool
	Record      *Record
	Installed   []providers.Installed
	Difference  providers.Difference
	Deployments []DeploymentStatus
	Clusters    []string // namespace/name of the Cluster objects
}

// DeploymentStatus is one controller Deployment.
type DeploymentStatus struct {
	Namespace, Name string
	Available       bool
	Ready, Replicas int32
	Images          []string
}

// Status reads the management cluster's state without changing anything.
func (m *Manager) Status(ctx context.Context) (*Status, error) {
	st := &Status{}
	exists, err := m.ownership(ctx)
	if err != nil {
		return nil, err
	}
	st.Exists = exists
	if st.Record, err = m.ReadRecord(); err != nil {
		return nil, err
	}
	if !exists {
		return st, nil
	}
	if err := m.writeKubeconfig(ctx); err != nil {
		return nil, err
	}
	c, err := m.Cluster()
	if err != nil {
		return nil, err
	}
	if err := c.Reachable(ctx, 20*time.Second); err != nil {
		return st, nil
	}
	st.Reachable = true
	if st.Installed, err = providers.Inventory(ctx, c.Client); err != nil {
		return nil, err
	}
	st.Difference = providers.Compare(m.Providers, st.Installed)
	for _, ns := range m.namespaces() {
		var list appsv1.DeploymentList
		if err := c.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		for _, d := range list.Items {
			ds := DeploymentStatus{Namespace: d.Namespace, Name: d.Name, Available: kube.DeploymentAvailable(&d), Ready: d.Status.ReadyReplicas, Replicas: d.Status.Replicas}
			for _, ctr := range d.Spec.Template.Spec.Containers {
				ds.Images = append(ds.Images, ctr.Image)
			}
			st.Deployments = append(st.Deployments, ds)
		}
	}
	if st.Clusters, err = clusterNames(ctx, c); err != nil {
		return nil, err
	}
	return st, nil
}

// clusterNames lists the Cluster objects ("" when CAPI is not installed).
func clusterNames(ctx context.Context, c *kube.Cluster) ([]string, error) {
	var list clusterv1.ClusterList
	if err := c.Client.List(ctx, &list); err != nil {
		if isNoMatch(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list Cluster objects: %w", err)
	}
	var out []string
	for _, cl := range list.Items {
		out = append(out, cl.Namespace+"/"+cl.Name)
	}
	slices.Sort(out)
	return out, nil
}

// WorkloadClusters lists the Cluster objects of the management cluster as
// namespace/name; nil when there is no management cluster.
func (m *Manager) WorkloadClusters(ctx context.Context) ([]string, error) {
	exists, err := m.ownership(ctx)
	if err != nil || !exists {
		return nil, err
	}
	if err := m.writeKubeconfig(ctx); err != nil {
		return nil, err
	}
	c, err := m.Cluster()
	if err != nil {
		return nil, err
	}
	if err := c.Reachable(ctx, 20*time.Second); err != nil {
		return nil, err
	}
	return clusterNames(ctx, c)
}
