//go:build integration

package image_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/tests/devcloudtest"
)

// BenchmarkRegister1GiB registers a qcow2 holding 1 GiB of random data with
// capilab (image:register: sha256 verification, create, streaming upload
// with sha512, wait for active, checks) and with `openstack image create
// --file` of the same file, and reports both times and their ratio. Run:
//
//	go test -tags integration -run '^$' -bench . ./tests/integration/image
func BenchmarkRegister1GiB(b *testing.B) {
	_, g := connect(b)
	dir := b.TempDir()
	src, sum := benchSource(b)
	fi, _ := os.Stat(src)
	b.Logf("source: %s, %d bytes", src, fi.Size())
	b.SetBytes(fi.Size())
	var capilab, openstack time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ours, theirs := uniqueName("bench"), uniqueName("bench-cli")
		b.StartTimer()

		start := time.Now()
		if _, err := devcloudtest.RunTarget(context.Background(), b, "image:register", discardWriter{},
			settings(ours, src, sum, false, "STATE_DIR="+dir+"/state")...); err != nil {
			b.Fatal(err)
		}
		capilab += time.Since(start)

		start = time.Now()
		if _, err := cliEnv(nil, "image", "create", "--file", src, "--disk-format", "qcow2", "--container-format", "bare", theirs, "-f", "value", "-c", "id"); err != nil {
			b.Fatal(err)
		}
		openstack += time.Since(start)

		b.StopTimer()
		for _, name := range []string{ours, theirs} {
			if imgs := named(b, g, name); len(imgs) != 1 || imgs[0].Status != "active" || imgs[0].SizeBytes != fi.Size() {
				b.Fatalf("%s: %+v", name, imgs)
			}
			removeNamed(b, g, name)
		}
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(capilab.Seconds()/n, "capilab-s/op")
	b.ReportMetric(openstack.Seconds()/n, "openstack-cli-s/op")
	b.ReportMetric(capilab.Seconds()/openstack.Seconds(), "capilab/cli")
}

// BenchmarkNoOp is the re-run with the image present: in process (settings,
// token, one lookup), as a separate process of the compiled targets (what
// `make image` costs after its first build), and the token issue alone,
// which dominates both.
func BenchmarkNoOp(b *testing.B) {
	_, g := connect(b)
	dir := b.TempDir()
	src, sum := qcow2(b, dir, gib, 8)
	name := uniqueName("noop")
	b.Cleanup(func() { removeNamed(b, g, name) })
	env := settings(name, src, sum, false, "STATE_DIR="+dir+"/state")
	if _, err := devcloudtest.RunTarget(context.Background(), b, "image:register", discardWriter{}, env...); err != nil {
		b.Fatal(err)
	}
	// The targets compiled into one binary, as bin/mage runs them.
	bin := filepath.Join(dir, "capilab-targets")
	build := exec.Command("go", "run", "mage.go", "-compile", bin)
	build.Dir = filepath.Join("..", "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("mage -compile: %v\n%s", err, out)
	}

	var inProcess, process, auth, cloudTime, own time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		out, err := devcloudtest.RunTarget(context.Background(), b, "image:register", discardWriter{}, env...)
		if err != nil {
			b.Fatal(err)
		}
		inProcess += time.Since(start)
		if !strings.Contains(out, "unchanged") {
			b.Fatalf("not a no-op: %q", out)
		}

		b.StopTimer()
		cmd := exec.Command(bin, "image:register")
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "OS_CLOUD="+memberCloud, "LOG_LEVEL=debug"), env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start = time.Now()
		out2, err := cmd.Output()
		took := time.Since(start)
		process += took
		if err != nil || !strings.Contains(string(out2), "unchanged") {
			b.Fatalf("compiled target: %v %q", err, out2)
		}
		waited := httpTime(b, stderr.String())
		cloudTime += waited
		own += took - waited
		start = time.Now()
		if _, err := cloud.Connect(context.Background(), cloud.Options{Cloud: memberCloud, Secrets: logging.NewSecrets()}); err != nil {
			b.Fatal(err)
		}
		auth += time.Since(start)
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(inProcess.Seconds()/n, "in-process-s/op")
	b.ReportMetric(process.Seconds()/n, "process-s/op")
	b.ReportMetric(auth.Seconds()/n, "token-issue-s/op")
	b.ReportMetric(cloudTime.Seconds()/n, "process-waiting-on-cloud-s/op")
	b.ReportMetric(own.Seconds()/n, "process-own-s/op")
}

// httpTime adds up the took= of the debug log's HTTP lines: the time the
// process spent waiting for the cloud.
func httpTime(b *testing.B, log string) time.Duration {
	var total time.Duration
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "msg=http ") {
			continue
		}
		_, rest, ok := strings.Cut(line, " took=")
		if !ok {
			continue
		}
		field, _, _ := strings.Cut(rest, " ")
		d, err := time.ParseDuration(field)
		if err != nil {
			b.Fatalf("took=%q: %v", field, err)
		}
		total += d
		n++
	}
	if n < 1 { // one GET when the token comes from the lab's token cache
		b.Fatalf("no HTTP lines in the debug log:\n%s", log)
	}
	return total
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// benchSource makes the 1 GiB source once per test binary (the benchmark
// function runs more than once as b.N grows); TestMain removes it.
func benchSource(b *testing.B) (string, string) {
	bench.once.Do(func() {
		dir, err := os.MkdirTemp("", "capilab-bench-")
		if err != nil {
			b.Fatal(err)
		}
		bench.dir = dir
		bench.src, bench.sum = qcow2(b, dir, 2*gib, 1024)
	})
	if bench.src == "" {
		b.Fatal("making the benchmark source failed earlier")
	}
	return bench.src, bench.sum
}

var bench struct {
	once          sync.Once
	dir, src, sum string
}
