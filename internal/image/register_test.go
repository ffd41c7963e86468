package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/logging"
)

// qcow2 writes a file with a qcow2 v3 header of the given virtual size,
// followed by payload bytes of filler, and returns its path and sha256.
func qcow2(t *testing.T, dir string, virtualSize int64, payload int) (string, string) {
	t.Helper()
	hdr := make([]byte, 512)
	copy(hdr, "QFI\xfb")
	binary.BigEndian.PutUint32(hdr[4:], 3)
	binary.BigEndian.PutUint64(hdr[24:], uint64(virtualSize))
	data := append(hdr, bytes.Repeat([]byte("capilab!"), payload/8)...)
	p := filepath.Join(dir, fmt.Sprintf("node-%d.qcow2", len(data)))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return p, hex.EncodeToString(sum[:])
}

// logBuffer collects log output so tests can assert progress lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func testLog(t *testing.T) (*slog.Logger, *logBuffer) {
	t.Helper()
	var lb logBuffer
	log, err := logging.New(&lb, logging.Options{Level: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", lb.String())
		}
	})
	return log, &lb
}

func baseSpec(t *testing.T, src, sum string) Spec {
	return Spec{
		Name: "ubuntu-capi-image-v1.2.3", Source: src, SHA256: sum, KubernetesVersion: "v1.2.3", OSVersion: "24.04",
		CacheDir: t.TempDir(), Timeout: 5 * time.Second, ProgressEvery: time.Nanosecond, RetryDelay: time.Millisecond,
		PollInterval: 10 * time.Millisecond,
	}
}

func TestRegisterCreatesImageWithPropertiesAndMinDisk(t *testing.T) {
	f := newFakeGlance(t)
	g := f.glance(t)
	src, sum := qcow2(t, t.TempDir(), 5*gib+1, 1<<20)
	spec := baseSpec(t, src, sum)
	spec.ExtraProperties = map[string]string{"hw_rng_model": "none", "os_purpose": "k8snode"}
	log, logs := testLog(t)

	res, err := Register(context.Background(), g, spec, log)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != Registered || res.DiskFormat != "qcow2" || res.MinDiskGiB != 6 || res.SourceSHA256 != sum {
		t.Fatalf("result = %+v", res)
	}
	imgs := f.named(spec.Name)
	if len(imgs) != 1 {
		t.Fatalf("%d images, want 1", len(imgs))
	}
	img := imgs[0]
	fi, _ := os.Stat(src)
	want := map[string]any{
		"status": "active", "disk_format": "qcow2", "container_format": "bare", "min_disk": float64(6), "min_ram": float64(1024),
		"size": fi.Size(), "architecture": "x86_64", "hypervisor_type": "kvm", "os_distro": "ubuntu", "os_version": "24.04",
		"hw_disk_bus": "scsi", "hw_scsi_model": "virtio-scsi", "hw_rng_model": "none", "os_purpose": "k8snode",
		"image_original_user": "ubuntu", "kubernetes_version": "v1.2.3", "replace_frequency": "never",
		"capilab_source_sha256": sum, "image_source": "file://" + src,
		"image_build_date": fi.ModTime().UTC().Format(time.DateOnly),
		"provided_until":   fi.ModTime().UTC().AddDate(1, 0, 0).Format(time.DateOnly),
		"uuid_validity":    fi.ModTime().UTC().AddDate(1, 0, 0).Format(time.DateOnly),
	}
	for k, v := range want {
		if fmt.Sprint(img[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, img[k], v)
		}
	}
	if tags := fmt.Sprint(img["tags"]); tags != "[capilab-managed]" {
		t.Errorf("tags = %s", tags)
	}
	if !strings.Contains(fmt.Sprint(img["image_description"]), "Kubernetes v1.2.3") {
		t.Errorf("image_description = %v", img["image_description"])
	}
	if f.chunkedUploads != 0 {
		t.Error("the upload was sent chunked; Glance reads a Content-Length body much faster")
	}
	for _, line := range []string{"upload done", "percent=100.0%", "verifying sha256 done"} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log lacks progress line %q", line)
		}
	}
}

func TestSecondRunIsNoOp(t *testing.T) {
	f := newFakeGlance(t)
	g := f.glance(t)
	src, sum := qcow2(t, t.TempDir(), gib, 4096)
	spec := baseSpec(t, src, sum)
	if _, err := Register(context.Background(), g, spec, nil); err != nil {
		t.Fatal(err)
	}
	before := map[string]int{}
	for _, k := range []string{"GET /v2/images", "POST /v2/images", "PUT /v2/images/{id}/file", "DELETE /v2/images/{id}", "GET /v2/images/{id}"} {
		before[k] = f.count(k)
	}
	// The source is not even read when the image is there: remove it.
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	res, err := Register(context.Background(), g, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != Unchanged {
		t.Fatalf("action %s, want unchanged", res.Action)
	}
	want := map[string]int{"GET /v2/images": 1}
	for k, b := range before {
		if got := f.count(k) - b; got != want[k] {
			t.Errorf("%s: %d calls on the no-op run, want %d", k, got, want[k])
		}
	}
}

func TestChecksumMismatchRegistersNothing(t *testing.T) {
	f := newFakeGlance(t)
	g := f.glance(t)
	src, _ := qcow2(t, t.TempDir(), gib, 4096)
	spec := baseSpec(t, src, strings.Repeat("ab", 32))
	_, err := Register(context.Background(), g, spec, nil)
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") || !strings.Contains(err.Error(), "cloud fake") || !strings.Contains(err.Error(), spec.Name) {
		t.Fatalf("err = %v, want a sha256 mismatch naming the cloud and image", err)
	}
	if n := f.count("POST /v2/images"); n != 0 {
		t.Fatalf("%d creates after a checksum mismatch", n)
	}
	if imgs := f.named(spec.Name); len(imgs) != 0 {
		t.Fatalf("images left: %v", imgs)
	}
}

// TestChecksumMismatchIsSaidFirst: a wrong sha256 for a local file whose
// image is registered already is reported as the mismatch it is, not as a
// name conflict.
func TestChecksumMismatchIsSaidFirst(t *testing.T) {
	f := newFakeGlance(t)
	g := f.glance(t)
	src, sum := qcow2(t, t.TempDir(), gib, 4096)
	if _, err := Register(context.Background(), g, baseSpec(t, src, sum), nil); err != nil {
		t.Fatal(err)
	}
	_, err := Register(context.Background(), g, baseSpec(t, src, strings.Repeat("ab", 32)), nil)
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") || strings.Contains(err.Error(), "already an image of that name") {
		t.Fatalf("err = %v, want the sha256 mismatch", err)
	}
}

// TestExistingImages covers what registration does with what the name
// lookup finds: reuse, replace, or refuse.
func TestExistingImages(t *testing.T) {
	src, sum := qcow2(t, t.TempDir(), gib, 4096)
	other := strings.Repeat("cd", 32)
	old := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	own := func(extra map[string]any) map[string]any {
		m := map[string]any{"name": "ubuntu-capi-image-v1.2.3", "owner": projectID, "tags": []any{Tag}, PropSourceSHA256: sum}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name       string
		existing   []map[string]any
		wantAction Action
		wantErr    string
		wantLeft   int  // images of the name afterwards
		wantKept   bool // every pre-existing image is still there
		reuse      bool // Spec.ReuseForeign
	}{
		{name: "own active same source", existing: []map[string]any{own(nil)}, wantAction: Unchanged, wantLeft: 1, wantKept: true},
		{name: "public image of another project, same source", existing: []map[string]any{own(map[string]any{"owner": otherProject, "visibility": "public", "tags": []any{}})}, wantAction: Unchanged, wantLeft: 1, wantKept: true},
		{name: "own queued, left by a killed run", existing: []map[string]any{own(map[string]any{"status": "queued", "updated_at": old})}, wantAction: Registered, wantLeft: 1},
		{name: "own saving for longer than the timeout", existing: []map[string]any{own(map[string]any{"status": "saving", "updated_at": old})}, wantAction: Registered, wantLeft: 1},
		{name: "own killed", existing: []map[string]any{own(map[string]any{"status": "killed"})}, wantAction: Registered, wantLeft: 1},
		{name: "two own active from a race: the older stays", existing: []map[string]any{own(nil), own(nil)}, wantAction: Unchanged, wantLeft: 1},
		{name: "own active, other source", existing: []map[string]any{own(map[string]any{PropSourceSHA256: other})}, wantErr: "registered by capilab from a source with sha256 " + other, wantLeft: 1, wantKept: true},
		{name: "untagged image of the project", existing: []map[string]any{own(map[string]any{"tags": []any{"managed_by_osism"}, PropSourceSHA256: nil})}, wantErr: "not tagged capilab-managed", wantLeft: 1, wantKept: true},
		{name: "untagged queued image of the project", existing: []map[string]any{own(map[string]any{"tags": []any{}, "status": "queued"})}, wantErr: "status queued", wantLeft: 1, wantKept: true},
		{name: "tagged image of another project is not ours", existing: []map[string]any{own(map[string]any{"owner": otherProject, "visibility": "public", PropSourceSHA256: other})}, wantErr: "owner " + otherProject, wantLeft: 1, wantKept: true},
		{name: "deactivated", existing: []map[string]any{own(map[string]any{"status": "deactivated"})}, wantErr: "status deactivated", wantLeft: 1, wantKept: true},
		{name: "a public image capilab did not register: the way out is named", existing: []map[string]any{map[string]any{"name": "ubuntu-capi-image-v1.2.3", "owner": otherProject, "visibility": "public", "tags": []any{"managed_by_osism"}}}, wantErr: "set image_reuse_foreign=true", wantLeft: 1, wantKept: true},
		{name: "a public image capilab did not register, reuse allowed", existing: []map[string]any{map[string]any{"name": "ubuntu-capi-image-v1.2.3", "owner": otherProject, "visibility": "public", "tags": []any{"managed_by_osism"}}}, reuse: true, wantAction: ReusedForeign, wantLeft: 1, wantKept: true},
		{name: "two such images: which one?", existing: []map[string]any{map[string]any{"name": "ubuntu-capi-image-v1.2.3", "owner": otherProject, "visibility": "public", "tags": []any{"managed_by_osism"}}, map[string]any{"name": "ubuntu-capi-image-v1.2.3", "owner": otherProject, "visibility": "public", "tags": []any{"managed_by_osism"}}}, reuse: true, wantErr: "not tagged capilab-managed", wantLeft: 2, wantKept: true},
		{name: "reuse allowed, but capilab registered it from another source", existing: []map[string]any{own(map[string]any{PropSourceSHA256: other})}, reuse: true, wantErr: "registered by capilab from a source with sha256 " + other, wantLeft: 1, wantKept: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGlance(t)
			g := f.glance(t)
			var ids []string
			for _, img := range tt.existing {
				ids = append(ids, f.add(img))
			}
			spec := baseSpec(t, src, sum)
			spec.ReuseForeign = tt.reuse
			res, err := Register(context.Background(), g, spec, nil)
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if f.count("POST /v2/images") != 0 || f.count("DELETE /v2/images/{id}") != 0 {
					t.Fatal("refused, yet it created or deleted something")
				}
			case err != nil:
				t.Fatal(err)
			case res.Action != tt.wantAction:
				t.Fatalf("action %s, want %s", res.Action, tt.wantAction)
			}
			left := f.named("ubuntu-capi-image-v1.2.3")
			if len(left) != tt.wantLeft {
				t.Fatalf("%d images left, want %d: %v", len(left), tt.wantLeft, left)
			}
			if tt.wantKept {
				for _, id := range ids {
					if f.get(id) == nil {
						t.Errorf("image %s was deleted", id)
					}
				}
			}
			if tt.wantErr == "" && left[0]["status"] != "active" {
				t.Fatalf("left image is %v", left[0]["status"])
			}
		})
	}
}

// TestFaults: transient failures and lost responses never leave a second
// image of the same name, and registration still succeeds.
func TestFaults(t *testing.T) {
	src, sum := qcow2(t, t.TempDir(), gib, 64<<10)
	tests := []struct {
		name        string
		faults      func(method, route string, n int) fault
		wantCreates int
		wantUploads int
		wantErr     string
	}{
		{name: "create answer lost", faults: on("POST", "/v2/images", 1, lost), wantCreates: 1, wantUploads: 1},
		{name: "create fails with 500 twice", faults: on("POST", "/v2/images", 1, fail500, 2, fail500), wantCreates: 3, wantUploads: 1},
		{name: "create lost, then lookup fails", faults: func(m, r string, n int) fault {
			if m == "POST" && r == "/v2/images" && n == 1 {
				return lost
			}
			if m == "GET" && r == "/v2/images" && n >= 2 && n <= 9 { // more than the transport retries
				return fail500
			}
			return noFault
		}, wantCreates: 1, wantUploads: 1},
		{name: "upload cut off", faults: on("PUT", "/v2/images/{id}/file", 1, cutUpload), wantCreates: 1, wantUploads: 2},
		{name: "upload answer lost after storing", faults: on("PUT", "/v2/images/{id}/file", 1, lost), wantCreates: 1, wantUploads: 1},
		{name: "upload killed the image", faults: on("PUT", "/v2/images/{id}/file", 1, killUpload), wantCreates: 2, wantUploads: 2},
		{name: "token expired at the upload: re-authenticated, body rewound", faults: on("PUT", "/v2/images/{id}/file", 1, unauth401), wantCreates: 1, wantUploads: 2},
		{name: "upload always cut off", faults: func(m, r string, n int) fault {
			if m == "PUT" {
				return cutUpload
			}
			return noFault
		}, wantErr: "giving up after 3 images"},
		{name: "create rejected with 400 is not retried", faults: on("POST", "/v2/images", 1, reject400), wantErr: "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGlance(t)
			g := f.glance(t)
			f.faults = tt.faults
			spec := baseSpec(t, src, sum)
			res, err := Register(context.Background(), g, spec, nil)
			imgs := f.named(spec.Name)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if len(imgs) != 0 {
					t.Fatalf("failed registration left images: %v", imgs)
				}
				if tt.name == "create rejected with 400 is not retried" && f.count("POST /v2/images") != 1 {
					t.Fatalf("a 400 was retried: %d creates", f.count("POST /v2/images"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(imgs) != 1 || imgs[0]["status"] != "active" || imgs[0]["id"] != res.ID {
				t.Fatalf("want exactly one active image %s, have %v", res.ID, imgs)
			}
			if got := f.count("POST /v2/images"); got != tt.wantCreates {
				t.Errorf("%d creates, want %d", got, tt.wantCreates)
			}
			if got := f.count("PUT /v2/images/{id}/file"); got != tt.wantUploads {
				t.Errorf("%d uploads, want %d", got, tt.wantUploads)
			}
		})
	}
}

// on injects the given faults into the n-th request of one method and route:
// on("POST", "/v2/images", 1, lost, 2, fail500).
func on(method, route string, pairs ...any) func(string, string, int) fault {
	return func(m, r string, n int) fault {
		if m != method || r != route {
			return noFault
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i].(int) == n {
				return pairs[i+1].(fault)
			}
		}
		return noFault
	}
}

func TestCancelledUploadLeavesNoImage(t *testing.T) {
	f := newFakeGlance(t)
	g := f.glance(t)
	src, sum := qcow2(t, t.TempDir(), gib, 64<<10)
	ctx, cancel := context.WithCancel(context.Background())
	f.uploadGate = cancel // Ctrl-C while the data is being stored
	_, err := Register(ctx, g, baseSpec(t, src, sum), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if imgs := f.named("ubuntu-capi-image-v1.2.3"); len(imgs) != 0 {
		t.Fatalf("interrupted registration left %v", imgs)
	}
	// And the next run finishes the job.
	f.uploadGate = nil
	res, err := Register(context.Background(), g, baseSpec(t, src, sum), nil)
	if err != nil || res.Action != Registered {
		t.Fatalf("re-run: %+v, %v", res, err)
	}
}

// TestConcurrentRunsConverge: two runs of the same registration at once end
// with one image, whatever the interleaving.
func TestConcurrentRunsConverge(t *testing.T) {
	for round := range 5 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			f := newFakeGlance(t)
			g := f.glance(t)
			src, sum := qcow2(t, t.TempDir(), gib, 64<<10)
			log, _ := testLog(t)
			var wg sync.WaitGroup
			results := make([]Result, 2)
			errs := make([]error, 2)
			for i := range 2 {
				wg.Go(func() {
					results[i], errs[i] = Register(context.Background(), g, baseSpec(t, src, sum), log.With("run", i))
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
			}
			imgs := f.named("ubuntu-capi-image-v1.2.3")
			if len(imgs) != 1 {
				t.Fatalf("%d images after two concurrent runs: %v", len(imgs), imgs)
			}
			for i, res := range results {
				if res.ID != imgs[0]["id"] {
					t.Errorf("run %d reports image %s, the survivor is %s", i, res.ID, imgs[0]["id"])
				}
			}
		})
	}
}

func TestStartAndWait(t *testing.T) {
	f := newFakeGlance(t)
	g := f.glance(t)
	src, sum := qcow2(t, t.TempDir(), gib, 4096)
	release := make(chan struct{})
	f.uploadGate = func() { <-release }
	reg := Start(context.Background(), g, baseSpec(t, src, sum), nil)

	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := reg.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait before the upload finished: %v, want deadline exceeded", err)
	}
	close(release)
	res, err := reg.Wait(context.Background())
	if err != nil || res.Action != Registered {
		t.Fatalf("Wait: %+v, %v", res, err)
	}
	select {
	case <-reg.Done():
	default:
		t.Fatal("Done not closed after Wait returned")
	}
}

// TestRawConversion runs a stand-in qemu-img (the real one runs in the
// integration tests) and checks the arguments, progress and the result.
func TestRawConversion(t *testing.T) {
	f := newFakeGlance(t)
	g := f.glance(t)
	dir := t.TempDir()
	const virtual = 2<<20 + 512
	src, sum := qcow2(t, dir, virtual, 4096)
	argsFile := filepath.Join(dir, "args")
	qemu := filepath.Join(dir, "qemu-img")
	script := fmt.Sprintf(`#!/bin/sh
echo "$@" > %s
for last; do :; done
printf '    (0.00/100%%)\r    (50.00/100%%)\r    (100.00/100%%)\r'
truncate -s %d "$last"
`, argsFile, virtual)
	if err := os.WriteFile(qemu, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := baseSpec(t, src, sum)
	spec.Raw, spec.QemuImg = true, qemu
	log, logs := testLog(t)
	res, err := Register(context.Background(), g, spec, log)
	if err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(argsFile)
	if !strings.HasPrefix(string(args), "convert -p -f qcow2 -O raw -S 4k "+src+" ") {
		t.Errorf("qemu-img called with %q", args)
	}
	img := f.named(spec.Name)[0]
	if res.DiskFormat != "raw" || img["disk_format"] != "raw" || fmt.Sprint(img["size"]) != fmt.Sprint(virtual) || res.MinDiskGiB != 1 {
		t.Fatalf("result %+v, image %v", res, img)
	}
	if !strings.Contains(logs.String(), "converting to raw") || !strings.Contains(logs.String(), "percent=100.0%") {
		t.Errorf("no conversion progress in the log")
	}
	if left, _ := filepath.Glob(filepath.Join(spec.CacheDir, "*.raw*")); len(left) != 0 {
		t.Errorf("conversion left %v in the cache", left)
	}
}

func TestRawConversionNeedsQemuImg(t *testing.T) {
	f := newFakeGlance(t)
	g := f.glance(t)
	src, sum := qcow2(t, t.TempDir(), gib, 4096)
	spec := baseSpec(t, src, sum)
	spec.Raw, spec.QemuImg = true, "/nonexistent/qemu-img"
	_, err := Register(context.Background(), g, spec, nil)
	if err == nil || !strings.Contains(err.Error(), "qemu-utils") {
		t.Fatalf("err = %v, want a hint to install qemu-utils", err)
	}
	if f.count("POST /v2/images") != 0 {
		t.Fatal("created an image although the conversion could not run")
	}
}

// fileServer serves one file with Range support; cut, when > 0, makes the
// first full-body answer stop after that many bytes.
func fileServer(t *testing.T, data []byte, checksum string, cut int) (*httptest.Server, *int) {
	t.Helper()
	var mu sync.Mutex
	gets := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/img/node.qcow2.CHECKSUM":
			fmt.Fprint(w, checksum)
		case "/img/node.qcow2":
			mu.Lock()
			gets++
			first := gets == 1
			mu.Unlock()
			if first && cut > 0 {
				w.Header().Set("Content-Length", fmt.Sprint(len(data)))
				w.WriteHeader(http.StatusOK)
				w.Write(data[:cut])
				reset(w)
				return
			}
			http.ServeContent(w, r, "node.qcow2", time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC), bytes.NewReader(data))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &gets
}

func TestDownload(t *testing.T) {
	dir := t.TempDir()
	p, sum := qcow2(t, dir, gib, 256<<10)
	data, _ := os.ReadFile(p)
	tests := []struct {
		name     string
		checksum string // content of the .CHECKSUM file
		pinned   string
		cut      int
		wantErr  string
		wantGets int
	}{
		{name: "sha256sum line", checksum: sum + "  node.qcow2\n", wantGets: 1},
		{name: "bare hex", checksum: sum + "\n", wantGets: 1},
		{name: "pinned, no checksum file", pinned: sum, wantGets: 1},
		{name: "resumed after a cut", checksum: sum + " *node.qcow2\n", cut: 100 << 10, wantGets: 2},
		{name: "published checksum does not match", checksum: strings.Repeat("0", 64) + "  node.qcow2\n", wantErr: "sha256 mismatch", wantGets: 1},
		{name: "unreadable checksum file", checksum: "<html>not found</html>", wantErr: "unreadable line", wantGets: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGlance(t)
			g := f.glance(t)
			srv, gets := fileServer(t, data, tt.checksum, tt.cut)
			spec := baseSpec(t, srv.URL+"/img/node.qcow2", tt.pinned)
			if tt.pinned == "" {
				spec.ChecksumURL = srv.URL + "/img/node.qcow2.CHECKSUM"
			}
			log, logs := testLog(t)
			res, err := Register(context.Background(), g, spec, log)
			if *gets != tt.wantGets {
				t.Errorf("%d downloads, want %d", *gets, tt.wantGets)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if f.count("POST /v2/images") != 0 {
					t.Fatal("an image was created from an unverified download")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			img := f.named(spec.Name)[0]
			if res.Action != Registered || img["image_build_date"] != "2025-03-04" || img["image_source"] != spec.Source {
				t.Fatalf("result %+v, image %v", res, img)
			}
			if !strings.Contains(logs.String(), "download done") {
				t.Error("no download progress in the log")
			}
			// A second registration (another project, say) reuses the verified cache.
			f2 := newFakeGlance(t)
			if _, err := Register(context.Background(), f2.glance(t), spec, nil); err != nil {
				t.Fatal(err)
			}
			if *gets != tt.wantGets {
				t.Errorf("the cached download was fetched again")
			}
		})
	}
}

func TestParseChecksumFile(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	tests := []struct {
		name, data, file, want, wantErr string
	}{
		{name: "sha256sum", data: a + "  node.qcow2\n", file: "node.qcow2", want: a},
		{name: "binary marker", data: a + " *node.qcow2\n", file: "node.qcow2", want: a},
		{name: "bare", data: "  " + strings.ToUpper(a) + "\n", file: "x", want: a},
		{name: "single entry with another name", data: a + "  /build/output/node.qcow2\n", file: "other.qcow2", want: a},
		{name: "several, pick by name", data: a + "  x.qcow2\n" + b + "  dir/node.qcow2\n", file: "node.qcow2", want: b},
		{name: "bsd", data: "SHA256 (node.qcow2) = " + b + "\n", file: "node.qcow2", want: b},
		{name: "comments and blanks", data: "# sums\n\n" + a + "  node.qcow2\n", file: "node.qcow2", want: a},
		{name: "several, none matches", data: a + "  x\n" + b + "  y\n", file: "node.qcow2", wantErr: "none for node.qcow2"},
		{name: "md5", data: "d41d8cd98f00b204e9800998ecf8427e  node.qcow2\n", file: "node.qcow2", wantErr: "unreadable line"},
		{name: "empty", data: "\n", file: "node.qcow2", wantErr: "no checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseChecksumFile([]byte(tt.data), tt.file)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestInspectDisk(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	header := func(version uint32, size, backing, incompat uint64) []byte {
		h := make([]byte, 512)
		copy(h, "QFI\xfb")
		binary.BigEndian.PutUint32(h[4:], version)
		binary.BigEndian.PutUint64(h[8:], backing)
		binary.BigEndian.PutUint64(h[24:], size)
		binary.BigEndian.PutUint64(h[72:], incompat)
		return h
	}
	tests := []struct {
		name     string
		data     []byte
		want     disk
		wantDisk int
		wantErr  string
	}{
		{name: "qcow2 v3", data: header(3, 20*gib, 0, 0), want: disk{"qcow2", 20 * gib}, wantDisk: 20},
		{name: "qcow2 v2, rounds up", data: header(2, 2*gib+512, 0, 0), want: disk{"qcow2", 2*gib + 512}, wantDisk: 3},
		{name: "tiny raw", data: []byte("raw bytes"), want: disk{"raw", 9}, wantDisk: 1},
		{name: "backing file", data: header(3, gib, 4096, 0), wantErr: "backing file"},
		{name: "external data file", data: header(3, gib, 0, 4), wantErr: "external data file"},
		{name: "qcow2 v4", data: header(4, gib, 0, 0), wantErr: "version 4"},
		{name: "truncated", data: []byte("QFI\xfb\x00\x00"), wantErr: "truncated"},
		{name: "vmdk", data: append([]byte("KDMV"), make([]byte, 600)...), wantErr: "not a qcow2 or raw"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inspectDisk(write(fmt.Sprint(i), tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want || got.minDiskGiB() != tt.wantDisk {
				t.Fatalf("got %+v (min disk %d), %v; want %+v (%d)", got, got.minDiskGiB(), err, tt.want, tt.wantDisk)
			}
		})
	}
}

func TestSpecValidation(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		wantErr string
	}{
		{name: "download without checksum", spec: Spec{Name: "n", Source: "https://example.org/x.qcow2", KubernetesVersion: "v1", CacheDir: "/tmp"}, wantErr: "needs a sha256 or a checksum URL"},
		{name: "bad sha", spec: Spec{Name: "n", Source: "/x", SHA256: "abc", KubernetesVersion: "v1"}, wantErr: "not 64 hex digits"},
		{name: "scheme", spec: Spec{Name: "n", Source: "ftp://x/y", KubernetesVersion: "v1"}, wantErr: `scheme "ftp"`},
		{name: "remote file URL", spec: Spec{Name: "n", Source: "file://host/y", KubernetesVersion: "v1"}, wantErr: "another host"},
		{name: "raw without cache", spec: Spec{Name: "n", Source: "/x", Raw: true, KubernetesVersion: "v1"}, wantErr: "no cache directory"},
		{name: "capilab property", spec: Spec{Name: "n", Source: "/x", KubernetesVersion: "v1", ExtraProperties: map[string]string{PropSourceSHA256: "x"}}, wantErr: "set by capilab"},
		{name: "empty", spec: Spec{}, wantErr: "no image name\nno image source\nno kubernetes version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.spec.withDefaults()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultName(t *testing.T) {
	for in, want := range map[string]string{"v1.34.3": "ubuntu-capi-image-v1.34.3", "1.34.3": "ubuntu-capi-image-v1.34.3"} {
		if got := DefaultName(in); got != want {
			t.Errorf("DefaultName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestChecksumFileUnreachable: without the checksum file, an image
// registered from the same URL is kept (a lab without internet access);
// otherwise the registration fails without creating anything.
func TestChecksumFileUnreachable(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // connection refused from now on
	src := down.URL + "/img/node.qcow2"
	tests := []struct {
		name     string
		existing map[string]any
		wantErr  string
	}{
		{name: "registered from the same URL", existing: map[string]any{"image_source": src}},
		{name: "registered from another URL", existing: map[string]any{"image_source": "https://elsewhere/node.qcow2"}, wantErr: "checksum file"},
		{name: "nothing registered", wantErr: "checksum file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGlance(t)
			g := f.glance(t)
			if tt.existing != nil {
				img := map[string]any{"name": "ubuntu-capi-image-v1.2.3", "tags": []any{Tag}, PropSourceSHA256: strings.Repeat("a", 64)}
				for k, v := range tt.existing {
					img[k] = v
				}
				f.add(img)
			}
			spec := baseSpec(t, src, "")
			spec.ChecksumURL = src + ".CHECKSUM"
			res, err := Register(context.Background(), g, spec, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if f.count("POST /v2/images") != 0 {
					t.Fatal("created an image without a checksum")
				}
				return
			}
			if err != nil || res.Action != Unchanged {
				t.Fatalf("%+v, %v", res, err)
			}
		})
	}
}

// dnsFailing is a transport whose every request fails to resolve its host.
type dnsFailing struct{ calls int }

func (d *dnsFailing) RoundTrip(r *http.Request) (*http.Response, error) {
	d.calls++
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: r.URL.Hostname(), IsNotFound: true}}
}

// TestUnresolvableSourceIsNotRetried: "no such host" for the download or
// the checksum file fails at once instead of being retried as if transient.
func TestUnresolvableSourceIsNotRetried(t *testing.T) {
	for _, tc := range []struct{ name, sha, checksumURL string }{
		{"download", strings.Repeat("ab", 32), ""},
		{"checksum file", "", "https://images.invalid/x.qcow2.CHECKSUM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeGlance(t)
			d := &dnsFailing{}
			spec := baseSpec(t, "https://images.invalid/x.qcow2", tc.sha)
			spec.ChecksumURL, spec.CacheDir, spec.HTTPClient = tc.checksumURL, t.TempDir(), &http.Client{Transport: d}
			log, logs := testLog(t)
			_, err := Register(context.Background(), f.glance(t), spec, log)
			if err == nil || !strings.Contains(err.Error(), "no such host") {
				t.Fatalf("err = %v, want no such host", err)
			}
			if d.calls != 1 || strings.Contains(logs.String(), "retrying") {
				t.Errorf("%d request(s), want 1 and no retry:\n%s", d.calls, logs)
			}
		})
	}
}
