package lab

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/capilab/capilab/internal/command"
	"github.com/capilab/capilab/internal/dataplane/mirror"
	"github.com/capilab/capilab/internal/devcloud"
	"github.com/capilab/capilab/internal/image"
)

// LocalLabCloud is the clouds.yaml entry devcloud writes for its data
// plane: the member user through the region whose endpoints containers
// reach (172.24.4.1).
const LocalLabCloud = "devcloud-lab"

// localLabGateway is where containers reach devcloud and its registry mirror.
const localLabGateway = "172.24.4.1"

// LocalLab reports whether the lab runs on devcloud's data plane: one
// machine, every node a container, every cluster in one network space.
func (r *Run) LocalLab() bool { return r.Settings.Cloud == LocalLabCloud }

// useLocalLabByDefault: with no cloud selected, the main-job targets run on
// the local lab and say so on their first line; devcloud (with its data
// plane) and a Docker engine are installed and started when missing.
func (r *Run) useLocalLabByDefault(ctx context.Context) error {
	if r.Settings.Cloud != "" {
		if r.LocalLab() {
			r.applyLocalLabDefaults()
		}
		return nil
	}
	fmt.Fprintf(r.Stdout, "no cloud selected (OS_CLOUD, or cloud in lab.yaml): running on the local lab — devcloud and its data plane on this machine, cloud %s\n", LocalLabCloud)
	r.Settings.Cloud = LocalLabCloud
	r.Loaded.Sources["cloud"] = "local lab (no cloud selected)"
	r.applyLocalLabDefaults()
	return r.ensureLocalLab(ctx)
}

// ensureLocalLab starts a Docker engine and devcloud (installing them on a
// fresh machine); both are no-ops when running.
func (r *Run) ensureLocalLab(ctx context.Context) error {
	step := r.Log.With("local lab", LocalLabCloud)
	step.Info("making sure a Docker engine runs (scripts/docker-engine.sh start)")
	if err := command.New(filepath.Join(r.Dir, "scripts", "docker-engine.sh"), "start").WithOutput(r.opts.Stderr).Run(ctx); err != nil {
		return fmt.Errorf("local lab: Docker engine: %w", err)
	}
	step.Info("making sure devcloud runs (make devcloud-up)")
	dc := devcloud.New(devcloud.WithScript(filepath.Join(r.Dir, devcloud.DefaultScript)), devcloud.WithOutput(r.opts.Stderr, r.opts.Stderr))
	if err := dc.Up(ctx); err != nil {
		return fmt.Errorf("local lab: devcloud: %w", err)
	}
	return nil
}

// applyLocalLabDefaults sets what the local lab needs where the user set
// nothing: the node image is the locally built kind node image (its
// Kubernetes version), nodes pull through devcloud's registry mirror, and
// a small cluster (one control plane, one worker) fits the machine.
func (r *Run) applyLocalLabDefaults() {
	s, src := r.Settings, r.Loaded.Sources
	def := func(key string) bool { return src[key] == "default" }
	if def("registry_mirrors") && len(s.RegistryMirrors) == 0 {
		s.RegistryMirrors = mirror.DevcloudMirrors(localLabGateway)
		src["registry_mirrors"] = "local lab"
	}
	if def("worker_count") {
		s.WorkerCount = 1
		src["worker_count"] = "local lab"
	}
	if def("kubernetes_version") {
		s.KubernetesVersion = r.Loaded.Versions.KindNode.Kubernetes
		src["kubernetes_version"] = "local lab"
	}
}

// localLabImageSpec is the local lab's node image: a Glance image that
// tells devcloud's data plane to run its servers as containers of the
// locally built kind node image.
func (r *Run) localLabImageSpec() (image.Spec, error) {
	s := r.Settings
	kn := r.Loaded.Versions.KindNode
	want := "v" + strings.TrimPrefix(s.KubernetesVersion, "v")
	if want != kn.Kubernetes {
		return image.Spec{}, &ExitError{Code: ExitBadInput, Err: fmt.Errorf("kubernetes_version: %s: the local lab's nodes run the kind node image %s, which is Kubernetes %s", s.KubernetesVersion, kn.Image(), kn.Kubernetes)}
	}
	dir := filepath.Join(string(r.State()), "cache", "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return image.Spec{}, err
	}
	content := []byte("capilab local-lab node image: servers of this image run as containers of " + kn.Image() + "\n")
	sum := sha256.Sum256(content)
	path := filepath.Join(dir, "local-lab-node-"+kn.Tag+".img")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		return image.Spec{}, err
	}
	name := s.ImageName
	if name == "" {
		name = "capilab-node-" + kn.Kubernetes
	}
	return image.Spec{Name: name, Source: path, SHA256: fmt.Sprintf("%x", sum), KubernetesVersion: kn.Kubernetes,
		NodeContainerImage: kn.Image(), CacheDir: dir, Timeout: s.ImageTimeout}, nil
}

var errNoFreeNodeCIDR = errors.New("no free /24 left in 10.8.0.0/16 for its nodes")

// localLabNodeCIDR gives a cluster of the local lab its own /24 in
// 10.8.0.0/16 (every cluster shares the machine's network space): the
// first free one from a place derived from its name, skipping the node
// CIDRs of the lab's other clusters.
func localLabNodeCIDR(name string, taken []string) (string, error) {
	var used []netip.Prefix
	for _, t := range taken {
		if p, err := netip.ParsePrefix(t); err == nil {
			used = append(used, p)
		}
	}
	h := sha256.Sum256([]byte(name))
	start := int(h[0])
	for i := range 256 {
		third := (start + i) % 256
		p := netip.MustParsePrefix(fmt.Sprintf("10.8.%d.0/24", third))
		free := true
		for _, u := range used {
			if u.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			return p.String(), nil
		}
	}
	return "", fmt.Errorf("cluster %s: %w", name, errNoFreeNodeCIDR)
}
