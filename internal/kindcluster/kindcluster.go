// Package kindcluster creates and deletes kind clusters through kind's Go
// library (sigs.k8s.io/kind/pkg/cluster, Docker provider), with the
// adaptations this project's machines need:
//
//   - the node image comes from the caller (settings: KIND_NODE_IMAGE, see
//     internal/kindimage.Select);
//   - on a cgroup v1 Docker host the kubelet is told `failCgroupV1: false`
//     (kubelet >= 1.35 refuses to start on cgroup v1 otherwise) — detected
//     from the engine, never assumed;
//   - pod networking needs nothing here: capilab's local node image ships its
//     cni-agent as kind's default CNI manifest, which kind applies itself;
//   - registry mirrors (setting registry_mirrors): containerd's host files
//     are written into a directory mounted at /etc/containerd/certs.d of
//     every node, and a containerd config patch points config_path there.
package kindcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/capilab/capilab/internal/dataplane/mirror"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

// ClusterLabel is the Docker label kind puts on every node container.
const ClusterLabel = "io.x-k8s.kind.cluster"

// Options describe a cluster to create.
type Options struct {
	Name    string // kind cluster name (required)
	Image   string // node image (required)
	Workers int    // worker nodes besides the one control-plane node
	// Kubeconfig is where kind writes the cluster's kubeconfig; empty: a
	// file kind picks ($KUBECONFIG or ~/.kube/config). Tests should set it.
	Kubeconfig string
	// WaitForReady bounds kind's wait for the control plane; default 3m.
	WaitForReady time.Duration
	// CgroupV1 overrides detection (nil: ask the Docker engine).
	CgroupV1 *bool
	// Base is an optional starting config (port mappings, mounts, ...);
	// Config fills in nodes and the patches this package owns.
	Base *v1alpha4.Cluster
	// RegistryMirrors maps upstream registries to mirror URLs (see
	// internal/dataplane/mirror); empty: no mirror.
	RegistryMirrors map[string]string
	// MirrorDir is the host directory holding the nodes' containerd host
	// files (default: containerd-certs.d next to Kubeconfig).
	MirrorDir string
}

// containerdMirrorPatch makes containerd read registry host files.
const containerdMirrorPatch = `[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "` + mirror.CertsDir + `"
`

// mirrorDir is where Create writes the host files.
func (o Options) mirrorDir() string {
	if o.MirrorDir != "" {
		return o.MirrorDir
	}
	if o.Kubeconfig != "" {
		return filepath.Join(filepath.Dir(o.Kubeconfig), "containerd-certs.d")
	}
	return ""
}

// Cluster is a created cluster.
type Cluster struct {
	Name       string
	Image      string
	Kubeconfig string // path
	Nodes      []string
}

// Manager runs kind operations; build it with New.
type Manager struct {
	log      *slog.Logger
	provider *cluster.Provider
}

// New returns a Manager using the Docker provider; log may be nil.
func New(log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Manager{
		log:      log,
		provider: cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(kindLogger{log: log})),
	}
}

// kubeletCgroupV1Patch lets kubelet >= 1.35 run on a cgroup v1 host.
const kubeletCgroupV1Patch = "kind: KubeletConfiguration\nfailCgroupV1: false\n"

// Config is the kind configuration for opts on a host with the given cgroup
// version (pure: no Docker needed).
func Config(opts Options, cgroupV1 bool) *v1alpha4.Cluster {
	cfg := &v1alpha4.Cluster{}
	if opts.Base != nil {
		cfg = opts.Base.DeepCopy()
	}
	cfg.Kind = "Cluster"
	cfg.APIVersion = "kind.x-k8s.io/v1alpha4"
	cfg.Name = opts.Name
	if len(cfg.Nodes) == 0 {
		cfg.Nodes = append(cfg.Nodes, v1alpha4.Node{Role: v1alpha4.ControlPlaneRole})
		for range opts.Workers {
			cfg.Nodes = append(cfg.Nodes, v1alpha4.Node{Role: v1alpha4.WorkerRole})
		}
	}
	for i := range cfg.Nodes {
		cfg.Nodes[i].Image = opts.Image
	}
	if cgroupV1 && !slices.Contains(cfg.KubeadmConfigPatches, kubeletCgroupV1Patch) {
		cfg.KubeadmConfigPatches = append(cfg.KubeadmConfigPatches, kubeletCgroupV1Patch)
	}
	if len(opts.RegistryMirrors) > 0 {
		if !slices.Contains(cfg.ContainerdConfigPatches, containerdMirrorPatch) {
			cfg.ContainerdConfigPatches = append(cfg.ContainerdConfigPatches, containerdMirrorPatch)
		}
		for i := range cfg.Nodes {
			cfg.Nodes[i].ExtraMounts = append(cfg.Nodes[i].ExtraMounts, v1alpha4.Mount{
				HostPath: opts.mirrorDir(), ContainerPath: mirror.CertsDir, Readonly: true,
			})
		}
	}
	return cfg
}

// writeMirrorFiles writes the containerd host files of opts into its
// mirror directory (replacing what was there).
func writeMirrorFiles(opts Options) error {
	files, err := mirror.ContainerdHostsFiles(opts.RegistryMirrors)
	if err != nil {
		return err
	}
	dir := opts.mirrorDir()
	if dir == "" {
		return errors.New("kindcluster: registry mirrors need MirrorDir or Kubeconfig (a directory for the host files)")
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(dir, strings.TrimPrefix(f.Path, mirror.CertsDir+"/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(f.Content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// DockerCgroupV1 asks the Docker engine which cgroup version its containers get.
func DockerCgroupV1(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.CgroupVersion}}").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("docker info: %w: %s", err, strings.TrimSpace(string(out)))
	}
	switch v := strings.TrimSpace(string(out)); v {
	case "1":
		return true, nil
	case "2":
		return false, nil
	default:
		return false, fmt.Errorf("docker info: unexpected cgroup version %q", v)
	}
}

// Create creates the cluster and waits (bounded) for its control plane.
// kind's library takes no context: when ctx ends during creation, Create waits
// for kind to return (its steps are bounded), deletes the half-made cluster
// and returns ctx's error.
func (m *Manager) Create(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Name == "" || opts.Image == "" {
		return nil, errors.New("kindcluster: Name and Image are required")
	}
	if opts.WaitForReady <= 0 {
		opts.WaitForReady = 3 * time.Minute
	}
	existing, err := m.provider.List()
	if err != nil {
		return nil, fmt.Errorf("list kind clusters: %w", err)
	}
	if slices.Contains(existing, opts.Name) {
		return nil, fmt.Errorf("kind cluster %q already exists (delete it first)", opts.Name)
	}
	cgroupV1 := false
	if opts.CgroupV1 != nil {
		cgroupV1 = *opts.CgroupV1
	} else if cgroupV1, err = DockerCgroupV1(ctx); err != nil {
		return nil, err
	}
	cfg := Config(opts, cgroupV1)
	if len(opts.RegistryMirrors) > 0 {
		if err := writeMirrorFiles(opts); err != nil {
			return nil, fmt.Errorf("registry mirrors: %w", err)
		}
	}
	if opts.Kubeconfig != "" {
		if err := os.MkdirAll(filepath.Dir(opts.Kubeconfig), 0o700); err != nil {
			return nil, fmt.Errorf("kubeconfig dir: %w", err)
		}
	}
	m.log.Info("creating kind cluster", "name", opts.Name, "image", opts.Image, "nodes", len(cfg.Nodes), "cgroupV1", cgroupV1)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		done <- m.provider.Create(opts.Name,
			cluster.CreateWithV1Alpha4Config(cfg),
			cluster.CreateWithNodeImage(opts.Image),
			cluster.CreateWithWaitForReady(opts.WaitForReady),
			cluster.CreateWithKubeconfigPath(opts.Kubeconfig),
			cluster.CreateWithDisplayUsage(false),
			cluster.CreateWithDisplaySalutation(false),
		)
	}()
	ticker := time.NewTicker(15 * time.Second)
	defer ticker.Stop()
	cancelled := ctx.Done()
	for {
		select {
		case err := <-done:
			if err != nil {
				return nil, fmt.Errorf("create kind cluster %q: %w%s", opts.Name, err, commandOutput(err))
			}
			if ctx.Err() != nil {
				m.log.Warn("cancelled during creation: deleting the cluster", "name", opts.Name)
				if derr := m.Delete(context.WithoutCancel(ctx), opts.Name, opts.Kubeconfig); derr != nil {
					return nil, errors.Join(ctx.Err(), derr)
				}
				return nil, fmt.Errorf("create kind cluster %q: %w", opts.Name, ctx.Err())
			}
			names, err := m.NodeNames(opts.Name)
			if err != nil {
				return nil, err
			}
			m.log.Info("kind cluster created", "name", opts.Name, "elapsed", time.Since(start).Round(time.Second))
			return &Cluster{Name: opts.Name, Image: opts.Image, Kubeconfig: opts.Kubeconfig, Nodes: names}, nil
		case <-ticker.C:
			m.log.Info("waiting for kind to create the cluster", "name", opts.Name, "elapsed", time.Since(start).Round(time.Second), "bound", "kind's own steps + WaitForReady "+opts.WaitForReady.String())
		case <-cancelled:
			cancelled = nil // report once, then wait for kind to return (its steps are bounded)
			m.log.Warn("cancel requested: waiting for kind to finish its current step, then deleting the cluster", "name", opts.Name)
		}
	}
}

// outputTail bounds the command output an error carries.
const outputTail = 4000

// commandOutput is the tail of the output of the command behind a kind
// error (kubeadm init's, for a control plane that did not come up), which
// kind's own error text leaves out; "" when err carries none.
func commandOutput(err error) string {
	re := kindexec.RunErrorForError(err)
	if re == nil || len(bytes.TrimSpace(re.Output)) == 0 {
		return ""
	}
	out := bytes.TrimSpace(re.Output)
	if len(out) > outputTail {
		out = append([]byte("..."), out[len(out)-outputTail:]...)
	}
	return "; its output:\n" + string(out)
}

// Delete deletes the cluster (no error when it does not exist) and checks
// that no container of it is left.
func (m *Manager) Delete(ctx context.Context, name, kubeconfig string) error {
	start := time.Now()
	if err := m.provider.Delete(name, kubeconfig); err != nil {
		return fmt.Errorf("delete kind cluster %q: %w", name, err)
	}
	left, err := Containers(ctx, name)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("kind cluster %q deleted but containers remain: %s", name, strings.Join(left, ", "))
	}
	m.log.Info("kind cluster deleted", "name", name, "elapsed", time.Since(start).Round(time.Second))
	return nil
}

// Kubeconfig returns the cluster's kubeconfig (server address as seen from
// this host).
func (m *Manager) Kubeconfig(name string) (string, error) {
	cfg, err := m.provider.KubeConfig(name, false)
	if err != nil {
		return "", fmt.Errorf("kubeconfig of kind cluster %q: %w", name, err)
	}
	return cfg, nil
}

// List returns the names of the existing kind clusters.
func (m *Manager) List() ([]string, error) {
	names, err := m.provider.List()
	if err != nil {
		return nil, fmt.Errorf("list kind clusters: %w", err)
	}
	return names, nil
}

// NodeNames lists the node containers of a cluster.
func (m *Manager) NodeNames(name string) ([]string, error) {
	ns, err := m.provider.ListNodes(name)
	if err != nil {
		return nil, fmt.Errorf("list nodes of %q: %w", name, err)
	}
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, n.String())
	}
	slices.Sort(out)
	return out, nil
}

// ExportLogs writes kind's log dump of the cluster (journal, kubelet,
// containerd, pod logs, docker inspect) into dir.
func (m *Manager) ExportLogs(ctx context.Context, name, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("log dir: %w", err)
	}
	if err := m.provider.CollectLogs(name, dir); err != nil {
		return fmt.Errorf("export logs of %q to %s: %w", name, dir, err)
	}
	return nil
}

// LoadImages copies images from the Docker engine into every node of the
// cluster (what `kind load docker-image` does).
func (m *Manager) LoadImages(ctx context.Context, name string, images ...string) error {
	ns, err := m.provider.ListInternalNodes(name)
	if err != nil {
		return fmt.Errorf("list nodes of %q: %w", name, err)
	}
	if len(ns) == 0 {
		return fmt.Errorf("kind cluster %q has no nodes", name)
	}
	tmp, err := os.MkdirTemp("", "capilab-kind-load-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	archive := filepath.Join(tmp, "images.tar")
	args := append([]string{"save", "-o", archive}, images...)
	if out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("docker save %s: %w: %s", strings.Join(images, " "), err, strings.TrimSpace(string(out)))
	}
	for _, n := range ns {
		if err := loadArchive(n, archive); err != nil {
			return fmt.Errorf("load %s into node %s: %w", strings.Join(images, " "), n, err)
		}
	}
	m.log.Info("images loaded", "cluster", name, "images", images, "nodes", len(ns))
	return nil
}

func loadArchive(n nodes.Node, archive string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	return nodeutils.LoadImageArchive(n, f)
}

// Containers lists the Docker containers (running or not) that belong to the
// kind cluster name.
func Containers(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "ps", "-a", "--filter", "label="+ClusterLabel+"="+name, "--format", "{{.Names}}").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("docker ps: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return strings.Fields(string(out)), nil
}
