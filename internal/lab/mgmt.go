package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/appcred"
	"github.com/capilab/capilab/internal/certissuer"
	"github.com/capilab/capilab/internal/kindcluster"
	"github.com/capilab/capilab/internal/kindimage"
	"github.com/capilab/capilab/internal/mgmt"
	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/naming"
	"github.com/capilab/capilab/internal/providers"
)

// CacheDir is capilab's build cache: CAPILAB_CACHE_DIR, else
// $XDG_CACHE_HOME/capilab, else ~/.cache/capilab.
func (r *Run) CacheDir() string {
	env := environMap(r.opts.Environ)
	if d := env["CAPILAB_CACHE_DIR"]; d != "" {
		return r.Path(d)
	}
	if d := env["XDG_CACHE_HOME"]; d != "" {
		return filepath.Join(d, "capilab")
	}
	home := env["HOME"]
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".cache", "capilab")
}

// Builder builds programs and images from Go modules into the cache.
func (r *Run) Builder() *modbuild.Builder {
	return &modbuild.Builder{CacheDir: filepath.Join(r.CacheDir(), "modbuild"), RepoRoot: r.Dir, Env: r.opts.Environ, Log: r.Log}
}

// ProviderSource resolves provider_source: auto means upstream when
// registry.k8s.io resolves (a DNS answer only), else local.
func (r *Run) ProviderSource(ctx context.Context) (providers.Source, string) {
	switch r.Settings.ProviderSource {
	case "upstream":
		return providers.Upstream, "provider_source is upstream"
	case "local":
		return providers.Local, "provider_source is local"
	}
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if addrs, err := net.DefaultResolver.LookupHost(lctx, "registry.k8s.io"); err == nil && len(addrs) > 0 {
		return providers.Upstream, "registry.k8s.io resolves"
	}
	return providers.Local, "registry.k8s.io does not resolve: building the providers from their Go modules"
}

// MgmtName is the management cluster's name and kubeconfig context.
func (r *Run) MgmtName() string { return naming.KindCluster(r.Settings.Prefix) }

// MgmtManager wires the management cluster's manager. withCloud adds the
// lab's cloud credential (it connects to the cloud and may create the
// lab's application credential).
func (r *Run) MgmtManager(ctx context.Context, withCloud bool) (*mgmt.Manager, error) {
	s := r.Settings
	pinned, err := providers.Pinned(r.Loaded.Versions.Management)
	if err != nil {
		return nil, &ExitError{Code: ExitBadInput, Err: err}
	}
	m := &mgmt.Manager{
		Name:      r.MgmtName(),
		State:     r.State(),
		Providers: pinned,
		Repo:      providers.Repository{Dir: filepath.Join(r.CacheDir(), "clusterctl-repository")},
		Builder:   r.Builder(),
		Waits:     mgmt.Waits{Controllers: s.WaitControllers, Delete: s.WaitDeleteCluster},
		Log:       r.Log,
		Artifacts: r.Path(s.ArtifactsDir),
	}
	m.Host = &mgmt.KindHost{Name: m.Name, Kind: kindcluster.New(r.Log), Log: r.Log, WaitForReady: 5 * time.Minute,
		RegistryMirrors: s.RegistryMirrors, MirrorDir: filepath.Join(string(r.State()), "kind", m.Name, "containerd-certs.d")}
	if withCloud {
		if m.Cloud, err = r.labCloudSecret(ctx); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// localIssuer is the certificate issuer the local source installs instead
// of cert-manager.
func localIssuer() *mgmt.Issuer {
	return &mgmt.Issuer{
		Program:   modbuild.Program{Name: "certissuer", Package: "./images/certissuer"},
		Namespace: certissuer.Namespace,
		Ref: func(binary string) (string, error) {
			data, err := os.ReadFile(binary)
			if err != nil {
				return "", err
			}
			sum := sha256.Sum256(data)
			return certissuer.ImageName(hex.EncodeToString(sum[:])), nil
		},
		Manifests: certissuer.Objects,
	}
}

// nodeImage chooses the kind node image (the KIND_NODE_IMAGE rule) and
// builds the local one when it is the choice.
func (r *Run) nodeImage(ctx context.Context) (string, error) {
	choice, err := kindimage.Select(ctx, r.Settings.KindNodeImage, r.Loaded.Versions, kindimage.CLI{}, kindimage.DefaultResolver)
	if err != nil {
		return "", err
	}
	r.Log.Info("kind node image", "image", choice.Image, "why", choice.Reason)
	if choice.Local {
		b := &kindimage.Builder{RepoRoot: r.Dir, CacheDir: environMap(r.opts.Environ)["CAPILAB_KIND_CACHE"], Log: r.Log, Output: r.opts.Stderr}
		if _, err := b.Ensure(ctx, r.Loaded.Versions.KindNode); err != nil {
			return "", err
		}
	}
	return choice.Image, nil
}

// labCloudSecret makes sure the lab's application credential exists and
// returns it as the Secret CAPO reads. A cloud whose API is on a loopback
// address cannot be reached from the management cluster's pods.
func (r *Run) labCloudSecret(ctx context.Context) (*mgmt.CloudSecret, error) {
	am, c, err := r.AppcredManager(ctx)
	if err != nil {
		return nil, err
	}
	if u, err := url.Parse(c.AuthURL); err == nil {
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil, &ExitError{Code: ExitBadInput, Err: fmt.Errorf("cloud %s: its auth URL %s is a loopback address, which the management cluster's controllers cannot reach; on devcloud use OS_CLOUD=devcloud-lab (docs/devcloud.md)", c.Name, c.AuthURL)}
		}
	}
	cred, err := am.Ensure(ctx, r.Settings.Prefix, "", appcred.Options{})
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(cred.CloudsFile)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Clouds map[string]map[string]any `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", cred.CloudsFile, err)
	}
	entry, ok := doc.Clouds[cred.CloudName]
	if !ok {
		return nil, fmt.Errorf("%s has no entry %s", cred.CloudsFile, cred.CloudName)
	}
	sec := &mgmt.CloudSecret{Name: r.Settings.Prefix + "-cloud-config", CloudName: cred.CloudName}
	if p, ok := entry["cacert"].(string); ok && p != "" {
		if sec.CACert, err = os.ReadFile(p); err != nil {
			return nil, fmt.Errorf("CA bundle of cloud %s: %w", c.Name, err)
		}
		entry["cacert"] = "/etc/openstack/cacert"
	}
	out, err := yaml.Marshal(map[string]any{"clouds": map[string]any{cred.CloudName: entry}})
	if err != nil {
		return nil, err
	}
	sec.Clouds = out
	return sec, nil
}

// MgmtCreate is `make create`: the management cluster, then (unless
// controller_count is 0) the first workload cluster.
func MgmtCreate(ctx context.Context, r *Run) error {
	if err := r.useLocalLabByDefault(ctx); err != nil {
		return err
	}
	if r.Settings.ControllerCount > 0 {
		if err := r.validateAddons(); err != nil {
			return err
		}
	}
	m, err := r.MgmtManager(ctx, true)
	if err != nil {
		return err
	}
	if err := m.Host.Preflight(ctx); err != nil {
		return badEnvironment(err)
	}
	img, err := r.nodeImage(ctx)
	if err != nil {
		return err
	}
	m.Host.(*mgmt.KindHost).Image = img
	var why string
	m.Source, why = r.ProviderSource(ctx)
	r.Log.Info("provider source", "source", m.Source, "why", why)
	if m.Source == providers.Local {
		m.Issuer = localIssuer()
	}
	res, err := m.Create(ctx)
	if err != nil {
		return badEnvironment(err)
	}
	printMgmtResult(r, m, res)
	if r.Settings.ControllerCount == 0 {
		return nil
	}
	fmt.Fprintf(r.Stdout, "creating the first workload cluster %s (CONTROLLER_COUNT=0 skips it)\n", r.Settings.Cluster)
	return ClusterCreate(ctx, r)
}

func badEnvironment(err error) error {
	if errors.Is(err, mgmt.ErrBadEnvironment) || errors.Is(err, mgmt.ErrNotOurs) {
		return &ExitError{Code: ExitBadInput, Err: err}
	}
	return err
}

func printMgmtResult(r *Run, m *mgmt.Manager, res *mgmt.Result) {
	if len(res.Actions) == 0 {
		fmt.Fprintf(r.Stdout, "management cluster %s: ready, every provider at its pinned version; nothing to do (%s)\n", m.Name, res.Elapsed.Round(100*time.Millisecond))
	} else {
		fmt.Fprintf(r.Stdout, "management cluster %s: ready in %s\n", m.Name, res.Elapsed.Round(time.Second))
		for _, a := range res.Actions {
			fmt.Fprintf(r.Stdout, "  %s\n", a)
		}
	}
	for _, v := range res.Versions {
		fmt.Fprintf(r.Stdout, "  provider %-48s %s (%s)\n", v.Label, v.Version, v.Namespace)
	}
	fmt.Fprintf(r.Stdout, "  kubeconfig %s (context %s)\n", m.KubeconfigPath(), m.Name)
}

// MgmtDelete deletes the management cluster; it refuses while it still
// manages workload clusters (make clean deletes them first).
func MgmtDelete(ctx context.Context, r *Run) error {
	return deleteMgmt(ctx, r, false)
}

// CleanAll is `make clean`: every workload cluster through Cluster API,
// then the management cluster.
func CleanAll(ctx context.Context, r *Run) error {
	return deleteMgmt(ctx, r, true)
}

func deleteMgmt(ctx context.Context, r *Run, workload bool) error {
	m, err := r.MgmtManager(ctx, false)
	if err != nil {
		return err
	}
	res, err := m.Delete(ctx, workload, r.Settings.DryRun)
	if err != nil {
		if errors.Is(err, mgmt.ErrHasClusters) {
			return &ExitError{Code: ExitFailure, Err: err}
		}
		return badEnvironment(err)
	}
	switch {
	case !res.Existed:
		fmt.Fprintf(r.Stdout, "management cluster %s does not exist: nothing to do\n", m.Name)
	case r.Settings.DryRun:
		fmt.Fprintf(r.Stdout, "dry run: would delete workload clusters [%s] through Cluster API, then management cluster %s\n", strings.Join(res.WorkloadClusters, ", "), m.Name)
	default:
		if len(res.WorkloadClusters) > 0 {
			fmt.Fprintf(r.Stdout, "deleted workload clusters through Cluster API: %s\n", strings.Join(res.WorkloadClusters, ", "))
		}
		fmt.Fprintf(r.Stdout, "deleted management cluster %s in %s\n", m.Name, res.Elapsed.Round(time.Second))
	}
	return nil
}

// MgmtStatus prints the providers, their versions, controller health and
// the source used.
func MgmtStatus(ctx context.Context, r *Run) error {
	m, err := r.MgmtManager(ctx, false)
	if err != nil {
		return err
	}
	st, err := m.Status(ctx)
	if err != nil {
		return badEnvironment(err)
	}
	if !st.Exists {
		fmt.Fprintf(r.Stdout, "management cluster %s does not exist (make create)\n", m.Name)
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("management cluster %s does not exist", m.Name)}
	}
	fmt.Fprintf(r.Stdout, "management cluster %s (%s, created %s, source %s)\n", m.Name, st.Record.Host, st.Record.CreatedAt.Format(time.RFC3339), st.Record.Source)
	if !st.Reachable {
		return fmt.Errorf("management cluster %s: its API server does not answer", m.Name)
	}
	tw := tabwriter.NewWriter(r.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tVERSION\tNAMESPACE")
	for _, p := range st.Installed {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Label, p.Version, p.Namespace)
	}
	fmt.Fprintln(tw, "\nDEPLOYMENT\tAVAILABLE\tREADY\tIMAGE")
	healthy := true
	for _, d := range st.Deployments {
		fmt.Fprintf(tw, "%s/%s\t%v\t%d/%d\t%s\n", d.Namespace, d.Name, d.Available, d.Ready, d.Replicas, strings.Join(d.Images, ","))
		healthy = healthy && d.Available
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(r.Stdout, "\npins: %s\nworkload clusters: %d %v\n", st.Difference.String(), len(st.Clusters), st.Clusters)
	if !healthy || !st.Difference.Empty() {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("management cluster %s is not healthy at the pinned versions", m.Name)}
	}
	return nil
}

// GetKubeconfig writes the management cluster's kubeconfig into the state
// (0600, context <prefix>-mgmt).
func GetKubeconfig(ctx context.Context, r *Run) error {
	m, err := r.MgmtManager(ctx, false)
	if err != nil {
		return err
	}
	st, err := m.Status(ctx)
	if err != nil {
		return badEnvironment(err)
	}
	if !st.Exists {
		return fmt.Errorf("management cluster %s does not exist (make create)", m.Name)
	}
	fmt.Fprintf(r.Stdout, "management cluster kubeconfig: %s (context %s)\n", m.KubeconfigPath(), m.Name)
	return nil
}
