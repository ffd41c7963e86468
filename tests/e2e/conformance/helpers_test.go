//go:build e2e

package conformance_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/capilab/capilab/internal/conformance"
	"github.com/capilab/capilab/internal/lab"
	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/report"
)

// result is one check target run.
type result struct {
	code   int
	err    error
	stdout string
	log    string
	dir    string // the run's artifacts directory ("" when none was made)
	took   time.Duration
}

// lastLine is the line a user reads last: the error mage prints, or the
// summary on stdout.
func (r result) lastLine() string {
	if r.err != nil {
		lines := strings.Split(strings.TrimSpace(r.err.Error()), "\n")
		return lines[len(lines)-1]
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	return lines[len(lines)-1]
}

func exitCode(err error) int {
	var e interface{ ExitStatus() int }
	if errors.As(err, &e) {
		return e.ExitStatus()
	}
	if err != nil {
		return 1
	}
	return 0
}

// baseEnv is the environment of a check run: this cluster's kubeconfig,
// artifacts and state in the test's directories.
func baseEnv(t *testing.T, work string) []string {
	return []string{
		"HOME=" + suite.home, "PATH=" + suite.path,
		"KUBECONFIG=" + suite.kubeconfig,
		"ARTIFACTS_DIR=" + filepath.Join(work, "artifacts"),
		"STATE_DIR=" + filepath.Join(work, "state"),
	}
}

// shellEnviron is this process's environment as a user's shell has it:
// without what an enclosing make passes down (make test-integration runs
// these tests), which would make `make check-quick` a sub-make that prints
// "make[1]: Leaving directory" after capilab's last line.
func shellEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != "MAKELEVEL" && name != "MAKEFLAGS" && name != "MFLAGS" {
			env = append(env, kv)
		}
	}
	return env
}

// runCheck runs a check target the way `make <target>` does, in-process.
func runCheck(ctx context.Context, t *testing.T, target, work string, env ...string) result {
	t.Helper()
	run, ok := lab.Targets()[target]
	if !ok {
		t.Fatalf("no target %s", target)
	}
	var stdout bytes.Buffer
	lw := &logWriter{t: t}
	start := time.Now()
	environ := append(baseEnv(t, work), env...)
	err := lab.Main(ctx, lab.Options{Dir: work, Environ: environ, Stdout: &stdout, Stderr: lw}, run)
	res := result{code: exitCode(err), err: err, stdout: stdout.String(), log: lw.buf.String(), took: time.Since(start)}
	res.dir = newestRun(filepath.Join(work, "artifacts", "check"))
	t.Logf("%s: exit %d after %s; last line: %s", target, res.code, res.took.Round(time.Second), res.lastLine())
	return res
}

func newestRun(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		return ""
	}
	return filepath.Join(dir, entries[len(entries)-1].Name())
}

func readReport(t *testing.T, dir string) *report.Report {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, report.JSONFile))
	if err != nil {
		t.Fatalf("report.json: %v", err)
	}
	defer f.Close()
	r, err := report.ReadJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// sonobuoyCLI builds the real sonobuoy command from its module, as the
// image build does (same program, so the binary is the cached one).
func sonobuoyCLI(ctx context.Context, t *testing.T) string {
	t.Helper()
	v := suite.pins.Versions.Sonobuoy.Version
	b := &modbuild.Builder{CacheDir: filepath.Join(suite.home, ".cache", "capilab", "modbuild")}
	bin, err := b.Build(ctx, modbuild.Program{Name: "sonobuoy", Module: "github.com/vmware-tanzu/sonobuoy", Version: v, Package: ".",
		LDFlags: []string{"-X github.com/vmware-tanzu/sonobuoy/pkg/buildinfo.Version=" + v}})
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

var countRE = regexp.MustCompile(`(?m)^(Total|Passed|Failed|Skipped): (\d+)$`)

// cliCounts runs `sonobuoy results <tarball>` and reads its counts.
func cliCounts(ctx context.Context, t *testing.T, tarball string) report.Counts {
	t.Helper()
	out, err := exec.CommandContext(ctx, sonobuoyCLI(ctx, t), "results", tarball).CombinedOutput()
	if err != nil {
		t.Fatalf("sonobuoy results %s: %v\n%s", tarball, err, out)
	}
	t.Logf("sonobuoy results:\n%s", out)
	var c report.Counts
	for _, m := range countRE.FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.Atoi(m[2])
		switch m[1] {
		case "Total":
			c.Total = n
		case "Passed":
			c.Passed = n
		case "Failed":
			c.Failed = n
		case "Skipped":
			c.Skipped = n
		}
	}
	if c.Total == 0 {
		t.Fatalf("sonobuoy results printed no counts:\n%s", out)
	}
	return c
}

// compareWithCLI checks that the real sonobuoy CLI counts the run's
// results tarball as capilab's report does.
func compareWithCLI(ctx context.Context, t *testing.T, r *report.Report, dir string) {
	t.Helper()
	cli := cliCounts(ctx, t, filepath.Join(dir, conformance.TarballFile))
	all := r.AllCounts()
	if cli.Total != all.Total || cli.Passed != all.Passed || cli.Failed != all.Bad() || cli.Skipped != all.Skipped {
		t.Errorf("sonobuoy results counts %+v, capilab's report (setup nodes included) %+v", cli, all)
	}
}

// assertNothingLeft checks that no object of sonobuoy and no namespace of
// the e2e framework is left in the cluster.
func assertNothingLeft(ctx context.Context, t *testing.T) {
	t.Helper()
	cs := suite.clientset
	if _, err := cs.CoreV1().Namespaces().Get(ctx, conformance.DefaultNamespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s is left (err %v)", conformance.DefaultNamespace, err)
	}
	crs, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: "component=sonobuoy"})
	if err != nil || len(crs.Items) > 0 {
		t.Errorf("sonobuoy cluster roles left: %d (err %v)", len(crs.Items), err)
	}
	crbs, err := cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{LabelSelector: "component=sonobuoy"})
	if err != nil || len(crbs.Items) > 0 {
		t.Errorf("sonobuoy cluster role bindings left: %d (err %v)", len(crbs.Items), err)
	}
	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "e2e-framework"})
	if err != nil || len(nss.Items) > 0 {
		var names []string
		for _, n := range nss.Items {
			names = append(names, n.Name)
		}
		t.Errorf("e2e namespaces left: %v (err %v)", names, err)
	}
}

// focusOf is a focus that selects exactly the named tests.
func focusOf(names ...string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return strings.Join(quoted, "|")
}

// caseNames are the names of a report's tests with a status.
func caseNames(r *report.Report, s report.Status) []string {
	var out []string
	for _, c := range r.Cases {
		if !c.Setup && c.Status == s {
			out = append(out, c.Name)
		}
	}
	return out
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(&logWriter{t: t}, nil))
}

// workDir is a test's working directory (artifacts and state of its runs),
// kept under the tier's artifacts for CI to upload.
func workDir(t *testing.T) string {
	t.Helper()
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	dir := filepath.Join(suite.artifacts, strings.ReplaceAll(t.Name(), "/", "-")+"-"+hex.EncodeToString(b))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
