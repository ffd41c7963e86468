package modbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/command"
)

// Program is one Go package to build into a binary.
type Program struct {
	// Name names the binary and its cache entries ("capi-core").
	Name string
	// Module and Version select a module from the module proxy. Empty
	// Module means a package of the main module in Builder.RepoRoot, or,
	// with Synthetic set, a module generated for this build.
	Module  string
	Version string
	// Package is the package to build: relative to the module ("./core",
	// "."), or an import path for Synthetic builds.
	Package string
	// Edits change the writable copy of Module before the build.
	Edits []Edit
	// Synthetic generates a module that requires other modules and builds
	// Package from one of them.
	Synthetic *Synthetic
	// LDFlags are added to "-s -w" (e.g. "-X k8s.io/component-base/version.gitVersion=<version>").
	LDFlags []string
	// Tags are build tags.
	Tags []string
	// Test builds the package's test binary (go test -c -vet=off).
	Test bool
}

func (p Program) describe() string {
	switch {
	case p.Synthetic != nil:
		return fmt.Sprintf("%s (%s in a module requiring %s)", p.Name, p.Package, strings.Join(p.Synthetic.Require, ", "))
	case p.Module == "":
		return fmt.Sprintf("%s (%s of this repository)", p.Name, p.Package)
	}
	return fmt.Sprintf("%s (%s@%s %s)", p.Name, p.Module, p.Version, p.Package)
}

// Builder builds programs and images. Everything arrives through its fields.
type Builder struct {
	// CacheDir holds module copies, binaries and locks (required).
	CacheDir string
	// RepoRoot is capilab's checkout, for programs of its own module.
	RepoRoot string
	// Go is the go command (default "go").
	Go string
	// Env is the environment go and docker run with (nil: this process's).
	Env []string
	// Log receives start/progress/end lines (nil: discard).
	Log *slog.Logger
	// Progress is how often a running build is reported (default 30s).
	Progress time.Duration
	// Docker is the docker command (default "docker").
	Docker string
}

func (b *Builder) log() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return b.Log
}

func (b *Builder) goCmd() string {
	if b.Go == "" {
		return "go"
	}
	return b.Go
}

// gocmd is a go invocation with capilab's build environment on top of
// Env: static binaries, no workspace, no VCS stamping.
func (b *Builder) gocmd(dir string, args ...string) *command.Cmd {
	return command.New(b.goCmd(), args...).WithDir(dir).
		WithEnv(b.Env, "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-buildvcs=false -mod=mod")
}

// Build returns the path of the program's binary, building it when the
// cache has none for its key.
func (b *Builder) Build(ctx context.Context, p Program) (string, error) {
	if b.CacheDir == "" {
		return "", errors.New("modbuild: CacheDir is required")
	}
	if p.Name == "" || p.Package == "" {
		return "", fmt.Errorf("modbuild: program %q: Name and Package are required", p.Name)
	}
	key, err := b.programKey(ctx, p)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", p.describe(), err)
	}
	out := filepath.Join(b.CacheDir, "bin", p.Name+"-"+key[:16], p.Name)
	if fileExists(out) {
		b.log().Debug("binary is current", "program", p.Name, "path", out)
		return out, nil
	}
	unlock, err := b.lock(ctx, "bin-"+p.Name+"-"+key[:16])
	if err != nil {
		return "", err
	}
	defer unlock()
	if fileExists(out) { // built by whoever held the lock
		return out, nil
	}
	start := time.Now()
	b.log().Info("building "+p.describe(), "cacheKey", key[:16])
	dir, pkg, err := b.prepare(ctx, p, key)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", p.describe(), err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	tmp := out + ".tmp"
	ldflags := strings.Join(append([]string{"-s", "-w"}, p.LDFlags...), " ")
	var args []string
	if p.Test {
		args = []string{"test", "-c", "-vet=off", "-trimpath", "-ldflags", ldflags, "-o", tmp}
	} else {
		args = []string{"build", "-trimpath", "-ldflags", ldflags, "-o", tmp}
	}
	if len(p.Tags) > 0 {
		args = append(args, "-tags", strings.Join(p.Tags, ","))
	}
	args = append(args, pkg)
	if err := b.runReported(ctx, p.Name, b.gocmd(dir, args...)); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("build %s: %w", p.describe(), err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	b.log().Info("built "+p.Name, "elapsed", time.Since(start).Round(100*time.Millisecond), "path", out)
	return out, nil
}

// runReported runs a long command, logging every Progress that it still runs.
func (b *Builder) runReported(ctx context.Context, what string, c *command.Cmd) error {
	every := b.Progress
	if every <= 0 {
		every = 30 * time.Second
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.Run(ctx) }()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-t.C:
			b.log().Info("still building "+what, "elapsed", time.Since(start).Round(time.Second))
		}
	}
}

// prepare returns the directory to build in and the package argument.
func (b *Builder) prepare(ctx context.Context, p Program, key string) (dir, pkg string, err error) {
	switch {
	case p.Synthetic != nil:
		dir = filepath.Join(b.CacheDir, "src", p.Name+"-"+key[:16])
		if err := b.writeSynthetic(ctx, dir, p); err != nil {
			return "", "", err
		}
		return dir, p.Package, nil
	case p.Module == "":
		if b.RepoRoot == "" {
			return "", "", errors.New("RepoRoot is required for a program of this repository")
		}
		return b.RepoRoot, p.Package, nil
	}
	dir = filepath.Join(b.CacheDir, "src", sanitize(p.Module)+"@"+p.Version+"-"+editsKey(p.Edits)[:12])
	if !fileExists(filepath.Join(dir, ".capilab-ready")) {
		src, err := b.download(ctx, p.Module, p.Version)
		if err != nil {
			return "", "", err
		}
		if err := os.RemoveAll(dir); err != nil {
			return "", "", err
		}
		if err := copyTree(src, dir); err != nil {
			return "", "", fmt.Errorf("copy %s@%s out of the module cache: %w", p.Module, p.Version, err)
		}
		for _, e := range p.Edits {
			if err := e.apply(ctx, b, dir); err != nil {
				return "", "", fmt.Errorf("edit %s: %w", e.key(), err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, ".capilab-ready"), nil, 0o644); err != nil {
			return "", "", err
		}
	}
	return dir, p.Package, nil
}

// ModuleDir downloads module@version into the module cache (if needed) and
// returns its read-only directory.
func (b *Builder) ModuleDir(ctx context.Context, module, version string) (string, error) {
	return b.download(ctx, module, version)
}

// download fetches module@version into the module cache and returns its directory.
func (b *Builder) download(ctx context.Context, module, version string) (string, error) {
	tmp, err := os.MkdirTemp("", "capilab-modbuild-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	out, err := b.gocmd(tmp, "mod", "download", "-json", module+"@"+version).Output(ctx)
	var info struct{ Dir, GoMod, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("download %s@%s: %s", module, version, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("download %s@%s: %w", module, version, err)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("download %s@%s: go mod download gave no directory", module, version)
	}
	return info.Dir, nil
}

// programKey is the content key of a program's binary.
func (b *Builder) programKey(ctx context.Context, p Program) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "v1\nname=%s\nmodule=%s@%s\npackage=%s\ntest=%t\nldflags=%q\ntags=%q\n", p.Name, p.Module, p.Version, p.Package, p.Test, p.LDFlags, p.Tags)
	fmt.Fprintf(h, "go=%s\nplatform=%s/%s\nedits=%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, editsKey(p.Edits))
	if s := p.Synthetic; s != nil {
		fmt.Fprintf(h, "synthetic require=%q staging=%s\n", s.Require, s.KubernetesStaging)
	}
	if p.Module == "" && p.Synthetic == nil {
		local, err := b.localSourceKey(ctx, p.Package)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "local=%s\n", local)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// localSourceKey hashes the files of every package of the main module that
// pkg depends on, and the versions of every other module it imports.
func (b *Builder) localSourceKey(ctx context.Context, pkg string) (string, error) {
	out, err := b.gocmd(b.RepoRoot, "list", "-deps", "-json=Dir,ImportPath,Standard,GoFiles,EmbedFiles,Module", pkg).Output(ctx)
	if err != nil {
		return "", err
	}
	type listed struct {
		Dir, ImportPath string
		Standard        bool
		GoFiles         []string
		EmbedFiles      []string
		Module          *struct {
			Path, Version string
			Main          bool
		}
	}
	h := sha256.New()
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var l listed
		if err := dec.Decode(&l); err == io.EOF {
			break
		} else if err != nil {
			return "", fmt.Errorf("go list: %w", err)
		}
		if l.Standard {
			continue
		}
		if l.Module == nil || !l.Module.Main {
			if l.Module != nil {
				fmt.Fprintf(h, "dep %s %s@%s\n", l.ImportPath, l.Module.Path, l.Module.Version)
			}
			continue
		}
		files := append(append([]string{}, l.GoFiles...), l.EmbedFiles...)
		sort.Strings(files)
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(l.Dir, f))
			if err != nil {
				return "", err
			}
			sum := sha256.Sum256(data)
			fmt.Fprintf(h, "file %s/%s %x\n", l.ImportPath, f, sum)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sanitize(module string) string { return strings.ReplaceAll(module, "/", "_") }

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// copyTree copies a module out of the read-only module cache, making files
// writable.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		return copyFile(path, target, mode)
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
