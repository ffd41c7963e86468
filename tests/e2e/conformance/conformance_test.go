//go:build e2e

package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/capilab/capilab/internal/conformance"
	"github.com/capilab/capilab/internal/lab"
	"github.com/capilab/capilab/internal/report"
	"github.com/capilab/capilab/internal/wait"
)

// quickTest is the one test of quick mode.
const quickTest = "[sig-node] Pods should be submitted and removed"

// focusedSet is a dozen [Conformance] tests of sig-node, sig-network and
// sig-apps whose images are all made locally (pause from the node image,
// busybox, agnhost and the glibc DNS probe image).
var focusedSet = []string{
	"[sig-node] Downward API should provide pod name, namespace and IP address as env vars",
	"[sig-node] ConfigMap should be consumable via environment variable",
	"[sig-node] Secrets should be consumable from pods in env vars",
	"[sig-node] Kubelet when scheduling a busybox command in a pod should print the output to logs",
	"[sig-node] Variable Expansion should allow composing env vars into new env vars",
	"[sig-node] Pods should get a host IP",
	"[sig-node] Container Runtime blackbox test on terminated container should report termination message from file when pod succeeds and TerminationMessagePolicy FallbackToLogsOnError is set",
	"[sig-network] API Server should provide secure master service",
	"[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: http",
	"[sig-network] Services should serve a basic endpoint from pods",
	"[sig-network] DNS should provide DNS for the cluster",
	"[sig-apps] ReplicaSet should serve a basic image on each replica with a public image",
	"[sig-apps] Job should run a job to completion when tasks sometimes fail and are locally restarted",
}

// imageStep matches the first log line of each way a check makes its images
// available (made here and pushed or loaded, or pulled by the nodes).
var imageStep = regexp.MustCompile(`making the images here|registry resolves: the kind nodes pull|kind cluster of another engine`)

// failingTest fails when its image cannot be pulled, within two minutes
// (it waits for its pod with the e2e framework's short pod-start bound).
const failingTest = "[sig-node] Variable Expansion should succeed in writing subpaths in container"

func TestBadInput(t *testing.T) {
	ctx := t.Context()
	work := workDir(t)
	cs := suite.clientset

	// credentials the cluster accepts but that may do nothing
	sa := "capilab-e2e-noaccess"
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().ServiceAccounts("default").Delete(context.WithoutCancel(ctx), sa, metav1.DeleteOptions{})
	})
	tok, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.LoadFromFile(suite.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	server := kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster]
	writeKubeconfig := func(name, url, token string) string {
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: server.CertificateAuthorityData}
		cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: token}
		cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
		cfg.CurrentContext = "x"
		p := filepath.Join(work, name)
		if err := clientcmd.WriteToFile(*cfg, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	driver := filepath.Join(work, "no-such-driver.yaml")

	tests := []struct {
		name   string
		target string
		env    []string
		want   string
	}{
		{"unknown mode", "check:run", []string{"SONOMODE=non-disruptive"}, "sonomode"},
		{"cluster the lab does not know", "check:quick", []string{"KUBECONFIG=", "CLUSTER=nosuch"}, "cluster nosuch: no kubeconfig"},
		{"kubeconfig file missing", "check:quick", []string{"KUBECONFIG=" + filepath.Join(work, "missing")}, "no such file"},
		{"cluster does not answer", "check:quick", []string{"KUBECONFIG=" + writeKubeconfig("dead", "https://127.0.0.1:1", "x")}, "does not answer"},
		{"credentials refused", "check:quick", []string{"KUBECONFIG=" + writeKubeconfig("bad-token", server.Server, "not-a-token")}, "401"},
		{"credentials without access", "check:quick", []string{"KUBECONFIG=" + writeKubeconfig("no-access", server.Server, tok.Status.Token)}, "not cluster admin"},
		{"focus is no regular expression", "check:quick", []string{"E2E_FOCUS=[Conformance"}, "e2e_focus"},
		{"parallel is no number", "check:quick", []string{"E2E_PARALLEL=lots"}, "e2e_parallel"},
		{"test-driver file missing", "check:csi", []string{"CSI_TEST_DRIVER=" + driver}, "csi_test_driver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCheck(ctx, t, tt.target, work, tt.env...)
			if res.code != 2 {
				t.Fatalf("exit %d, want 2: %v", res.code, res.err)
			}
			if !strings.Contains(res.err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", res.err, tt.want)
			}
			if res.dir != "" {
				t.Errorf("a run directory was made: %s", res.dir)
			}
			assertNothingLeft(ctx, t)
		})
	}
}

// TestQuickThroughMake runs `make check-quick` (images built or found
// current, loaded into the node, the run) and, while it runs, a second
// check from this machine and one from another machine's state: both are
// refused at once with the busy exit code.
func TestQuickThroughMake(t *testing.T) {
	ctx := t.Context()
	work := workDir(t)
	cmd := exec.CommandContext(ctx, "make", "check-quick")
	cmd.Dir = suite.repoRoot
	cmd.Env = append(shellEnviron(), baseEnv(t, work)...)
	out := &logWriter{t: t}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// once sonobuoy runs in the cluster, a second run is refused
	err := wait.For(ctx, testLogger(t), wait.Spec{What: "the aggregator of make check-quick to run", Timeout: 25 * time.Minute, Interval: 2 * time.Second},
		func(ctx context.Context) (bool, string, error) {
			select {
			case err := <-done:
				done <- err
				return false, "", fmt.Errorf("make check-quick ended before its aggregator ran: %v", err)
			default:
			}
			pods, err := suite.clientset.CoreV1().Pods(conformance.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "sonobuoy-component=aggregator"})
			return err == nil && len(pods.Items) > 0, "", nil
		})
	if err != nil {
		t.Fatal(err)
	}
	runs := func(work string) int {
		entries, _ := os.ReadDir(filepath.Join(work, "artifacts", "check"))
		return len(entries)
	}
	before := runs(work)
	same := runCheck(ctx, t, "check:quick", work)
	if same.code != lab.ExitBusy || !strings.Contains(same.err.Error(), "another check is running against cluster") {
		t.Errorf("second run from this machine: exit %d, %v", same.code, same.err)
	}
	otherWork := workDir(t)
	other := runCheck(ctx, t, "check:quick", otherWork)
	if other.code != lab.ExitBusy || !strings.Contains(other.err.Error(), "a sonobuoy run is active") || !strings.Contains(other.err.Error(), "started by capilab") {
		t.Errorf("second run from another state: exit %d, %v", other.code, other.err)
	}
	if runs(work) != before || runs(otherWork) != 0 {
		t.Errorf("refused runs made run directories")
	}
	for name, r := range map[string]result{"this machine": same, "another state": other} {
		if imageStep.MatchString(r.log) {
			t.Errorf("the refused run from %s got to the images before it was refused:\n%s", name, r.log)
		}
	}

	if err := <-done; err != nil {
		t.Fatalf("make check-quick: %v\n%s", err, out.buf.String())
	}
	t.Logf("TIMING make check-quick (images checked or built, loaded, run, report): %s", time.Since(start).Round(time.Second))
	lines := strings.Split(strings.TrimSpace(out.buf.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "check quick: PASSED: 1 of 1 tests passed") {
		t.Errorf("last line %q", last)
	}
	dir := newestRun(filepath.Join(work, "artifacts", "check"))
	r := readReport(t, dir)
	if r.Outcome != report.OutcomePassed || r.Counts().Passed != 1 || len(r.Bad()) != 0 {
		t.Errorf("report: outcome %s, counts %+v", r.Outcome, r.Counts())
	}
	if passed := caseNames(r, report.Passed); len(passed) != 1 || !strings.HasPrefix(passed[0], quickTest) {
		t.Errorf("passed tests %v", passed)
	}
	if r.Cluster == nil || r.Cluster.Version != suite.pins.Versions.KindNode.Kubernetes || len(r.Cluster.Nodes) != 1 {
		t.Errorf("cluster facts %+v", r.Cluster)
	}
	if j := readFile(t, filepath.Join(dir, report.JUnitFile)); !strings.Contains(j, "Pods should be submitted and removed") {
		t.Errorf("junit.xml lacks the test")
	}
	compareWithCLI(ctx, t, r, dir)
	assertNothingLeft(ctx, t)
}

func TestFocusedConformanceSet(t *testing.T) {
	ctx := t.Context()
	res := runCheck(ctx, t, "check:run", workDir(t), "SONOMODE=certified-conformance", "E2E_FOCUS="+focusOf(focusedSet...))
	t.Logf("TIMING focused set of %d [Conformance] tests: %s", len(focusedSet), res.took.Round(time.Second))
	if res.code != 0 {
		t.Fatalf("exit %d: %v", res.code, res.err)
	}
	r := readReport(t, res.dir)
	passed := caseNames(r, report.Passed)
	if len(passed) != len(focusedSet) || r.Counts().Bad() != 0 {
		t.Errorf("%d passed (want %d), counts %+v", len(passed), len(focusedSet), r.Counts())
	}
	for _, want := range focusedSet {
		if !slices.ContainsFunc(passed, func(n string) bool { return strings.HasPrefix(n, want) }) {
			t.Errorf("not passed: %s", want)
		}
	}
	if !strings.Contains(res.log, "tests done") || !strings.Contains(res.log, "failed so far") {
		t.Errorf("no progress lines with tests done and failures so far in the log")
	}
	if !strings.Contains(res.lastLine(), fmt.Sprintf("PASSED: %d of %d tests passed", len(focusedSet), len(focusedSet))) {
		t.Errorf("last line %q", res.lastLine())
	}
	compareWithCLI(ctx, t, r, res.dir)
	assertNothingLeft(ctx, t)
}

// TestKnownFailure runs a passing test and one whose image is made
// unreachable (the e2e images' registry pointed at a host that does not
// exist): exit 1, the failed test named in the last line's count, the
// JUnit and the HTML, the image named in the notes.
func TestKnownFailure(t *testing.T) {
	ctx := t.Context()
	work := workDir(t)
	repoList := filepath.Join(work, "repo-list.yaml")
	if err := os.WriteFile(repoList, []byte("promoterE2eRegistry: registry.capilab.invalid/e2e-test-images\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runCheck(ctx, t, "check:run", work, "SONOMODE=certified-conformance", "E2E_FOCUS="+focusOf(quickTest, failingTest), "E2E_REPO_CONFIG="+repoList)
	t.Logf("TIMING known failure run: %s", res.took.Round(time.Second))
	if res.code != 1 {
		t.Fatalf("exit %d, want 1: %v", res.code, res.err)
	}
	if !strings.Contains(res.lastLine(), "FAILED: 1 test failed (1 passed)") {
		t.Errorf("last line %q", res.lastLine())
	}
	r := readReport(t, res.dir)
	bad := r.Bad()
	if len(bad) != 1 || !strings.HasPrefix(bad[0].Name, failingTest) || bad[0].Message == "" || bad[0].Location == "" {
		t.Fatalf("failed cases %+v", bad)
	}
	junit := readFile(t, filepath.Join(res.dir, report.JUnitFile))
	html := readFile(t, filepath.Join(res.dir, report.HTMLFile))
	for what, doc := range map[string]string{"junit.xml": junit, "report.html": html} {
		if !strings.Contains(doc, "should succeed in writing subpaths in container") {
			t.Errorf("%s does not name the failed test", what)
		}
	}
	if !strings.Contains(junit, "<failure message=") {
		t.Errorf("junit.xml has no failure")
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "registry.capilab.invalid") }) {
		t.Errorf("notes do not name the unpullable image: %v", r.Notes)
	}
	compareWithCLI(ctx, t, r, res.dir)
	assertNothingLeft(ctx, t)
}

// TestCSIDryRun proves on kind what check-csi needs from sonobuoy: the
// test-driver definition reaches the e2e binary through the plugin's
// config map and flags, and the external storage suite is generated for
// the Cinder CSI driver. Running it needs a cloud with Cinder.
func TestCSIDryRun(t *testing.T) {
	ctx := t.Context()
	res := runCheck(ctx, t, "check:csi", workDir(t), "E2E_DRYRUN=true")
	if res.code != 0 {
		t.Fatalf("exit %d: %v", res.code, res.err)
	}
	r := readReport(t, res.dir)
	listed := caseNames(r, report.Passed)
	if r.Outcome != report.OutcomeListed || len(listed) < 20 {
		t.Fatalf("outcome %s, %d tests listed", r.Outcome, len(listed))
	}
	for _, n := range listed {
		if !strings.Contains(n, "External Storage [Driver: cinder.csi.openstack.org]") || strings.Contains(n, "[Disruptive]") {
			t.Errorf("listed: %s", n)
		}
	}
	if !strings.Contains(res.lastLine(), "LISTED (dry run)") {
		t.Errorf("last line %q", res.lastLine())
	}
	t.Logf("check-csi selects %d tests of the external storage suite for cinder.csi.openstack.org", len(listed))
	assertNothingLeft(ctx, t)
}

// TestTimeout bounds a run far shorter than it needs (the whole
// certified-conformance suite, hundreds of tests that run one at a time,
// in one minute): TIMEOUT in the last line and the JSON, what exists saved,
// nothing left in the cluster. A bound close to what the run needs would
// make the outcome depend on the machine's speed.
func TestTimeout(t *testing.T) {
	ctx := t.Context()
	res := runCheck(ctx, t, "check:run", workDir(t), "SONOMODE=certified-conformance", "CHECK_TIMEOUT=60s")
	if res.code != 1 {
		t.Fatalf("exit %d, want 1: %v", res.code, res.err)
	}
	if !strings.Contains(res.lastLine(), "TIMEOUT after") {
		t.Errorf("last line %q", res.lastLine())
	}
	r := readReport(t, res.dir)
	if r.Outcome != report.OutcomeTimeout {
		t.Errorf("outcome %s", r.Outcome)
	}
	if _, err := os.Stat(filepath.Join(res.dir, conformance.PluginLog)); err != nil {
		t.Errorf("the e2e log of the cut run was not saved: %v", err)
	}
	if j := readFile(t, filepath.Join(res.dir, report.JUnitFile)); !strings.Contains(j, `type="timeout"`) {
		t.Errorf("junit.xml does not record the timeout")
	}
	assertNothingLeft(ctx, t)
}

// TestInterrupt presses Ctrl-C (SIGINT to the process group of bin/mage
// check:run, as a terminal does) once tests run: the process stops within
// its grace, says INTERRUPTED last, keeps the log of what ran and removes
// sonobuoy.
func TestInterrupt(t *testing.T) {
	ctx := t.Context()
	work := workDir(t)
	build := exec.CommandContext(ctx, "make", "bin/mage")
	build.Dir = suite.repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make bin/mage: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(suite.repoRoot, "bin", "mage"), "check:run")
	cmd.Dir = suite.repoRoot
	cmd.Env = append(append(os.Environ(), baseEnv(t, work)...), "SONOMODE=certified-conformance", "E2E_FOCUS="+focusOf(focusedSet...))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &logWriter{t: t}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	err := wait.For(ctx, testLogger(t), wait.Spec{What: "an e2e test namespace", Timeout: 10 * time.Minute, Interval: time.Second},
		func(ctx context.Context) (bool, string, error) {
			select {
			case err := <-done:
				done <- err
				return false, "", fmt.Errorf("check:run ended before tests ran: %v", err)
			default:
			}
			nss, err := suite.clientset.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "e2e-framework"})
			return err == nil && len(nss.Items) > 0, "", nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	err = <-done
	t.Logf("TIMING from Ctrl-C to exit (logs kept, sonobuoy removed): %s", time.Since(sent).Round(time.Second))
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("bin/mage check:run after SIGINT: %v, want exit code 1", err)
	}
	lines := strings.Split(strings.TrimSpace(out.buf.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "INTERRUPTED") {
		t.Errorf("last line %q", last)
	}
	dir := newestRun(filepath.Join(work, "artifacts", "check"))
	r := readReport(t, dir)
	if r.Outcome != report.OutcomeInterrupted {
		t.Errorf("outcome %s", r.Outcome)
	}
	if fi, err := os.Stat(filepath.Join(dir, conformance.PluginLog)); err != nil || fi.Size() == 0 {
		t.Errorf("the e2e log of the interrupted run was not kept: %v", err)
	}
	assertNothingLeft(ctx, t)
}
