//go:build integration

// Package addons_test proves internal/addons on real sources, without a
// cluster (it stays quick; the workload cluster test delivers the addons
// into real clusters and checks them Ready): the pinned sources from the
// Go module proxy (every pinned release rendered, the cluster's name where
// it must be), the ClusterResourceSets and their ConfigMaps/Secrets
// against Cluster API's CRD schema and stable across re-renders, and the
// local lab's images resolvable to verified Go modules and started the way
// the manifests call them.
package addons_test

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capilab/capilab/internal/addons"
	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/versions"
	"github.com/capilab/capilab/tests/devcloudtest"
)

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func builder(t testing.TB, log *slog.Logger) *modbuild.Builder {
	return &modbuild.Builder{CacheDir: filepath.Join(devcloudtest.CacheDir(t), "modbuild"), RepoRoot: devcloudtest.RepoRoot(t), Log: log}
}

func pinned(t testing.TB) *versions.Pinned {
	p, err := versions.Load()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// renderer reads the real sources; downloads go to a fresh cache.
func renderer(t testing.TB, log *slog.Logger) (*addons.Renderer, *modbuild.Builder) {
	b := builder(t, log)
	p := pinned(t)
	return &addons.Renderer{
		Pins:    p.Addons,
		Sources: &addons.Sources{Modules: b, CacheDir: filepath.Join(t.TempDir(), "addons"), Log: log},
		Helm:    &addons.Helm{Builder: b, Pin: p.Addons.Helm},
		Log:     log,
	}, b
}
