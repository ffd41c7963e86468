//go:build e2e

// Package conformance_test proves the check targets on a real, offline kind
// cluster: sonobuoy through its Go library, every image built locally
// (sonobuoy from its module, the conformance image and test images from
// k8s.io/kubernetes at the cluster's version, Debian for the rest) and
// loaded into the node, real e2e tests, real results.
//
// One kind cluster serves every test, which run one after another (a
// cluster takes one run at a time). Run it through scripts/e2e.sh (Docker
// engine and node image), or `go test -tags e2e -count=1 -v -timeout 60m
// ./tests/e2e/conformance` with both in place.
package conformance_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/kindcluster"
	"github.com/capilab/capilab/internal/kindimage"
)

// env is what TestMain prepares for every test.
type env struct {
	repoRoot   string
	artifacts  string // this run's artifacts root
	cluster    string // kind cluster name
	kubeconfig string
	clientset  *kubernetes.Clientset
	pins       *config.Loaded
	home, path string
}

var suite env

func TestMain(m *testing.M) {
	code, err := setUp(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "conformance e2e: FAIL before any test: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setUp(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	root, err := filepath.Abs("../../..")
	if err != nil {
		return 0, err
	}
	suite.repoRoot = root
	suite.home, suite.path = os.Getenv("HOME"), os.Getenv("PATH")
	base := os.Getenv("ARTIFACTS")
	if base == "" {
		base = filepath.Join(root, "artifacts")
	}
	suite.artifacts = filepath.Join(base, "e2e", "conformance-"+time.Now().UTC().Format("20060102-150405"))
	if err := os.MkdirAll(suite.artifacts, 0o755); err != nil {
		return 0, err
	}
	if err := (kindimage.CLI{}).Ping(ctx); err != nil {
		return 0, fmt.Errorf("no Docker engine answers — start one with scripts/docker-engine.sh start (scripts/e2e.sh does): %w", err)
	}
	loaded, err := config.Load(config.Options{Dir: root, Environ: os.Environ()})
	if err != nil {
		return 0, err
	}
	suite.pins = loaded
	choice, err := kindimage.Select(ctx, loaded.Settings.KindNodeImage, loaded.Versions, kindimage.CLI{}, kindimage.DefaultResolver)
	if err != nil {
		return 0, err
	}
	if choice.Local {
		st, err := (&kindimage.Builder{RepoRoot: root}).Check(ctx, loaded.Versions.KindNode)
		if err != nil {
			return 0, err
		}
		if !st.Current {
			return 0, fmt.Errorf("node image %s is missing or stale — build it with `make kind-image` (scripts/e2e.sh does)", st.Image)
		}
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	suite.cluster = "capilab-e2e-conf-" + hex.EncodeToString(b)
	suite.kubeconfig = filepath.Join(suite.artifacts, "kubeconfig")
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	mgr := kindcluster.New(log)
	start := time.Now()
	_, err = mgr.Create(ctx, kindcluster.Options{Name: suite.cluster, Image: choice.Image, Kubeconfig: suite.kubeconfig, WaitForReady: 3 * time.Minute})
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer dcancel()
		reportMemory(dctx, mgr)
		if err := mgr.ExportLogs(dctx, suite.cluster, filepath.Join(suite.artifacts, "kind-logs")); err != nil {
			fmt.Fprintf(os.Stderr, "export logs: %v\n", err)
		}
		if err := mgr.Delete(dctx, suite.cluster, suite.kubeconfig); err != nil {
			fmt.Fprintf(os.Stderr, "delete kind cluster %s: %v\n", suite.cluster, err)
		}
	}()
	if err != nil {
		return 0, fmt.Errorf("create kind cluster: %w\n%s", err, logBuf.String())
	}
	fmt.Fprintf(os.Stderr, "TIMING create 1-node kind cluster %s (%s): %s\n", suite.cluster, choice.Image, time.Since(start).Round(time.Second))
	cfg, err := clientcmd.BuildConfigFromFlags("", suite.kubeconfig)
	if err != nil {
		return 0, err
	}
	if suite.clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// reportMemory prints the peak memory of the kind node containers (their
// cgroup's, read on the host: cgroup v2 or v1, either Docker cgroup driver)
// and of this test process, which runs most checks in-process.
func reportMemory(ctx context.Context, mgr *kindcluster.Manager) {
	nodes, _ := mgr.NodeNames(suite.cluster)
	for _, n := range nodes {
		out, err := exec.CommandContext(ctx, "docker", "inspect", "--format", "{{.Id}}", n).Output()
		if err != nil {
			continue
		}
		id := strings.TrimSpace(string(out))
		peak := "not readable"
		for _, p := range []string{
			"/sys/fs/cgroup/docker/" + id + "/memory.peak",
			"/sys/fs/cgroup/system.slice/docker-" + id + ".scope/memory.peak",
			"/sys/fs/cgroup/memory/docker/" + id + "/memory.max_usage_in_bytes",
			"/sys/fs/cgroup/memory/system.slice/docker-" + id + ".scope/memory.max_usage_in_bytes",
		} {
			if b, err := os.ReadFile(p); err == nil {
				if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
					peak = fmt.Sprintf("%.2f GiB", float64(v)/(1<<30))
					break
				}
			}
		}
		fmt.Fprintf(os.Stderr, "TIMING memory peak of kind node %s: %s\n", n, peak)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		fmt.Fprintf(os.Stderr, "TIMING memory peak of the test process (checks run in it): %d MiB\n", ru.Maxrss/1024)
	}
}

// logWriter sends lines to the test log and keeps them.
type logWriter struct {
	t   *testing.T
	buf bytes.Buffer
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
