// Package imagebuild makes, without any container registry, the images a
// conformance run needs: sonobuoy's aggregator/worker image from the
// sonobuoy module, the conformance image (e2e.test, ginkgo, kubectl and
// go-runner built from k8s.io/kubernetes at the cluster's version) and the
// e2e test images that can be made from source or Debian packages (agnhost
// from the Kubernetes module on a Debian root file system; busybox from
// Debian's busybox-static; a glibc system with dig for the DNS tests).
//
// Programs and images go through internal/modbuild: binaries are cached by
// content, images carry their content key and are not rebuilt while it
// holds. Images are named with the references pods use
// (registry.k8s.io/...), so a kind cluster takes them unchanged. The two
// root file systems modbuild cannot make from files alone — a debootstrap'd
// Debian and busybox with its applet links — are imported here as local
// base images (capilab-conformance/...), keyed the same way.
package imagebuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/command"
	"github.com/capilab/capilab/internal/modbuild"
)

// recipe changes whenever the way a base root file system is made changes.
const recipe = "conformance-images/1"

// BasePrefix names the local base images this package imports.
const BasePrefix = "capilab-conformance/"

// Module paths the programs come from.
const (
	SonobuoyModule   = "github.com/vmware-tanzu/sonobuoy"
	KubernetesModule = "k8s.io/kubernetes"
)

// Builder makes images. Env is the environment of every command (PATH,
// HOME and Go's cache settings included); Log gets one line per decision.
type Builder struct {
	Mod         *modbuild.Builder // programs and images
	DebianSuite string            // suite of the Debian root file systems (debootstrap)
	CacheDir    string            // work files of the root file systems (required)
	Env         []string
	Log         *slog.Logger
}

func (b *Builder) log() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Log
}

func (b *Builder) check() error {
	switch {
	case b.Mod == nil:
		return errors.New("imagebuild: Mod is not set")
	case b.DebianSuite == "":
		return errors.New("imagebuild: DebianSuite is not set")
	case b.CacheDir == "":
		return errors.New("imagebuild: CacheDir is not set")
	}
	return os.MkdirAll(b.CacheDir, 0o755)
}

func (b *Builder) cmd(name string, args ...string) *command.Cmd {
	return command.New(name, args...).WithEnv(b.Env)
}

func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileHash(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// ---- sonobuoy ---------------------------------------------------------------

// Sonobuoy makes sonobuoy's aggregator and worker image from the sonobuoy
// module at version, with that version stamped into the binary: the
// module's own compiled-in version string can lag its tag, and the image
// name must be what the run's configuration says. Pods use
// sonobuoy/sonobuoy:<version>.
func (b *Builder) Sonobuoy(ctx context.Context, version string) (string, error) {
	if err := b.check(); err != nil {
		return "", err
	}
	bin, err := b.Mod.Build(ctx, modbuild.Program{
		Name: "sonobuoy", Module: SonobuoyModule, Version: version, Package: ".",
		LDFlags: []string{"-X " + SonobuoyModule + "/pkg/buildinfo.Version=" + version},
	})
	if err != nil {
		return "", err
	}
	ref := "sonobuoy/sonobuoy:" + version
	_, err = b.Mod.EnsureImage(ctx, modbuild.Image{Ref: ref, Entrypoint: []string{"/sonobuoy"},
		Files: []modbuild.File{{Path: "/sonobuoy", Source: bin, Mode: 0o755}}})
	return ref, err
}

// ---- Kubernetes test binaries and the conformance image ---------------------------

// Binaries are the Kubernetes test binaries of one version.
type Binaries struct {
	Version                                     string
	E2ETest, Ginkgo, Kubectl, GoRunner, Agnhost string
}

var releaseRE = regexp.MustCompile(`^v1\.(\d+)\.(\d+)$`)

// k8sLDFlags stamp the version into Kubernetes binaries as its release
// builds do.
func k8sLDFlags(version string) []string {
	m := releaseRE.FindStringSubmatch(version)
	var f []string
	for _, p := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		f = append(f, "-X "+p+".gitVersion="+version, "-X "+p+".gitMajor=1", "-X "+p+".gitMinor="+m[1], "-X "+p+".gitTreeState=clean")
	}
	return f
}

// KubernetesBinaries builds e2e.test (go test -c, vet off), ginkgo at
// Kubernetes' own pin, kubectl, go-runner and agnhost at version, each in a
// module that requires k8s.io/kubernetes with its staging modules replaced
// by their published versions.
func (b *Builder) KubernetesBinaries(ctx context.Context, version string) (Binaries, error) {
	if err := b.check(); err != nil {
		return Binaries{}, err
	}
	if !releaseRE.MatchString(version) {
		return Binaries{}, fmt.Errorf("kubernetes version %q is not a release like v1.2.3", version)
	}
	syn := &modbuild.Synthetic{Require: []string{KubernetesModule + " " + version}, KubernetesStaging: version}
	bins := Binaries{Version: version}
	for _, p := range []struct {
		out  *string
		name string
		pkg  string
		test bool
	}{
		{&bins.E2ETest, "e2e.test", KubernetesModule + "/test/e2e", true},
		{&bins.Ginkgo, "ginkgo", "github.com/onsi/ginkgo/v2/ginkgo", false},
		{&bins.Kubectl, "kubectl", KubernetesModule + "/cmd/kubectl", false},
		{&bins.GoRunner, "go-runner", KubernetesModule + "/test/conformance/image/go-runner", false},
		{&bins.Agnhost, "agnhost", KubernetesModule + "/test/images/agnhost", false},
	} {
		bin, err := b.Mod.Build(ctx, modbuild.Program{Name: p.name + "-" + version, Synthetic: syn, Package: p.pkg, Test: p.test, LDFlags: k8sLDFlags(version)})
		if err != nil {
			return Binaries{}, err
		}
		*p.out = bin
	}
	return bins, nil
}

// Conformance makes the conformance image of bins' version as Kubernetes'
// own recipe (test/conformance/image) lays it out: the binaries in
// /usr/local/bin, go-runner as kubeconformance, /run_e2e.sh and /gorunner.
// Pods use registry.k8s.io/conformance:<version>.
func (b *Builder) Conformance(ctx context.Context, bins Binaries) (string, error) {
	if err := b.check(); err != nil {
		return "", err
	}
	ref := "registry.k8s.io/conformance:" + bins.Version
	_, err := b.Mod.EnsureImage(ctx, modbuild.Image{
		Ref: ref, Entrypoint: []string{"kubeconformance"}, Env: []string{"RESULTS_DIR=/tmp/results"},
		Files: []modbuild.File{
			{Path: "/usr/local/bin/e2e.test", Source: bins.E2ETest, Mode: 0o755},
			{Path: "/usr/local/bin/ginkgo", Source: bins.Ginkgo, Mode: 0o755},
			{Path: "/usr/local/bin/kubectl", Source: bins.Kubectl, Mode: 0o755},
			{Path: "/usr/local/bin/kubeconformance", Source: bins.GoRunner, Mode: 0o755},
			{Path: "/run_e2e.sh", Source: bins.GoRunner, Mode: 0o755},
			{Path: "/gorunner", Source: bins.GoRunner, Mode: 0o755},
		},
	})
	return ref, err
}

// ListImages asks the e2e binary which images its tests use.
func (b *Builder) ListImages(ctx context.Context, bins Binaries) ([]string, error) {
	out, err := b.cmd(bins.E2ETest, "--list-images").Output(ctx)
	if err != nil {
		return nil, err
	}
	var refs []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.ContainsAny(l, " \t") && strings.Contains(l, ":") {
			refs = append(refs, l)
		}
	}
	slices.Sort(refs)
	if len(refs) == 0 {
		return nil, fmt.Errorf("%s --list-images printed no images", bins.E2ETest)
	}
	return slices.Compact(refs), nil
}

// ---- test images -----------------------------------------------------------------------

// buildable maps the e2e test images this package can make, by name (the
// last path element, without tag), to how.
var buildable = map[string]string{
	"agnhost":           "agnhost",
	"glibc-dns-testing": "agnhost", // a glibc system with dig: the Debian agnhost image is one
	"busybox":           "busybox",
}

// Buildable reports whether ref (an e2e test image) can be made here:
// one of the e2e-test-images the table knows (agnhost elsewhere, e.g. the
// private-registry test's, is not the same image).
func Buildable(ref string) bool { return recipeOf(ref) != "" }

func recipeOf(ref string) string {
	repo, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	dir := repo[:max(strings.LastIndex(repo, "/"), 0)]
	if !strings.HasSuffix(dir, "/e2e-test-images") {
		return ""
	}
	return buildable[imageName(ref)]
}

func imageName(ref string) string {
	name := ref
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.IndexAny(name, ":@"); i >= 0 {
		name = name[:i]
	}
	return name
}

// TestImages makes the images of refs that can be made and returns their
// references; the refs that cannot be made are returned apart.
func (b *Builder) TestImages(ctx context.Context, bins Binaries, refs []string) (made, unbuildable []string, err error) {
	if err := b.check(); err != nil {
		return nil, nil, err
	}
	unlock, err := b.Lock(ctx, "test-images")
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	var agnhostBase, busyboxBase string
	for _, ref := range refs {
		var img modbuild.Image
		switch recipeOf(ref) {
		case "agnhost":
			if agnhostBase == "" {
				if agnhostBase, err = b.debianBase(ctx, "agnhost", agnhostPackages, agnhostSetup); err != nil {
					return nil, nil, err
				}
			}
			porter := filepath.Join(b.CacheDir, "agnhost-porter-"+bins.Version)
			if err := b.porterFiles(ctx, bins.Version, porter); err != nil {
				return nil, nil, err
			}
			img = modbuild.Image{Ref: ref, From: agnhostBase, Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"},
				Files: []modbuild.File{
					{Path: "/agnhost", Source: bins.Agnhost, Mode: 0o755},
					{Path: "/localhost.crt", Source: filepath.Join(porter, "localhost.crt")},
					{Path: "/localhost.key", Source: filepath.Join(porter, "localhost.key")},
				}}
		case "busybox":
			if busyboxBase == "" {
				if busyboxBase, err = b.busyboxBase(ctx); err != nil {
					return nil, nil, err
				}
			}
			img = modbuild.Image{Ref: ref, From: busyboxBase, Cmd: []string{"sh"}}
		default:
			unbuildable = append(unbuildable, ref)
			continue
		}
		if _, err := b.Mod.EnsureImage(ctx, img); err != nil {
			return nil, nil, err
		}
		made = append(made, ref)
	}
	return made, unbuildable, nil
}

// porterFiles copies agnhost's TLS test certificate and key out of the
// Kubernetes module (test/images/agnhost/porter) into dir.
func (b *Builder) porterFiles(ctx context.Context, version, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "localhost.key")); err == nil {
		return nil
	}
	out, err := b.cmd("go", "mod", "download", "-json", KubernetesModule+"@"+version).WithDir(b.CacheDir).Output(ctx)
	if err != nil {
		return err
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		return fmt.Errorf("go mod download %s@%s: no directory (%v)", KubernetesModule, version, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"localhost.crt", "localhost.key"} {
		data, err := os.ReadFile(filepath.Join(info.Dir, "test", "images", "agnhost", "porter", f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// agnhostPackages are Debian's counterparts of the tools the upstream
// agnhost image installs (dig, curl, nc, ip, iperf, bash, util-linux, socat).
var agnhostPackages = []string{"bind9-dnsutils", "curl", "netcat-openbsd", "iproute2", "iperf", "bash", "util-linux", "socat", "passwd", "ca-certificates"}

// agnhostSetup are the commands run in the root file system: the users,
// groups, link and directory the upstream image has and tests use.
var agnhostSetup = [][]string{
	{"groupadd", "-g", "50000", "group-defined-in-image"},
	{"useradd", "-u", "1000", "-M", "-G", "group-defined-in-image", "user-defined-in-image"},
	{"ln", "-s", "agnhost", "/agnhost-2"},
	{"mkdir", "/uploads"},
}

// imported reports whether the engine has image with the content key.
func (b *Builder) imported(ctx context.Context, image, key string) bool {
	out, err := b.cmd("docker", "image", "inspect", "--format", `{{index .Config.Labels "`+modbuild.CacheKeyLabel+`"}}`, image).Output(ctx)
	return err == nil && strings.TrimSpace(string(out)) == key
}

// importRootfs imports a root file system tar stream as image.
func (b *Builder) importRootfs(ctx context.Context, image, key string, changes []string, rootfs func(io.Writer) error) error {
	args := []string{"import"}
	for _, c := range append(changes, "LABEL "+modbuild.CacheKeyLabel+"="+key) {
		args = append(args, "--change", c)
	}
	args = append(args, "-", image)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(rootfs(pw)) }()
	defer pr.Close()
	return b.cmd("docker", args...).WithStdin(pr).Run(ctx)
}

// debianBase makes (once per suite, package list and setup) a Debian root
// file system with debootstrap from the host's own mirror, runs the setup
// commands in it and imports it as a local base image.
func (b *Builder) debianBase(ctx context.Context, name string, packages []string, setup [][]string) (string, error) {
	setupText, _ := json.Marshal(setup)
	key := hashOf(recipe, "debian", b.DebianSuite, strings.Join(packages, ","), string(setupText))
	image := BasePrefix + "debian-" + name + ":" + key[:16]
	if b.imported(ctx, image, key) {
		return image, nil
	}
	start := time.Now()
	b.log().Info("making a Debian root file system (debootstrap)", "for", name, "suite", b.DebianSuite)
	if err := b.need(ctx, "debootstrap", "debootstrap"); err != nil {
		return "", err
	}
	mirror, err := debianMirror()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(b.CacheDir, "rootfs-"+name)
	unmountBelow(ctx, b, dir)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	defer func() { unmountBelow(context.WithoutCancel(ctx), b, dir); os.RemoveAll(dir) }()
	if err := b.cmd("debootstrap", "--variant=minbase", "--include="+strings.Join(packages, ","), b.DebianSuite, dir, mirror).Run(ctx); err != nil {
		return "", err
	}
	for _, c := range setup {
		if err := b.cmd("chroot", append([]string{dir}, c...)...).Run(ctx); err != nil {
			return "", err
		}
	}
	for _, junk := range []string{"var/cache/apt/archives", "var/lib/apt/lists"} {
		entries, _ := os.ReadDir(filepath.Join(dir, junk))
		for _, e := range entries {
			if !e.IsDir() {
				os.Remove(filepath.Join(dir, junk, e.Name()))
			}
		}
	}
	err = b.importRootfs(ctx, image, key, []string{"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, func(w io.Writer) error {
		c := b.cmd("tar", "-C", dir, "--numeric-owner", "-c", ".")
		c.Stdout = w
		return c.Run(ctx)
	})
	if err != nil {
		return "", err
	}
	b.log().Info("Debian root file system imported", "image", image, "elapsed", time.Since(start).Round(time.Second))
	return image, nil
}
