// Package kindimage builds capilab's kind node image (kindest/node:<tag>) on
// machines without a container registry, and chooses which node image kind
// clusters use.
//
// The recipe lives in images/kind-node/ (build.sh, the cni-agent and its
// manifest); this package computes the image's cache key — the pinned versions
// of manifests/versions.yaml, the kind and Kubernetes client versions of
// go.mod, the Go toolchain and a hash of every recipe file — and runs build.sh
// only when no image carrying that key as label exists. A warm rebuild is one
// `docker image inspect`.
package kindimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/capilab/capilab/internal/versions"
)

// Label is the image label that carries the cache key.
const Label = "dev.capilab.cache-key"

// RecipeDir is the recipe's directory, relative to the repository root.
const RecipeDir = "images/kind-node"

// KindModule is the module whose node files the image takes (version from go.mod).
const KindModule = "sigs.k8s.io/kind"

// Builder builds the node image. The zero value is not usable: RepoRoot is
// required; Log and Output default to discarding.
type Builder struct {
	// RepoRoot is the capilab checkout (recipe + cni-agent source + go.mod).
	RepoRoot string
	// CacheDir keeps build outputs between runs; default
	// $XDG_CACHE_HOME/capilab/kind-node (~/.cache/capilab/kind-node).
	CacheDir string
	// Log receives one line per decision (cached / building / built).
	Log *slog.Logger
	// Output receives build.sh's progress lines (stdout and stderr).
	Output io.Writer
	// Docker runs docker commands; nil uses the docker CLI on PATH.
	Docker Docker
}

// Docker is the part of the docker CLI the builder needs.
type Docker interface {
	// ImageLabel returns the value of label on image, found=false when the
	// image does not exist.
	ImageLabel(ctx context.Context, image, label string) (value string, found bool, err error)
	// Ping fails when no engine answers.
	Ping(ctx context.Context) error
}

// Inputs is everything the cache key covers.
type Inputs struct {
	Pins        versions.KindNode
	KindVersion string            // sigs.k8s.io/kind in go.mod
	GoModPins   map[string]string // k8s.io/* module versions of go.mod (the cni-agent's deps)
	GoVersion   string            // toolchain
	RecipeHash  string            // HashRecipe of images/kind-node
}

// Key is the content key: sha256 over every input, hex.
func (in Inputs) Key() string {
	h := sha256.New()
	p := in.Pins
	fmt.Fprintf(h, "kubernetes=%s\netcd=%s\ncoredns=%s\npause=%s\ncontainerd=%s\ndebianSuite=%s\ntag=%s\n",
		p.Kubernetes, p.Etcd, p.CoreDNS, p.Pause, p.Containerd, p.DebianSuite, p.Tag)
	fmt.Fprintf(h, "kind=%s\ngo=%s\nrecipe=%s\n", in.KindVersion, in.GoVersion, in.RecipeHash)
	mods := make([]string, 0, len(in.GoModPins))
	for m := range in.GoModPins {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	for _, m := range mods {
		fmt.Fprintf(h, "mod %s=%s\n", m, in.GoModPins[m])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// HashRecipe hashes every regular file below dir (names and contents, in a
// fixed order); _test.go files are left out, they do not change the image.
func HashRecipe(dir fs.FS) (string, error) {
	h := sha256.New()
	var n int
	err := fs.WalkDir(dir, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", path)
		}
		data, err := fs.ReadFile(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		exec := info.Mode().Perm()&0o111 != 0
		fmt.Fprintf(h, "%s\x00%t\x00%d\x00", path, exec, len(data))
		h.Write(data)
		n++
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash recipe: %w", err)
	}
	if n == 0 {
		return "", errors.New("hash recipe: no files")
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ModulePins reads the kind version and the k8s.io/* versions from go.mod.
func ModulePins(goMod []byte) (kind string, k8s map[string]string, err error) {
	f, err := modfile.ParseLax("go.mod", goMod, nil)
	if err != nil {
		return "", nil, fmt.Errorf("parse go.mod: %w", err)
	}
	k8s = map[string]string{}
	for _, r := range f.Require {
		switch {
		case r.Mod.Path == KindModule:
			kind = r.Mod.Version
		case strings.HasPrefix(r.Mod.Path, "k8s.io/"):
			k8s[r.Mod.Path] = r.Mod.Version
		}
	}
	if kind == "" {
		return "", nil, fmt.Errorf("go.mod does not require %s", KindModule)
	}
	return kind, k8s, nil
}

// Inputs gathers the key inputs from the checkout.
func (b *Builder) Inputs(pins versions.KindNode) (Inputs, error) {
	if b.RepoRoot == "" {
		return Inputs{}, errors.New("kindimage: RepoRoot is not set")
	}
	goMod, err := os.ReadFile(filepath.Join(b.RepoRoot, "go.mod"))
	if err != nil {
		return Inputs{}, fmt.Errorf("read go.mod: %w", err)
	}
	kind, k8s, err := ModulePins(goMod)
	if err != nil {
		return Inputs{}, err
	}
	recipe, err := HashRecipe(os.DirFS(filepath.Join(b.RepoRoot, RecipeDir)))
	if err != nil {
		return Inputs{}, err
	}
	return Inputs{Pins: pins, KindVersion: kind, GoModPins: k8s, GoVersion: runtime.Version(), RecipeHash: recipe}, nil
}

func (b *Builder) log() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return b.Log
}

func (b *Builder) docker() Docker {
	if b.Docker == nil {
		return CLI{}
	}
	return b.Docker
}

// CacheDirOrDefault is where build outputs live.
func (b *Builder) CacheDirOrDefault() (string, error) {
	if b.CacheDir != "" {
		return b.CacheDir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	return filepath.Join(base, "capilab", "kind-node"), nil
}

// Status says whether the image for pins is present and current.
type Status struct {
	Image   string
	Key     string // wanted
	Found   bool   // an image with that name exists
	Current bool   // ... and carries Key
}

// Check computes the key and inspects the image without building anything.
func (b *Builder) Check(ctx context.Context, pins versions.KindNode) (Status, error) {
	in, err := b.Inputs(pins)
	if err != nil {
		return Status{}, err
	}
	st := Status{Image: pins.Image(), Key: in.Key()}
	have, found, err := b.docker().ImageLabel(ctx, st.Image, Label)
	if err != nil {
		return st, err
	}
	st.Found, st.Current = found, found && have == st.Key
	return st, nil
}

// Ensure returns the node image for pins, building it first when no image
// with the current key exists. Cancelling ctx stops the build (the whole
// process group of build.sh) and returns ctx's error.
func (b *Builder) Ensure(ctx context.Context, pins versions.KindNode) (string, error) {
	log := b.log()
	if err := b.docker().Ping(ctx); err != nil {
		return "", fmt.Errorf("no Docker engine answers (start one with scripts/docker-engine.sh start): %w", err)
	}
	in, err := b.Inputs(pins)
	if err != nil {
		return "", err
	}
	image, key := pins.Image(), in.Key()
	have, found, err := b.docker().ImageLabel(ctx, image, Label)
	if err != nil {
		return "", err
	}
	if found && have == key {
		log.Info("kind node image is up to date", "image", image, "key", key[:16])
		return image, nil
	}
	reason := "not built yet"
	if found {
		reason = "recipe or versions changed (key " + short(have) + " → " + key[:16] + ")"
	}
	cacheDir, err := b.CacheDirOrDefault()
	if err != nil {
		return "", err
	}
	log.Info("building kind node image", "image", image, "reason", reason, "cache", cacheDir)
	start := time.Now()
	if err := b.runBuild(ctx, in, image, key, cacheDir); err != nil {
		return "", err
	}
	have, found, err = b.docker().ImageLabel(ctx, image, Label)
	if err != nil {
		return "", err
	}
	if !found || have != key {
		return "", fmt.Errorf("build.sh succeeded but %s does not carry %s=%s", image, Label, key)
	}
	log.Info("kind node image built", "image", image, "elapsed", time.Since(start).Round(time.Second))
	return image, nil
}

func short(s string) string {
	if len(s) > 16 {
		return s[:16]
	}
	if s == "" {
		return "none"
	}
	return s
}

// BuildEnv is the environment build.sh reads (see its header).
func BuildEnv(in Inputs, image, key, repoRoot, cacheDir string) []string {
	p := in.Pins
	return []string{
		"IMAGE=" + image,
		"CACHE_KEY=" + key,
		"K8S_VERSION=" + p.Kubernetes,
		"ETCD_VERSION=" + p.Etcd,
		"COREDNS_VERSION=" + p.CoreDNS,
		"CONTAINERD_VERSION=" + p.Containerd,
		"PAUSE_VERSION=" + p.Pause,
		"DEBIAN_SUITE=" + p.DebianSuite,
		"KIND_VERSION=" + in.KindVersion,
		"REPO_ROOT=" + repoRoot,
		"CACHE_DIR=" + cacheDir,
	}
}

func (b *Builder) runBuild(ctx context.Context, in Inputs, image, key, cacheDir string) error {
	root, err := filepath.Abs(b.RepoRoot)
	if err != nil {
		return fmt.Errorf("repo root: %w", err)
	}
	script := filepath.Join(root, RecipeDir, "build.sh")
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), BuildEnv(in, image, key, root, cacheDir)...)
	out := b.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	// build.sh starts go, docker and debootstrap children: signal the whole
	// process group, give it time to clean up (its trap removes the build
	// container), then kill what is left.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers of a finished or cancelled build
	}
	if ctx.Err() != nil {
		return fmt.Errorf("building %s: %w", image, context.Cause(ctx))
	}
	if err != nil {
		return fmt.Errorf("building %s: %s: %w", image, script, err)
	}
	return nil
}

// CLI is Docker through the docker command line.
type CLI struct{}

// ImageLabel implements Docker.
func (CLI) ImageLabel(ctx context.Context, image, label string) (string, bool, error) {
	var stdout, stderr strings.Builder
	cmd := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", fmt.Sprintf("{{ index .Config.Labels %q }}", label), image)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if strings.Contains(strings.ToLower(stderr.String()), "no such image") {
			return "", false, nil
		}
		return "", false, fmt.Errorf("docker image inspect %s: %w: %s", image, err, strings.TrimSpace(stderr.String()))
	}
	v := strings.TrimSpace(stdout.String())
	if v == "<no value>" {
		v = ""
	}
	return v, true, nil
}

// Ping implements Docker.
func (CLI) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker version: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
