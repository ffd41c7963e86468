package devcloudtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Lab runs make targets of one lab (its own PREFIX, state and artifacts
// directories) in the repository, exactly as README documents them.
type Lab struct {
	T         testing.TB
	Repo      string
	Prefix    string
	State     string
	Artifacts string
	// Vars are passed to every make call (OS_CLOUD=…, PROVIDER_SOURCE=…).
	Vars []string
}

// NewLab makes a lab with a unique prefix (kind) and fresh directories;
// artifacts go under the repository's artifacts/<dir>.
func NewLab(t testing.TB, kind, artifactsDir string, vars ...string) *Lab {
	repo := RepoRoot(t)
	return &Lab{T: t, Repo: repo, Prefix: ShortName(kind), State: t.TempDir(),
		Artifacts: filepath.Join(repo, "artifacts", artifactsDir), Vars: vars}
}

// RepoRoot is the repository (the directory holding mage.go).
func RepoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; dir != "/"; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "mage.go")); err == nil {
			return dir
		}
	}
	t.Fatal("repository root not found")
	return ""
}

// CacheDir is capilab's build cache as the lab's targets find it:
// CAPILAB_CACHE_DIR (relative to the repository), else
// $XDG_CACHE_HOME/capilab, else ~/.cache/capilab. Its locks are shared
// with every capilab run on the machine.
func CacheDir(t testing.TB) string {
	if d := os.Getenv("CAPILAB_CACHE_DIR"); d != "" {
		if !filepath.IsAbs(d) {
			d = filepath.Join(RepoRoot(t), d)
		}
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(d, "capilab")
}

// Make runs `make <target> VAR=value…` and returns its combined output, its
// exit code and how long it took; the output goes to the test log.
func (l *Lab) Make(ctx context.Context, target string, vars ...string) (string, int, time.Duration) {
	l.T.Helper()
	args := append([]string{"-C", l.Repo, target, "PREFIX=" + l.Prefix, "STATE_DIR=" + l.State, "ARTIFACTS_DIR=" + l.Artifacts}, l.Vars...)
	return l.run(ctx, "make", append(args, vars...), 2)
}

// Mage runs `bin/mage <target> VAR=value…` from the repository root (what
// README gives CI for the targets' own exit codes; `make bin/mage` builds it)
// and returns its combined output, its exit code and how long it took.
func (l *Lab) Mage(ctx context.Context, target string, vars ...string) (string, int, time.Duration) {
	l.T.Helper()
	args := append([]string{target, "PREFIX=" + l.Prefix, "STATE_DIR=" + l.State, "ARTIFACTS_DIR=" + l.Artifacts}, l.Vars...)
	return l.run(ctx, filepath.Join(l.Repo, "bin", "mage"), append(args, vars...), 0)
}

func (l *Lab) run(ctx context.Context, name string, args []string, shown int) (string, int, time.Duration) {
	l.T.Helper()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = l.Repo
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	l.T.Logf("%s %s (%s, exit %d):\n%s", filepath.Base(name), strings.Join(args[shown:], " "), elapsed.Round(100*time.Millisecond), code, out.String())
	return out.String(), code, elapsed
}

// ShortName is a unique name short enough for a lab prefix (at most 20
// characters): kind, a dash and 6 random hex digits.
func ShortName(kind string) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%s-%s", kind, hex.EncodeToString(b))
}
