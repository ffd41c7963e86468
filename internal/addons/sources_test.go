package addons

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestDownloadRecordsThenVerifies(t *testing.T) {
	content := "kind: ConfigMap\n"
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(content))
	}))
	defer srv.Close()
	s := &Sources{CacheDir: t.TempDir(), Now: func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }}
	url := srv.URL + "/v1.0.0/calico.yaml"
	ctx := context.Background()

	// First use: downloaded, checksum recorded.
	data, err := s.Download(ctx, url, "")
	if err != nil || string(data) != content {
		t.Fatalf("first download: %q, %v", data, err)
	}
	file, rec := s.downloadPaths(url)
	if b, err := os.ReadFile(rec); err != nil || !strings.Contains(string(b), sha256Hex([]byte(content))) {
		t.Fatalf("no checksum record: %s %v", b, err)
	}
	// Later uses: from the cache, verified.
	if _, err := s.Download(ctx, url, ""); err != nil || hits.Load() != 1 {
		t.Fatalf("second use: %v, %d requests", err, hits.Load())
	}
	// A cached copy that changed is refused.
	if err := os.WriteFile(file, []byte("kind: Secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = s.Download(ctx, url, "")
	var ce *ChecksumError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "recorded at the first download on 2026-12-01T00:00:00Z") {
		t.Fatalf("tampered cache: %v", err)
	}
	// So is a new download that does not match the record (the upstream
	// file changed under the same URL).
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	content = "kind: Namespace\n"
	if _, err := s.Download(ctx, url, ""); !errors.As(err, &ce) {
		t.Fatalf("changed upstream: %v", err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatal("a refused download was cached")
	}
}

func TestDownloadPinnedChecksum(t *testing.T) {
	content := []byte("kind: ConfigMap\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(content) }))
	defer srv.Close()
	s := &Sources{CacheDir: t.TempDir()}
	ctx := context.Background()
	if _, err := s.Download(ctx, srv.URL+"/a.yaml", sha256Hex(content)); err != nil {
		t.Fatalf("matching pin: %v", err)
	}
	if _, rec := s.downloadPaths(srv.URL + "/a.yaml"); fileExists(rec) {
		t.Error("a pinned source needs no record")
	}
	wrong := strings.Repeat("0", 64)
	_, err := s.Download(ctx, srv.URL+"/b.yaml", wrong)
	if err == nil || !strings.Contains(err.Error(), "pinned in manifests/versions.yaml") {
		t.Fatalf("mismatching pin: %v", err)
	}
	// The cached copy of a.yaml no longer matches a changed pin.
	if _, err := s.Download(ctx, srv.URL+"/a.yaml", wrong); err == nil {
		t.Fatal("cached copy accepted against another pin")
	}
}

func TestDownloadUnreachableNamesTheURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := srv.URL + "/cert-manager.yaml"
	srv.Close() // nothing listens any more
	s := &Sources{CacheDir: t.TempDir(), HTTP: &http.Client{Timeout: time.Second}, Backoff: time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s.Download(ctx, url, "")
	if err == nil || !strings.Contains(err.Error(), "download "+url) || !strings.Contains(err.Error(), "only a download") {
		t.Fatalf("want the URL named, got %v", err)
	}
}

func TestDownloadRetriesTransientErrors(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	s := &Sources{CacheDir: t.TempDir(), Backoff: time.Millisecond}
	if data, err := s.Download(context.Background(), srv.URL+"/x.yaml", ""); err != nil || string(data) != "ok" || hits.Load() != 2 {
		t.Fatalf("%q %v after %d requests", data, err, hits.Load())
	}
	// A 404 is not retried.
	hits.Store(0)
	srv404 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1); http.NotFound(w, r) }))
	defer srv404.Close()
	if _, err := s.Download(context.Background(), srv404.URL+"/y.yaml", ""); err == nil || hits.Load() != 1 {
		t.Fatalf("404: %v after %d requests", err, hits.Load())
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestDownloadSourceRendered(t *testing.T) {
	manifest := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: cert-manager, namespace: cert-manager}\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1.19.1/cert-manager.yaml" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(manifest))
	}))
	defer srv.Close()
	pins := testPins()
	pins.CertManager.URL = srv.URL + "/{version}/cert-manager.yaml"
	r := &Renderer{Pins: pins, Sources: &Sources{CacheDir: t.TempDir()}}
	b, err := r.Render(context.Background(), testCluster, []Addon{{Name: CertManager, Version: "v1.19.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := part(t, b, "cert-manager"); len(p.Objects) != 1 || describe(readyChecks(p)) != "Deployment cert-manager/cert-manager Available" {
		t.Fatalf("cert-manager part: %v", p.Objects)
	}
}
