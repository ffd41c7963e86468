//go:build e2e

// Package certissuer is the e2e test of capilab's certificate issuer on a
// real kind cluster: the issuer image is built from this repository
// (internal/modbuild, no registry), loaded into the nodes and installed
// with certissuer.Objects; then the API server itself proves the issued
// certificates and injected CA bundles work, and clusterctl's own
// cert-manager check runs against the cluster through its library.
//
// Run it with the e2e tier (scripts/e2e.sh), or
// `go test -tags e2e -count=1 -v ./tests/e2e/certissuer` with a Docker
// engine (scripts/docker-engine.sh start) and the kind node image in place.
// Figures are logged as lines starting with FIGURE.
package certissuer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/certissuer"
	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/kindimage"
	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/providers"
)

// suite is what TestMain prepares once.
type suite struct {
	nodeImage   string
	issuerImage string
	serverImage string
	artifacts   string
}

var prepared suite

func TestMain(m *testing.M) {
	// A cold build of the issuer (Kubernetes libraries, -trimpath) takes
	// 10-15 minutes on 2 loaded cores; warm it takes seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	s, cleanup, err := prepare(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "certissuer e2e: FAIL before any test: %v\n", err)
		os.Exit(1)
	}
	prepared = s
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func prepare(ctx context.Context) (suite, func(), error) {
	var s suite
	root, err := filepath.Abs("../../..")
	if err != nil {
		return s, nil, err
	}
	s.artifacts = os.Getenv("ARTIFACTS")
	if s.artifacts == "" {
		s.artifacts = filepath.Join(root, "artifacts")
	}
	s.artifacts = filepath.Join(s.artifacts, "e2e", "certissuer-"+time.Now().UTC().Format("20060102-150405"))
	if err := os.MkdirAll(s.artifacts, 0o755); err != nil {
		return s, nil, fmt.Errorf("artifacts dir: %w", err)
	}
	if err := (kindimage.CLI{}).Ping(ctx); err != nil {
		return s, nil, fmt.Errorf("no Docker engine answers — start one with scripts/docker-engine.sh start: %w", err)
	}
	settings, err := config.Load(config.Options{Dir: root, Environ: os.Environ()})
	if err != nil {
		return s, nil, err
	}
	choice, err := kindimage.Select(ctx, settings.Settings.KindNodeImage, settings.Versions, kindimage.CLI{}, kindimage.DefaultResolver)
	if err != nil {
		return s, nil, err
	}
	s.nodeImage = choice.Image
	if choice.Local {
		st, err := (&kindimage.Builder{RepoRoot: root}).Check(ctx, settings.Versions.KindNode)
		if err != nil {
			return s, nil, err
		}
		if !st.Current {
			return s, nil, fmt.Errorf("node image %s is missing or stale — build it with `make kind-image` (scripts/e2e.sh does)", st.Image)
		}
	}

	// The binary cache the lab's targets use, so a binary built once (by
	// make create or an earlier run) is reused.
	cache := os.Getenv("CAPILAB_CACHE_DIR")
	if cache != "" && !filepath.IsAbs(cache) {
		cache = filepath.Join(root, cache) // as the lab reads it: relative to the checkout
	}
	if cache == "" {
		if cache, err = os.UserCacheDir(); err != nil {
			return s, nil, err
		}
		cache = filepath.Join(cache, "capilab")
	}
	cleanup := func() {}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	b := &modbuild.Builder{CacheDir: filepath.Join(cache, "modbuild"), RepoRoot: root, Log: log}
	start := time.Now()
	bin, err := b.Build(ctx, modbuild.Program{Name: "certissuer", Package: certissuer.MainPackage})
	if err != nil {
		cleanup()
		return s, nil, err
	}
	sum, err := fileSHA256(bin)
	if err != nil {
		cleanup()
		return s, nil, err
	}
	// The image as the management cluster code builds it (the controller
	// image shape: static base, /manager, user 65532), named by content.
	s.issuerImage = certissuer.ImageName(sum)
	if _, err := b.EnsureImage(ctx, providers.ControllerImage(s.issuerImage, bin)); err != nil {
		cleanup()
		return s, nil, err
	}
	fmt.Fprintf(os.Stderr, "FIGURE build issuer binary and image: %s (%s)\n", time.Since(start).Round(100*time.Millisecond), s.issuerImage)

	srvBin, err := b.Build(ctx, modbuild.Program{Name: "certissuer-e2e-server", Package: "./tests/e2e/certissuer/testserver"})
	if err != nil {
		cleanup()
		return s, nil, err
	}
	srvSum, err := fileSHA256(srvBin)
	if err != nil {
		cleanup()
		return s, nil, err
	}
	s.serverImage = "capilab.local/certissuer-e2e-server:" + srvSum[:12]
	if _, err := b.EnsureImage(ctx, modbuild.Image{Ref: s.serverImage, Entrypoint: []string{"/testserver"}, User: "65532:65532",
		Files: []modbuild.File{{Path: "/testserver", Source: srvBin, Mode: 0o755}}}); err != nil {
		cleanup()
		return s, nil, err
	}
	return s, cleanup, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

// figure logs a measured figure in a form scripts and docs can grep.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURE "+format, args...)
}
