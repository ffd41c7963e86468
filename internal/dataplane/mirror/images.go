package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/command"
	"github.com/capilab/capilab/internal/fsutil"
	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/wait"
)

// CloudProviderModule is OCCM's and Cinder CSI's module.
const CloudProviderModule = "k8s.io/cloud-provider-openstack"

// CloudProviderImage is one image built from cloud-provider-openstack.
type CloudProviderImage struct {
	Program modbuild.Program
	Image   modbuild.Image // Files filled in by Ensure
	Path    string         // the binary's path in the image
}

// CloudProviderImages are OCCM and the Cinder CSI plugin at version, under
// their upstream names, each a static binary on capilab's static base (CA
// certificates), started as upstream's images are (their manifests pass the
// binary as the first argument). The Cinder CSI node plugin's filesystem
// tools (mkfs, blkid, …) are not in it: no devcloud volume reaches a node.
func CloudProviderImages(version string) []CloudProviderImage {
	ldflags := []string{
		"-X 'k8s.io/component-base/version.gitVersion=" + version + "'",
		"-X 'k8s.io/cloud-provider-openstack/pkg/version.Version=" + version + "'",
	}
	var out []CloudProviderImage
	for _, name := range []string{"openstack-cloud-controller-manager", "cinder-csi-plugin"} {
		out = append(out, CloudProviderImage{
			Program: modbuild.Program{Name: name, Module: CloudProviderModule, Version: version, Package: "./cmd/" + name, LDFlags: ldflags},
			Image:   modbuild.Image{Ref: "registry.k8s.io/provider-os/" + name + ":" + version, Cmd: []string{"/bin/" + name}},
			Path:    "/bin/" + name,
		})
	}
	return out
}

// EnsureCloudProviderImages builds (cached by content) the images and
// returns their references.
func EnsureCloudProviderImages(ctx context.Context, b *modbuild.Builder, version string) ([]string, error) {
	var refs []string
	for _, ci := range CloudProviderImages(version) {
		bin, err := b.Build(ctx, ci.Program)
		if err != nil {
			return nil, err
		}
		img := ci.Image
		img.Files = []modbuild.File{{Path: ci.Path, Source: bin, Mode: 0o755}}
		if _, err := b.EnsureImage(ctx, img); err != nil {
			return nil, err
		}
		refs = append(refs, img.Ref)
	}
	return refs, nil
}

// Pusher pushes the images capilab built into a namespaced mirror.
type Pusher struct {
	// Docker is the docker command (default "docker").
	Docker string
	// Mirror is the mirror's host:port as the Docker engine reaches it
	// (devcloud: 127.0.0.1:5001; loopback registries need no TLS).
	Mirror string
	// LockDir holds the lock every push to the mirror from this machine
	// takes (mirror-push.lock), whichever process it runs in: a push tags
	// the image under the mirror's name and removes that tag again, and
	// two pushes of one image at once would remove each other's tag.
	LockDir string
	Log     *slog.Logger
}

func (p *Pusher) docker(args ...string) *command.Cmd {
	d := p.Docker
	if d == "" {
		d = "docker"
	}
	return command.New(d, args...)
}

// Built lists the images carrying modbuild.CacheKeyLabel (every image
// capilab builds), leaving out kind node images (a node is not pulled by
// nodes) and untagged ones.
func (p *Pusher) Built(ctx context.Context) ([]string, error) {
	out, err := p.docker("image", "ls", "--filter", "label="+modbuild.CacheKeyLabel, "--format", "{{.Repository}}:{{.Tag}}").Output(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var refs []string
	for _, l := range strings.Fields(string(out)) {
		if strings.Contains(l, "<none>") || strings.HasPrefix(l, "kindest/node:") || strings.HasPrefix(l, p.Mirror+"/") || seen[l] {
			continue
		}
		seen[l] = true
		refs = append(refs, l)
	}
	sort.Strings(refs)
	return refs, nil
}

// Push pushes each image to the mirror under PushRef and removes the extra
// tag again (the image stays under its own name), holding the machine's
// push lock (LockDir) meanwhile.
func (p *Pusher) Push(ctx context.Context, refs []string) error {
	if len(refs) == 0 {
		return nil
	}
	if p.LockDir == "" {
		return fmt.Errorf("mirror push: no lock directory set")
	}
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	unlock, err := fsutil.Lock(ctx, log, filepath.Join(p.LockDir, "mirror-push.lock"),
		wait.Spec{What: "another push to the registry mirror " + p.Mirror + " to finish", Timeout: time.Hour, Interval: time.Second})
	if err != nil {
		return fmt.Errorf("mirror push lock: %w", err)
	}
	defer unlock()
	for _, ref := range refs {
		target := PushRef(p.Mirror, ref)
		if err := p.docker("tag", ref, target).Run(ctx); err != nil {
			return err
		}
		err := p.docker("push", "--quiet", target).Run(ctx)
		if rerr := p.docker("image", "rm", target).Run(ctx); rerr != nil && err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("push %s to %s: %w", ref, target, err)
		}
		if p.Log != nil {
			p.Log.Info("pushed", "image", ref, "as", target)
		}
	}
	return nil
}
