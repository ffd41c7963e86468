package addons

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/mod/semver"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/capilab/capilab/internal/command"
	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/versions"
)

// The local lab's nodes pull only images built on this machine (served by
// the lab's registry mirror under their upstream names). recipes say how
// each image an addon manifest names is built from its Go module; the
// image tag is the module version, so the manifests stay unchanged.

// recipe builds the images of one upstream repository.
type recipe struct {
	// module is the module path for major version 0 or 1; later majors
	// get their /vN suffix from the tag.
	module string
	pkg    string
	// binary is where the program goes in the image.
	binary string
	// entrypoint: the image's entrypoint is the binary (the CSI sidecars'
	// and metrics-server's images); otherwise it is the command only, and
	// the manifests name the binary in args (cloud-provider-openstack's).
	entrypoint bool
	// ldflags set the version the program reports.
	ldflags func(version string) []string
	// edits prepare the module copy (nested modules).
	edits func(module, version string) []modbuild.Edit
	// substitute maps tags the module proxy does not serve to the version
	// built instead.
	substitute func(p versions.LocalImages) map[string]string
}

// unavailable are repositories the manifests name whose Go modules the
// module proxy serves at no version: the local lab cannot have them.
var unavailable = map[string]string{
	"registry.k8s.io/sig-storage/csi-node-driver-registrar": "github.com/kubernetes-csi/node-driver-registrar is served by the Go module proxy at no version",
	"registry.k8s.io/sig-storage/livenessprobe":             "github.com/kubernetes-csi/livenessprobe is served by the Go module proxy at no version",
}

func cpoLDFlags(v string) []string {
	return []string{"-X k8s.io/component-base/version.gitVersion=" + v, "-X k8s.io/cloud-provider-openstack/pkg/version.Version=" + v}
}

func mainVersion(v string) []string { return []string{"-X main.version=" + v} }

var recipes = map[string]recipe{
	"registry.k8s.io/provider-os/openstack-cloud-controller-manager": {
		module: "k8s.io/cloud-provider-openstack", pkg: "./cmd/openstack-cloud-controller-manager",
		binary: "/bin/openstack-cloud-controller-manager", ldflags: cpoLDFlags,
	},
	"registry.k8s.io/provider-os/cinder-csi-plugin": {
		module: "k8s.io/cloud-provider-openstack", pkg: "./cmd/cinder-csi-plugin",
		binary: "/bin/cinder-csi-plugin", ldflags: cpoLDFlags,
	},
	"registry.k8s.io/sig-storage/csi-provisioner": {
		module: "github.com/kubernetes-csi/external-provisioner", pkg: "./cmd/csi-provisioner",
		binary: "/csi-provisioner", entrypoint: true, ldflags: mainVersion,
	},
	"registry.k8s.io/sig-storage/csi-attacher": {
		module: "github.com/kubernetes-csi/external-attacher", pkg: "./cmd/csi-attacher",
		binary: "/csi-attacher", entrypoint: true, ldflags: mainVersion,
		substitute: func(p versions.LocalImages) map[string]string { return p.CSIAttacher.Substitute },
	},
	"registry.k8s.io/sig-storage/csi-resizer": {
		module: "github.com/kubernetes-csi/external-resizer", pkg: "./cmd/csi-resizer",
		binary: "/csi-resizer", entrypoint: true, ldflags: mainVersion,
	},
	"registry.k8s.io/sig-storage/csi-snapshotter": {
		module: "github.com/kubernetes-csi/external-snapshotter", pkg: "./cmd/csi-snapshotter",
		binary: "/csi-snapshotter", entrypoint: true, ldflags: mainVersion, edits: snapshotterEdits,
	},
	SnapshotControllerImage: {
		module: "github.com/kubernetes-csi/external-snapshotter", pkg: "./cmd/snapshot-controller",
		binary: "/snapshot-controller", entrypoint: true, ldflags: mainVersion, edits: snapshotterEdits,
	},
	"registry.k8s.io/metrics-server/metrics-server": {
		module: "sigs.k8s.io/metrics-server", pkg: "./cmd/metrics-server",
		binary: "/metrics-server", entrypoint: true,
		ldflags: func(v string) []string { return []string{"-X k8s.io/client-go/pkg/version.gitVersion=" + v} },
	},
}

// snapshotterEdits: external-snapshotter's go.mod replaces its client
// module with ./client, which the module zip leaves out.
func snapshotterEdits(module, version string) []modbuild.Edit {
	return []modbuild.Edit{modbuild.NestedModule{Module: module + "/client/" + semver.Major(version), Version: version, Dir: "client"}}
}

// majorPath adds the /vN suffix Go modules carry from major version 2 on.
func majorPath(module, version string) string {
	if m := semver.Major(version); m != "v0" && m != "v1" {
		return module + "/" + m
	}
	return module
}

// splitRef splits repository:tag (no digests: the manifests pin tags).
func splitRef(ref string) (repo, tag string, err error) {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i:], "/") || strings.Contains(ref, "@") {
		return "", "", fmt.Errorf("image %q is not repository:tag", ref)
	}
	return ref[:i], ref[i+1:], nil
}

// LocalImage is one image the local lab builds from a Go module.
type LocalImage struct {
	// Ref is the image reference the manifests use (the upstream name).
	Ref     string
	Program modbuild.Program
	Image   func(binary string) modbuild.Image
}

// LocalImageFor returns how the local lab builds an image the addon
// manifests name (after substitution, see withLocalImages): OCCM and
// cinder-csi-plugin from k8s.io/cloud-provider-openstack, the CSI sidecars
// and the snapshot controller from their github.com/kubernetes-csi/*
// modules, metrics-server from sigs.k8s.io/metrics-server.
func LocalImageFor(ref string) (LocalImage, error) {
	repo, tag, err := splitRef(ref)
	if err != nil {
		return LocalImage{}, err
	}
	if why, ok := unavailable[repo]; ok {
		return LocalImage{}, fmt.Errorf("image %s cannot be built here: %s", ref, why)
	}
	rc, ok := recipes[repo]
	if !ok {
		return LocalImage{}, fmt.Errorf("image %s: capilab has no recipe to build it from a Go module", ref)
	}
	if !semver.IsValid(tag) {
		return LocalImage{}, fmt.Errorf("image %s: tag %q is not a module version", ref, tag)
	}
	module := majorPath(rc.module, tag)
	name := repo[strings.LastIndexByte(repo, '/')+1:]
	prog := modbuild.Program{Name: name + "-" + tag, Module: module, Version: tag, Package: rc.pkg}
	if rc.ldflags != nil {
		prog.LDFlags = rc.ldflags(tag)
	}
	if rc.edits != nil {
		prog.Edits = rc.edits(rc.module, tag)
	}
	img := func(binary string) modbuild.Image {
		i := modbuild.Image{Ref: ref,
			Files:  []modbuild.File{{Path: rc.binary, Source: binary, Mode: 0o755}},
			Labels: map[string]string{"dev.capilab.source": "built from " + module + "@" + tag + " by capilab"}}
		if rc.entrypoint {
			i.Entrypoint = []string{rc.binary}
		} else {
			i.Cmd = []string{rc.binary}
		}
		return i
	}
	return LocalImage{Ref: ref, Program: prog, Image: img}, nil
}

// Buildable reports whether the local lab can build an image.
func Buildable(ref string) bool {
	_, err := LocalImageFor(ref)
	return err == nil
}

// ImageBuilder is what building local images needs (modbuild.Builder).
type ImageBuilder interface {
	Build(ctx context.Context, p modbuild.Program) (string, error)
	EnsureImage(ctx context.Context, img modbuild.Image) (bool, error)
}

// BuildLocalImages builds every image the bundle's manifests name that is
// built from a Go module (binaries and images are cached by content: a
// current image costs a docker inspect). Images already in the node image
// (the cni-agent) are skipped; any other image it cannot build is an
// error naming it.
func BuildLocalImages(ctx context.Context, b ImageBuilder, refs []string) ([]string, error) {
	var built []string
	for _, ref := range refs {
		if strings.HasPrefix(ref, NodeImageLocalRegistry+"/") {
			continue // preloaded in the node image
		}
		li, err := LocalImageFor(ref)
		if err != nil {
			return built, err
		}
		bin, err := b.Build(ctx, li.Program)
		if err != nil {
			return built, fmt.Errorf("image %s: %w", ref, err)
		}
		if _, err := b.EnsureImage(ctx, li.Image(bin)); err != nil {
			return built, fmt.Errorf("image %s: %w", ref, err)
		}
		built = append(built, ref)
	}
	return built, nil
}

// NodeImageLocalRegistry is the registry name of images the local node
// image carries preloaded (the cni-agent); nothing pulls them.
const NodeImageLocalRegistry = "capilab.local"

// withLocalImages points the manifests at the image versions the local lab
// builds where a tag is not served (substitute in versions.yaml), with a
// note each.
func withLocalImages(objs []*unstructured.Unstructured, p versions.LocalImages, notes *[]string) []*unstructured.Unstructured {
	for _, o := range objs {
		if !podKinds[o.GetKind()] {
			continue
		}
		for _, init := range []bool{true, false} {
			cs, err := containers(o, init)
			if err != nil {
				continue
			}
			changed := false
			for _, c := range cs {
				ref, _ := c["image"].(string)
				repo, tag, err := splitRef(ref)
				if err != nil {
					continue
				}
				rc, ok := recipes[repo]
				if !ok || rc.substitute == nil {
					continue
				}
				if to, ok := rc.substitute(p)[tag]; ok {
					c["image"] = repo + ":" + to
					changed = true
					*notes = append(*notes, fmt.Sprintf("%s %s: image %s runs %s instead: the Go module proxy does not serve %s@%s",
						o.GetKind(), kube.ObjectName(o), ref, to, majorPath(rc.module, tag), tag))
				}
			}
			if changed {
				_ = setContainers(o, cs, init)
			}
		}
	}
	return objs
}

// cinderForLocalLab leaves out what the local lab cannot build: the
// liveness-probe sidecars (and the liveness probes that ask them), and the
// node plugin, which is of no use without node-driver-registrar (the
// kubelet never learns of the driver). What remains — the controller
// plugin with provisioner, attacher, snapshotter and resizer — creates,
// attaches and deletes Cinder volumes with the cluster's markers; volumes
// are not mounted into pods.
func cinderForLocalLab(objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, []string) {
	var out []*unstructured.Unstructured
	var notes []string
	for _, o := range objs {
		if !podKinds[o.GetKind()] {
			out = append(out, o)
			continue
		}
		cs, err := containers(o, false)
		if err != nil {
			out = append(out, o)
			continue
		}
		var keep []map[string]any
		var dropped []string
		needsRegistrar := false
		for _, c := range cs {
			ref, _ := c["image"].(string)
			repo, _, _ := splitRef(ref)
			if why, ok := unavailable[repo]; ok {
				dropped = append(dropped, fmt.Sprintf("%v (%s: %s)", c["name"], ref, why))
				if strings.HasSuffix(repo, "/csi-node-driver-registrar") {
					needsRegistrar = true
				}
				continue
			}
			keep = append(keep, c)
		}
		switch {
		case needsRegistrar:
			notes = append(notes, fmt.Sprintf("%s %s is left out: its node-driver-registrar cannot be built here (%s); volumes are created, attached and deleted, not mounted into pods",
				o.GetKind(), kube.ObjectName(o), unavailable["registry.k8s.io/sig-storage/csi-node-driver-registrar"]))
			continue
		case len(dropped) > 0:
			for _, c := range keep {
				delete(c, "livenessProbe") // the probes ask the liveness-probe sidecar
			}
			_ = setContainers(o, keep, false)
			notes = append(notes, fmt.Sprintf("%s %s runs without %s, and without liveness probes",
				o.GetKind(), kube.ObjectName(o), strings.Join(dropped, ", ")))
		}
		out = append(out, o)
	}
	return out, notes
}

// LocalCNIManifest reads the cni-agent's manifest out of the local node
// image (kind's default CNI manifest there), which names the agent image
// the node image carries.
func LocalCNIManifest(ctx context.Context, docker, nodeImage string) ([]byte, error) {
	if docker == "" {
		docker = "docker"
	}
	out, err := command.New(docker, "run", "--rm", "--entrypoint", "cat", nodeImage, "/kind/manifests/default-cni.yaml").Output(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the cni-agent manifest from node image %s: %w", nodeImage, err)
	}
	return out, nil
}
