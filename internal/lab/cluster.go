package lab

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/addons"
	"github.com/capilab/capilab/internal/appcred"
	"github.com/capilab/capilab/internal/cleanup"
	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/dataplane/mirror"
	"github.com/capilab/capilab/internal/image"
	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/internal/workload"
)

// clusterConcurrency bounds how many clusters are created or deleted at once.
const clusterConcurrency = 4

// ClusterNames are the clusters a cluster target acts on: CLUSTERS when
// set, else CLUSTER.
func (r *Run) ClusterNames() []string {
	if len(r.Settings.Clusters) > 0 {
		return r.Settings.Clusters
	}
	return []string{r.Settings.Cluster}
}

// clusterCredentials adapts the lab's application credentials to what a
// workload cluster needs.
type clusterCredentials struct {
	r  *Run
	m  *appcred.Manager
	lb appcred.LoadBalancer
}

func (c clusterCredentials) Ensure(ctx context.Context, cluster string) (workload.CloudSecret, error) {
	s := c.r.Settings
	cred, err := c.m.Ensure(ctx, s.Prefix, cluster, appcred.Options{Expiry: s.AppcredExpiry, LoadBalancer: c.lb})
	if err != nil {
		return workload.CloudSecret{}, err
	}
	clouds, ca, err := singleCloud(cred.CloudsFile, cred.CloudName)
	if err != nil {
		return workload.CloudSecret{}, err
	}
	return workload.CloudSecret{CloudName: cred.CloudName, Clouds: clouds, CACert: ca}, nil
}

func (c clusterCredentials) Revoke(ctx context.Context, cluster string) error {
	_, err := c.m.Delete(ctx, c.r.Settings.Prefix, cluster)
	return err
}

// singleCloud extracts one entry of a clouds.yaml as a clouds.yaml of its
// own, with its CA bundle's content (the path becomes the Secret's key
// "cacert" as CAPO mounts it).
func singleCloud(path, name string) ([]byte, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var doc struct {
		Clouds map[string]map[string]any `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	entry, ok := doc.Clouds[name]
	if !ok {
		return nil, nil, fmt.Errorf("%s has no entry %s", path, name)
	}
	var ca []byte
	if p, ok := entry["cacert"].(string); ok && p != "" {
		if ca, err = os.ReadFile(p); err != nil {
			return nil, nil, fmt.Errorf("CA bundle of cloud %s: %w", name, err)
		}
		entry["cacert"] = "/etc/openstack/cacert"
	}
	out, err := yaml.Marshal(map[string]any{"clouds": map[string]any{name: entry}})
	return out, ca, err
}

// WorkloadManager wires the workload clusters' manager: the management
// cluster must exist.
func (r *Run) WorkloadManager(ctx context.Context) (*workload.Manager, *cloud.Cloud, error) {
	mm, err := r.MgmtManager(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	rec, err := mm.ReadRecord()
	if err != nil {
		return nil, nil, err
	}
	if rec == nil {
		return nil, nil, &ExitError{Code: ExitBadInput, Err: fmt.Errorf("there is no management cluster %s (make create)", mm.Name)}
	}
	mgmtCluster, err := mm.Cluster()
	if err != nil {
		return nil, nil, err
	}
	if err := mgmtCluster.Reachable(ctx, 30*time.Second); err != nil {
		return nil, nil, fmt.Errorf("management cluster %s: %w", mm.Name, err)
	}
	am, c, err := r.AppcredManager(ctx)
	if err != nil {
		return nil, nil, err
	}
	lb, err := r.loadBalancerOptions(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	s := r.Settings
	m := &workload.Manager{
		Prefix: s.Prefix, Mgmt: mgmtCluster, Cloud: workload.OpenStack{C: c}, State: r.State(),
		Creds: clusterCredentials{r: r, m: am, lb: lb},
		Options: workload.Options{AntiAffinity: s.AntiAffinity, SoftAntiAffinityController: s.SoftAntiAffinityController,
			CiliumGroup: s.CNI == "cilium" && !r.LocalLab()},
		Waits: workload.Waits{Cluster: s.WaitCluster, ControlPlane: s.WaitControlPlane, Workers: s.WaitWorkers, Addons: s.WaitAddons, Delete: s.WaitDeleteCluster},
		Log:   r.Log, Artifacts: r.Path(s.ArtifactsDir),
	}
	m.Options.DistinctNodeCIDRs = r.LocalLab()
	lister, err := cleanup.NewOpenStack(c)
	if err != nil {
		return nil, nil, err
	}
	m.Addons = r.workloadAddons(mgmtCluster, lister)
	return m, c, nil
}

// validateAddons checks the addon settings against the pinned releases
// (bad input: exit 2, before anything is created).
func (r *Run) validateAddons() error {
	if err := addons.Validate(r.Loaded.Versions.Addons, addons.FromConfig(r.Settings)); err != nil {
		return &ExitError{Code: ExitBadInput, Err: err}
	}
	return nil
}

// workloadAddons wires the addons of the lab's workload clusters: sources
// from the Go module proxy and the download cache, the local lab's images
// built from their modules, Ready waits bounded by wait_addons, the
// teardown bounded by delete_timeout.
func (r *Run) workloadAddons(mgmtCluster *kube.Cluster, lister addons.CloudLister) *addons.Workload {
	s := r.Settings
	b := r.Builder()
	pins := r.Loaded.Versions.Addons
	return &addons.Workload{
		Pins: pins, Settings: addons.FromConfig(s),
		Renderer: &addons.Renderer{Pins: pins, Log: r.Log, Helm: &addons.Helm{Builder: b, Pin: pins.Helm},
			Sources: &addons.Sources{Modules: b, CacheDir: filepath.Join(r.CacheDir(), "addons"), Log: r.Log}},
		CloudConf: func(cluster string) ([]byte, error) { return os.ReadFile(r.State().CloudConf(cluster)) },
		LocalLab:  r.LocalLab(), NodeImage: r.Loaded.Versions.KindNode.Image(), Images: b,
		Publish:    r.publishToMirror(),
		Management: mgmtCluster, Cloud: lister,
		ReadyTimeout: s.WaitAddons, TeardownTimeout: s.DeleteTimeout, Log: r.Log,
	}
}

// ClusterSpecs renders the specs of the clusters a target acts on.
func (r *Run) ClusterSpecs(ctx context.Context, m *workload.Manager) ([]workload.Spec, error) {
	existing, err := m.NodeCIDRs(ctx)
	if err != nil {
		return nil, err
	}
	var specs []workload.Spec
	for _, name := range r.ClusterNames() {
		s, err := r.ClusterSpec(ctx, m, name, existing)
		if err != nil {
			return nil, err
		}
		existing[name] = s.NodeCIDR
		specs = append(specs, s)
	}
	return specs, nil
}

// ClusterSpec renders one cluster's spec from the settings. existing are
// the node CIDRs of the lab's clusters: in the local lab, where they share
// one network space, a cluster without a node_cidr of its own gets a free
// one, and an existing cluster keeps its own.
func (r *Run) ClusterSpec(ctx context.Context, m *workload.Manager, name string, existing map[string]string) (workload.Spec, error) {
	s := r.Settings
	ns := s.Namespace
	if ns == "" || len(r.ClusterNames()) > 1 {
		ns = name
	}
	imgSpec, err := r.ImageSpec()
	if err != nil {
		return workload.Spec{}, err
	}
	ext, err := m.Cloud.ExternalNetwork(ctx, s.ExternalNetwork)
	if err != nil {
		return workload.Spec{}, &ExitError{Code: ExitBadInput, Err: err}
	}
	spec := workload.Spec{
		Name: name, Namespace: ns, Prefix: s.Prefix,
		KubernetesVersion:  imgSpec.KubernetesVersion,
		ControlPlaneCount:  s.ControllerCount,
		WorkerCount:        s.WorkerCount,
		ControlPlaneFlavor: s.ControllerFlavor, WorkerFlavor: s.WorkerFlavor,
		ImageName:      imgSpec.Name,
		NodeCIDR:       s.NodeCIDR,
		PodCIDR:        s.PodCIDR,
		ServiceCIDR:    s.ServiceCIDR,
		DNSNameservers: s.DNSNameservers,
		MTU:            s.MTU, ExternalNetwork: ext,
		RestrictKubeAPI:      s.RestrictKubeAPI,
		OVNLoadBalancer:      s.UseOVNLBProvider == "true",
		AvailabilityZone:     s.AvailabilityZone,
		ControlPlaneMetadata: s.ControllerMetadata, WorkerMetadata: s.WorkerMetadata,
		EtcdUnsafeNoFsync: s.EtcdUnsafeFS,
		HTTPProxy:         s.HTTPProxy, NoProxy: s.NoProxy,
		LocalLab: r.LocalLab(),
	}
	if spec.ControlPlaneCount == 0 {
		return spec, &ExitError{Code: ExitBadInput, Err: fmt.Errorf("controller_count is 0: there is no workload cluster to create")}
	}
	if r.LocalLab() && r.Loaded.Sources["node_cidr"] == "default" {
		if cidr, ok := existing[name]; ok && cidr != "" {
			spec.NodeCIDR = cidr
		} else {
			var taken []string
			for other, cidr := range existing {
				if other != name {
					taken = append(taken, cidr)
				}
			}
			inCloud, err := m.Cloud.SubnetCIDRs(ctx)
			if err != nil {
				return spec, err
			}
			claims := filepath.Join(r.CacheDir(), "locks", "local-lab-node-cidrs.json")
			if spec.NodeCIDR, err = claimNodeCIDR(ctx, r.Log, claims, s.Prefix, name, taken, inCloud); err != nil {
				if errors.Is(err, errNoFreeNodeCIDR) {
					return spec, &ExitError{Code: ExitBadInput, Err: err}
				}
				return spec, err
			}
		}
	}
	files, err := mirror.ContainerdHostsFiles(s.RegistryMirrors)
	if err != nil {
		return spec, &ExitError{Code: ExitBadInput, Err: err}
	}
	for _, f := range files {
		spec.RegistryMirrorFiles = append(spec.RegistryMirrorFiles, workload.MirrorFile{Path: f.Path, Content: f.Content})
	}
	// Root volumes for flavors without a disk (SCS's rule).
	img, imgErr := m.Cloud.Image(ctx, spec.ImageName)
	for _, f := range []struct {
		name string
		into *int
	}{{spec.ControlPlaneFlavor, &spec.ControlPlaneRootVolumeGiB}, {spec.WorkerFlavor, &spec.WorkerRootVolumeGiB}} {
		fl, err := m.Cloud.Flavor(ctx, f.name)
		if err != nil || fl.DiskGiB > 0 {
			continue // preflight reports a missing flavor
		}
		if imgErr == nil {
			*f.into = workload.RootVolumeGiB(fl.DiskGiB, img.SizeBytes, fl.RAMMiB)
		}
	}
	return spec, nil
}

// ClusterCreate is `make create_cluster`: one cluster (CLUSTER) or several
// in parallel (CLUSTERS), created or updated.
func ClusterCreate(ctx context.Context, r *Run) error {
	if err := r.useLocalLabByDefault(ctx); err != nil {
		return err
	}
	if err := r.validateAddons(); err != nil {
		return err
	}
	m, c, err := r.WorkloadManager(ctx)
	if err != nil {
		return err
	}
	// The node image first: preflight then finds it.
	if err := r.ensureNodeImage(ctx, c); err != nil {
		return err
	}
	specs, err := r.ClusterSpecs(ctx, m)
	if err != nil {
		return err
	}
	if err := m.Preflight(ctx, specs); err != nil {
		var bad *workload.BadInputError
		if errors.As(err, &bad) {
			return &ExitError{Code: ExitBadInput, Err: err}
		}
		return err
	}
	results := make([]*workload.Result, len(specs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, clusterConcurrency)
	for i, s := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = m.Create(ctx, s)
		}()
	}
	wg.Wait()
	return printCreateResults(r, results)
}

func (r *Run) ensureNodeImage(ctx context.Context, c *cloud.Cloud) error {
	spec, err := r.ImageSpec()
	if err != nil {
		return err
	}
	g, err := image.GlanceOf(c)
	if err != nil {
		return err
	}
	_, err = image.Register(ctx, g, spec, r.Log)
	return err
}

func printCreateResults(r *Run, results []*workload.Result) error {
	tw := tabwriter.NewWriter(r.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tRESULT\tTIME\tPHASES\tKUBECONFIG")
	failed := 0
	for _, res := range results {
		var total time.Duration
		var phases []string
		for _, p := range res.Phases {
			total += p.Elapsed
			phases = append(phases, fmt.Sprintf("%s %s", p.Name, p.Elapsed.Round(time.Second)))
		}
		status := "created"
		if res.Updated {
			status = "updated"
		}
		if res.Err != nil {
			failed++
			status = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", res.Name, status, total.Round(time.Second), strings.Join(phases, "; "), res.Kubeconfig)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var errs []error
	for _, res := range results {
		if res.Err != nil {
			errs = append(errs, res.Err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d cluster(s) failed: %w", failed, len(results), errors.Join(errs...))
	}
	return nil
}

// ClusterDelete is `make delete_cluster`: each cluster inside-out, then a
// leak check scoped to it (exit 3 and the list when anything it owned is
// left; its state record stays then, for fullclean).
func ClusterDelete(ctx context.Context, r *Run) error {
	if err := r.useLocalLabByDefault(ctx); err != nil {
		return err
	}
	m, c, err := r.WorkloadManager(ctx)
	if err != nil {
		return err
	}
	names := r.ClusterNames()
	results := make([]*workload.DeleteResult, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, clusterConcurrency)
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ns := r.Settings.Namespace
			if ns == "" || len(names) > 1 {
				ns = name
			}
			results[i] = m.Delete(ctx, workload.Spec{Name: name, Namespace: ns, Prefix: r.Settings.Prefix})
		}()
	}
	wg.Wait()
	var failed []error
	var deleted []string
	for _, res := range results {
		switch {
		case res.Err != nil:
			failed = append(failed, res.Err)
			fmt.Fprintf(r.Stdout, "cluster %s: FAILED: %v\n", res.Name, res.Err)
		case !res.Existed:
			fmt.Fprintf(r.Stdout, "cluster %s: no Cluster object; its server groups, security group and credential are gone\n", res.Name)
			deleted = append(deleted, res.Name)
		default:
			fmt.Fprintf(r.Stdout, "cluster %s: deleted", res.Name)
			if res.InsideSkipped != "" {
				fmt.Fprintf(r.Stdout, " (inside the cluster: skipped, %s)", res.InsideSkipped)
			}
			fmt.Fprintln(r.Stdout)
			deleted = append(deleted, res.Name)
		}
	}
	if len(deleted) > 0 {
		if err := r.scopedLeakCheck(ctx, c, deleted); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d cluster(s) failed: %w", len(failed), len(names), errors.Join(failed...))
	}
	return nil
}

// scopedLeakCheck runs fullclean's rules in verify mode for the clusters
// just deleted; clusters with nothing left are forgotten.
func (r *Run) scopedLeakCheck(ctx context.Context, c *cloud.Cloud, clusters []string) error {
	backend, err := cleanup.NewOpenStack(c)
	if err != nil {
		return err
	}
	ns := map[string]string{}
	for _, name := range clusters {
		if r.Settings.Namespace != "" && len(clusters) == 1 {
			ns[name] = r.Settings.Namespace
		}
	}
	rep, err := cleanup.Check(ctx, backend, cleanup.Options{Prefix: r.Settings.Prefix, Log: r.Log,
		Filter:  cleanup.Filter{Clusters: clusters, Now: time.Now()},
		Sources: cleanup.ClusterSources{Recorded: clusters, Namespaces: ns}})
	if err != nil {
		return err
	}
	leaked := map[string]bool{}
	for _, o := range rep.Remaining {
		leaked[o.Cluster] = true
	}
	for _, name := range clusters {
		if !leaked[name] {
			if err := r.State().ForgetCluster(name); err != nil {
				return err
			}
		}
	}
	if len(rep.Remaining) > 0 {
		_ = cleanup.WriteTable(r.Stdout, rep.Remaining)
		return &ExitError{Code: ExitLeaks, Err: fmt.Errorf("delete_cluster: %d owned resource(s) of cluster(s) %s are left on cloud %s (listed above; make fullclean CLUSTERS=%s removes them)",
			len(rep.Remaining), strings.Join(slices.Sorted(maps.Keys(leaked)), ","), c.Name, strings.Join(clusters, ","))}
	}
	fmt.Fprintf(r.Stdout, "leak check: nothing of cluster(s) %s is left on cloud %s\n", strings.Join(clusters, ","), c.Name)
	return nil
}

// publishToMirror pushes images into devcloud's registry mirror, where the
// local lab's nodes pull from (nil outside the local lab).
func (r *Run) publishToMirror() func(ctx context.Context, refs []string) error {
	if !r.LocalLab() {
		return nil
	}
	return func(ctx context.Context, refs []string) error {
		return r.mirrorPusher().Push(ctx, refs)
	}
}
