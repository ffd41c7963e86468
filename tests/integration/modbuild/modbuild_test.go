//go:build integration

// Package modbuild_test builds a real program from the Go module proxy and
// assembles it into an image in the Docker engine, twice: the second round
// must find both current.
package modbuild_test

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/modbuild"
)

func TestBuildModuleProgramIntoImage(t *testing.T) {
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Fatalf("no Docker engine answers (scripts/docker-engine.sh start): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b := &modbuild.Builder{CacheDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	prog := modbuild.Program{Name: "mage", Module: "github.com/magefile/mage", Version: "v1.17.2", Package: "."}
	bin, err := b.Build(ctx, prog)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, bin, "-version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Mage Build Tool") {
		t.Fatalf("%s -version: %v: %s", bin, err, out)
	}
	start := time.Now()
	bin2, err := b.Build(ctx, prog)
	if err != nil || bin2 != bin {
		t.Fatalf("second build: %q, %v (want the cached %q)", bin2, err, bin)
	}
	t.Logf("warm build: %s", time.Since(start))

	ref := "capilab.test/modbuild-mage:" + strings.ReplaceAll(t.Name(), "/", "-")
	t.Cleanup(func() { exec.Command("docker", "image", "rm", "-f", ref).Run() })
	img := modbuild.Image{Ref: ref, Entrypoint: []string{"/mage"}, User: "65532:65532",
		Files: []modbuild.File{{Path: "/mage", Source: bin}}}
	built, err := b.EnsureImage(ctx, img)
	if err != nil || !built {
		t.Fatalf("EnsureImage: built=%v err=%v", built, err)
	}
	out, err = exec.CommandContext(ctx, "docker", "run", "--rm", ref, "-version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Mage Build Tool") {
		t.Fatalf("docker run %s -version: %v: %s", ref, err, out)
	}
	out, err = exec.CommandContext(ctx, "docker", "run", "--rm", "--entrypoint", "/mage", ref, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("as nonroot: %v: %s", err, out)
	}
	built, err = b.EnsureImage(ctx, img)
	if err != nil || built {
		t.Fatalf("second EnsureImage: built=%v err=%v (want current)", built, err)
	}
	// A changed file rebuilds.
	img.Files = append(img.Files, modbuild.File{Path: "/etc/marker", Data: []byte("1")})
	built, err = b.EnsureImage(ctx, img)
	if err != nil || !built {
		t.Fatalf("changed image: built=%v err=%v (want rebuilt)", built, err)
	}
}
