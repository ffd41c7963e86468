package mgmt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/capilab/capilab/internal/command"
	"github.com/capilab/capilab/internal/kindcluster"
)

// Host is where the management cluster runs. The local kind host is the
// default; a remote VM implements the same seam.
type Host interface {
	// Describe names the host for messages ("kind cluster capi-mgmt").
	Describe() string
	// Preflight fails with an ErrBadEnvironment when the host cannot work
	// at all (no Docker engine), before anything is created.
	Preflight(ctx context.Context) error
	// Identity returns what proves the host is the one capilab made (node
	// container IDs) and whether it exists.
	Identity(ctx context.Context) (ids []string, exists bool, err error)
	// Create creates it; it fails when it exists.
	Create(ctx context.Context) error
	// Delete deletes it (no error when it does not exist).
	Delete(ctx context.Context) error
	// Kubeconfig returns a kubeconfig for it, with context named context.
	Kubeconfig(ctx context.Context, context string) ([]byte, error)
	// LoadImages makes images from the local engine available to its nodes.
	LoadImages(ctx context.Context, refs []string) error
}

// ErrBadEnvironment marks a preflight failure: nothing was done, the
// machine needs something first.
var ErrBadEnvironment = errors.New("the machine is not ready")

// KindHost is a local kind cluster.
type KindHost struct {
	Name  string
	Image string // node image
	Kind  *kindcluster.Manager
	Log   *slog.Logger
	// WaitForReady bounds kind's own wait for its control plane.
	WaitForReady time.Duration
	// RegistryMirrors (setting registry_mirrors) and MirrorDir, a directory
	// that outlives the cluster's nodes (they mount it), make containerd pull
	// through the mirrors.
	RegistryMirrors map[string]string
	MirrorDir       string
}

// SetImage sets the node image (chosen once the machine is known).
func (h *KindHost) SetImage(image string) { h.Image = image }

// Describe names the cluster.
func (h *KindHost) Describe() string { return "kind cluster " + h.Name }

// Preflight checks that a Docker engine answers.
func (h *KindHost) Preflight(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := command.New("docker", "version", "--format", "{{.Server.Version}}").Output(ctx); err != nil {
		return fmt.Errorf("%w: no Docker engine answers (start one with: scripts/docker-engine.sh start)", ErrBadEnvironment)
	}
	return nil
}

// Identity lists the IDs of the cluster's node containers.
func (h *KindHost) Identity(ctx context.Context) ([]string, bool, error) {
	out, err := command.New("docker", "ps", "-a", "--no-trunc", "--filter", "label="+kindcluster.ClusterLabel+"="+h.Name, "--format", "{{.ID}}").Output(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("list the containers of kind cluster %s: %w", h.Name, err)
	}
	ids := strings.Fields(string(out))
	slices.Sort(ids)
	return ids, len(ids) > 0, nil
}

// Create creates the kind cluster. kind's own kubeconfig file is thrown
// away: Kubeconfig exports a fresh one.
func (h *KindHost) Create(ctx context.Context) error {
	tmp, err := os.MkdirTemp("", "capilab-kind-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	_, err = h.Kind.Create(ctx, kindcluster.Options{Name: h.Name, Image: h.Image, WaitForReady: h.WaitForReady,
		Kubeconfig: filepath.Join(tmp, "kubeconfig"), RegistryMirrors: h.RegistryMirrors, MirrorDir: h.MirrorDir})
	return err
}

// Delete deletes the kind cluster.
func (h *KindHost) Delete(ctx context.Context) error { return h.Kind.Delete(ctx, h.Name, "") }

// Kubeconfig returns kind's kubeconfig with the context renamed.
func (h *KindHost) Kubeconfig(_ context.Context, name string) ([]byte, error) {
	raw, err := h.Kind.Kubeconfig(h.Name)
	if err != nil {
		return nil, err
	}
	return renameContext([]byte(raw), name)
}

// LoadImages loads images into every node.
func (h *KindHost) LoadImages(ctx context.Context, refs []string) error {
	return h.Kind.LoadImages(ctx, h.Name, refs...)
}

// renameContext renames the (single) context, cluster and user of a
// kubeconfig to name.
func renameContext(kubeconfig []byte, name string) ([]byte, error) {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if len(cfg.Contexts) != 1 {
		return nil, fmt.Errorf("kubeconfig: %d contexts, want 1", len(cfg.Contexts))
	}
	for old, c := range cfg.Contexts {
		cluster, user := cfg.Clusters[c.Cluster], cfg.AuthInfos[c.AuthInfo]
		if cluster == nil || user == nil {
			return nil, fmt.Errorf("kubeconfig: context %s names a missing cluster or user", old)
		}
		delete(cfg.Contexts, old)
		delete(cfg.Clusters, c.Cluster)
		delete(cfg.AuthInfos, c.AuthInfo)
		c.Cluster, c.AuthInfo = name, name
		cfg.Contexts[name], cfg.Clusters[name], cfg.AuthInfos[name] = c, cluster, user
	}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}
