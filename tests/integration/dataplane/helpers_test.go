//go:build integration

// Package dataplane is the integration tier of devcloud's data plane: real
// devcloud, the data-plane agent devcloud.sh runs, the Docker engine and
// kind clusters on the locally built node image. A missing prerequisite
// fails the test with what to run; nothing is skipped.
package dataplane

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/dataplane"
	"github.com/capilab/capilab/internal/dataplane/docker"
	"github.com/capilab/capilab/internal/kindcluster"
	"github.com/capilab/capilab/internal/kindimage"
	"github.com/capilab/capilab/internal/wait"
)

const (
	labCloud      = "devcloud-lab"
	labRegion     = "RegionOne-docker"
	agentStateDir = "/var/lib/devcloud/dataplane"
)

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func randSuffix(t testing.TB) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// dockerClient fails the test unless a Docker engine answers (within 2 min: a
// loaded engine has taken tens of seconds for one call).
func dockerClient(t testing.TB) *docker.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dc, err := docker.New(ctx, "")
	if err != nil {
		t.Fatalf("no Docker engine: %v (start one with scripts/docker-engine.sh start, then scripts/devcloud/devcloud.sh start to run the data plane)", err)
	}
	return dc
}

// agentStatus reads the running agent's last pass and fails the test when
// the agent does not run or has not finished a pass within a minute (a
// just restarted agent gets up to 3 minutes for its first pass).
func agentStatus(t testing.TB) dataplane.Status {
	t.Helper()
	p := filepath.Join(agentStateDir, "status.json")
	var st dataplane.Status
	var last string
	err := wait.For(t.Context(), testLog(t), wait.Spec{What: "a data-plane agent pass younger than a minute (" + p + ")", Timeout: 3 * time.Minute, Interval: 2 * time.Second},
		func(context.Context) (bool, string, error) {
			raw, err := os.ReadFile(p)
			if err != nil {
				last = err.Error()
				return false, last, nil
			}
			if err := json.Unmarshal(raw, &st); err != nil {
				last = err.Error()
				return false, last, nil
			}
			age := time.Since(st.Time)
			last = "last pass " + age.Round(time.Second).String() + " ago"
			return age <= time.Minute, last, nil
		})
	if err != nil {
		t.Fatalf("data-plane agent status: %v (%s; does devcloud run with a Docker engine? scripts/devcloud/devcloud.sh status)", err, last)
	}
	return st
}

// nodeImage is the kind node image the settings select; it must be present.
func nodeImage(t testing.TB) string {
	t.Helper()
	ctx := t.Context()
	root := repoRoot(t)
	settings, err := config.Load(config.Options{Dir: root, Environ: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	choice, err := kindimage.Select(ctx, settings.Settings.KindNodeImage, settings.Versions, kindimage.CLI{}, kindimage.DefaultResolver)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dockerClient(t).ImageInspect(ctx, choice.Image); err != nil {
		t.Fatalf("node image %s is not in the Docker engine (%v): build it with `make kind-image`", choice.Image, err)
	}
	return choice.Image
}

func kindManager(t testing.TB) *kindcluster.Manager { return kindcluster.New(testLog(t)) }

// kind creates a kind cluster for the test and deletes it afterwards.
func kind(t *testing.T, name, image string) (string, *kubernetes.Clientset) {
	t.Helper()
	mgr := kindManager(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	start := time.Now()
	opts := kindcluster.Options{Name: name, Image: image, Kubeconfig: kubeconfig, WaitForReady: 5 * time.Minute}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 3*time.Minute)
		defer cancel()
		if err := mgr.Delete(ctx, name, kubeconfig); err != nil {
			t.Errorf("delete kind cluster %s: %v", name, err)
		}
	})
	// This cluster stands for the management side, it is not what the tests
	// prove: a start that fails on a starved machine is logged in full and
	// tried once more, after the half-made cluster is deleted.
	_, err := mgr.Create(t.Context(), opts)
	if err != nil && t.Context().Err() == nil {
		t.Logf("create kind cluster %s failed; deleting it and trying once more: %v", name, err)
		if derr := mgr.Delete(t.Context(), name, kubeconfig); derr != nil {
			t.Fatalf("create kind cluster %s: %v; deleting the half-made cluster: %v", name, err, derr)
		}
		_, err = mgr.Create(t.Context(), opts)
	}
	if err != nil {
		t.Fatalf("create kind cluster %s: %v", name, err)
	}
	t.Logf("TIMING kind cluster %s created in %s", name, time.Since(start).Round(time.Second))
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kubeconfig, cs
}

// goBinaryImage builds a static Go main package of this repository into a
// one-file image (docker import) named after the binary's hash.
func goBinaryImage(t testing.TB, pkg, name string) (image, binary string) {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	bin := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, pkg)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v: %s", pkg, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	image = "capilab.local/" + name + ":" + hex.EncodeToString(sum[:])[:12]
	if err := exec.CommandContext(ctx, "docker", "image", "inspect", image).Run(); err == nil {
		return image, bin
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: time.Unix(0, 0)})
	_, _ = tw.Write(data)
	_ = tw.Close()
	imp := exec.CommandContext(ctx, "docker", "import", "-c", `ENTRYPOINT ["/`+name+`"]`, "-", image)
	imp.Stdin = &buf
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import %s: %v: %s", image, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", image).Run() })
	return image, bin
}

// runPod runs a pod to completion and returns its log; the test fails when
// the pod fails or does not finish in time.
func runPod(t *testing.T, cs *kubernetes.Clientset, pod *corev1.Pod, timeout time.Duration) string {
	t.Helper()
	ctx := t.Context()
	if _, err := cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	var phase corev1.PodPhase
	err := wait.For(ctx, testLog(t), wait.Spec{What: "pod " + pod.Name + " to finish", Timeout: timeout, Interval: 2 * time.Second},
		func(ctx context.Context) (bool, string, error) {
			p, err := cs.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error(), nil
			}
			phase = p.Status.Phase
			return phase == corev1.PodSucceeded || phase == corev1.PodFailed, string(phase), nil
		})
	logs := podLog(t, cs, pod.Namespace, pod.Name)
	if err != nil {
		t.Fatalf("%v; log:\n%s", err, logs)
	}
	if phase != corev1.PodSucceeded {
		t.Fatalf("pod %s %s; log:\n%s", pod.Name, phase, logs)
	}
	return logs
}

func podLog(t *testing.T, cs *kubernetes.Clientset, ns, name string) string {
	rc, err := cs.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).Stream(context.WithoutCancel(t.Context()))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 1<<20))
	return string(b)
}
