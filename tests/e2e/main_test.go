//go:build e2e

// Package e2e is capilab's e2e tier: real kind clusters (kind's Go library,
// Docker engine) on the node image chosen by the KIND_NODE_IMAGE rule —
// offline, the locally built one. Every test creates what it needs under a
// unique name and removes it; logs are exported to the artifacts directory.
//
// Run it through scripts/e2e.sh (starts the engine and builds the node image),
// or `go test -tags e2e -count=1 ./tests/e2e/...` with both in place. A missing
// engine or image fails the tier; nothing is skipped.
package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/kindimage"
)

// suite is what TestMain prepares once for every test.
type suite struct {
	nodeImage string // kind node image
	webImage  string // test workload image, in the Docker engine
	artifacts string // root of this run's artifacts
	repoRoot  string
}

// prepared is set by TestMain before any test runs and only read afterwards.
var prepared suite

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	s, err := prepare(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL before any test: %v\n", err)
		os.Exit(1)
	}
	prepared = s
	os.Exit(m.Run())
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func prepare(ctx context.Context) (suite, error) {
	var s suite
	root, err := filepath.Abs("../..")
	if err != nil {
		return s, err
	}
	s.repoRoot = root
	s.artifacts = os.Getenv("ARTIFACTS")
	if s.artifacts == "" {
		s.artifacts = filepath.Join(root, "artifacts")
	}
	s.artifacts = filepath.Join(s.artifacts, "e2e", time.Now().UTC().Format("20060102-150405"))
	if err := os.MkdirAll(s.artifacts, 0o755); err != nil {
		return s, fmt.Errorf("artifacts dir: %w", err)
	}

	if err := (kindimage.CLI{}).Ping(ctx); err != nil {
		return s, fmt.Errorf("no Docker engine answers — start one with scripts/docker-engine.sh start (scripts/e2e.sh does): %w", err)
	}
	// The node image setting comes from the settings model, as for every
	// target (lab.yaml, KIND_NODE_IMAGE).
	settings, err := config.Load(config.Options{Dir: root, Environ: os.Environ()})
	if err != nil {
		return s, err
	}
	pins := settings.Versions
	choice, err := kindimage.Select(ctx, settings.Settings.KindNodeImage, pins, kindimage.CLI{}, kindimage.DefaultResolver)
	if err != nil {
		return s, err
	}
	s.nodeImage = choice.Image
	fmt.Fprintf(os.Stderr, "e2e: node image %s (%s)\n", choice.Image, choice.Reason)
	if choice.Local {
		b := &kindimage.Builder{RepoRoot: root}
		st, err := b.Check(ctx, pins.KindNode)
		if err != nil {
			return s, err
		}
		if !st.Current {
			return s, fmt.Errorf("node image %s is missing or stale (found=%t, want key %s) — build it with `make kind-image` (scripts/e2e.sh does)", st.Image, st.Found, st.Key[:16])
		}
	}
	s.webImage, err = buildWebImage(ctx, root)
	return s, err
}

// buildWebImage builds tests/e2e/webserver into a FROM-scratch image named by
// the binary's hash.
func buildWebImage(ctx context.Context, root string) (string, error) {
	dir, err := os.MkdirTemp("", "capilab-e2e-web-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "webserver")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./tests/e2e/webserver")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build webserver: %w: %s", err, out)
	}
	f, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", err
	}
	image := "capilab.local/e2e-web:" + hex.EncodeToString(h.Sum(nil))[:12]
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY webserver /webserver\nENTRYPOINT [\"/webserver\"]\n"), 0o644); err != nil {
		return "", err
	}
	db := exec.CommandContext(ctx, "docker", "build", "-q", "-t", image, dir)
	db.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := db.CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker build %s: %w: %s", image, err, out)
	}
	return image, nil
}
