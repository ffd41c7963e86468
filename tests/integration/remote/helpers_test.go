//go:build integration

package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/lab"
	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/remote"
	"github.com/capilab/capilab/internal/versions"
	"github.com/capilab/capilab/tests/devcloudtest"
)

// repoRoot is the checkout: terraform/ and the commit a node would get.
func repoRoot(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p, "terraform", "node.tf")); err != nil {
		t.Fatalf("no capilab checkout at %s: %v", p, err)
	}
	return p
}

// toolCache is the lab's default tool cache, so that tests and make share
// the builds of OpenTofu and the provider.
func toolCache(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("CAPILAB_TOOL_CACHE"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "capilab", "tools")
}

func pins(t testing.TB) versions.Remote {
	t.Helper()
	p, err := versions.Load()
	if err != nil {
		t.Fatal(err)
	}
	return p.Remote
}

var (
	buildOnce sync.Once
	built     struct {
		tofu   remote.Binary
		mirror string
		err    error
	}
)

// builtTools builds OpenTofu and the OpenStack provider from their modules
// (cached by content in the tool cache: the first run on a machine builds,
// later ones find them) and lays the provider out as a filesystem mirror.
func builtTools(t testing.TB) (remote.Binary, string) {
	t.Helper()
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
		defer cancel()
		tools := &remote.Tools{
			Build: &modbuild.Builder{CacheDir: toolCache(t), Log: slog.New(slog.NewTextHandler(os.Stderr, nil))},
			Pins:  pins(t),
			// Build OpenTofu whatever PATH has.
			LookPath: func(string) (string, error) { return "", exec.ErrNotFound },
		}
		start := time.Now()
		built.mirror, built.err = tools.Mirror(ctx)
		if built.err != nil {
			return
		}
		t.Logf("OpenStack provider %s: ready in %s (a build when the tool cache was cold)", tools.Pins.OpenStackProvider, time.Since(start).Round(time.Second))
		start = time.Now()
		built.tofu, built.err = tools.Find(ctx)
		t.Logf("OpenTofu %s: ready in %s", built.tofu.Version, time.Since(start).Round(time.Second))
	})
	if built.err != nil {
		t.Fatalf("building OpenTofu and the provider: %v", built.err)
	}
	return built.tofu, built.mirror
}

// uniquePrefix is a lab prefix no other run uses (at most 20 characters).
func uniquePrefix(stem string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return stem + hex.EncodeToString(b)
}

// labRun runs capilab targets the way make does, from the checkout (so the
// node's module and source are this commit), with a lab of its own: state
// and artifacts in temporary directories, no lab.yaml, devcloud's member.
type labRun struct {
	t        *testing.T
	root     string
	stateDir string
	env      []string
}

func newLab(t *testing.T, prefix string, env ...string) *labRun {
	dir := t.TempDir()
	base := []string{
		"LAB_CONFIG=/dev/null",
		"OS_CLOUD=" + devcloudtest.MemberCloud,
		"OS_CLIENT_CONFIG_FILE=" + devcloudtest.CloudsYAMLPath(),
		"PREFIX=" + prefix,
		"STATE_DIR=" + filepath.Join(dir, "state"),
		"ARTIFACTS_DIR=" + filepath.Join(dir, "artifacts"),
		"CAPILAB_TOOL_CACHE=" + toolCache(t),
		"MGMT_MODE=remote",
		"MGMT_IMAGE=devcloud-tiny",
		"KIND_FLAVOR=SCS-2V-4-20s",
	}
	return &labRun{t: t, root: repoRoot(t), stateDir: filepath.Join(dir, "state"), env: append(base, env...)}
}

// result is one target run.
type result struct {
	stdout, log string
	err         error
	took        time.Duration
}

func (r result) code() int { return devcloudtest.ExitCode(r.err) }

// run runs target with the lab's environment plus env (later wins).
func (l *labRun) run(ctx context.Context, target string, env ...string) result {
	l.t.Helper()
	fn, ok := lab.Targets()[target]
	if !ok {
		l.t.Fatalf("no target %s", target)
	}
	var stdout bytes.Buffer
	stderr := &devcloudtest.LogWriter{T: l.t}
	environ := append(append(append([]string{}, os.Environ()...), l.env...), env...)
	start := time.Now()
	err := lab.Main(ctx, lab.Options{Dir: l.root, Environ: environ, Stdout: &stdout, Stderr: stderr}, fn)
	res := result{stdout: stdout.String(), log: stderr.String(), err: err, took: time.Since(start)}
	l.t.Logf("%s: exit %d after %s", target, res.code(), res.took.Round(time.Second))
	return res
}

var elapsedRE = regexp.MustCompile(`elapsed=(\S+)`)

// stepTime is the elapsed time capilab logged when the step ended.
func stepTime(t testing.TB, log, step string) time.Duration {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "✓ "+step) {
			continue
		}
		if m := elapsedRE.FindStringSubmatch(line); m != nil {
			d, err := time.ParseDuration(m[1])
			if err == nil {
				return d
			}
		}
	}
	t.Fatalf("no finished step %q in the log", step)
	return 0
}
