package devcloudtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/capilab/capilab/internal/lab"
)

// RunTarget runs a capilab target (internal/lab.Targets) the way `make
// <target>` does — settings from the environment, a fresh working directory
// — as devcloud-member unless env sets OS_CLOUD. It returns what the target
// printed on stdout; its log goes to stderr, or to the test log when stderr
// is nil.
func RunTarget(ctx context.Context, t testing.TB, target string, stderr io.Writer, env ...string) (string, error) {
	t.Helper()
	run, ok := lab.Targets()[target]
	if !ok {
		t.Fatalf("devcloudtest: no target %q", target)
	}
	var stdout bytes.Buffer
	environ := append([]string{"OS_CLOUD=" + MemberCloud, "HOME=" + os.Getenv("HOME")}, env...)
	if stderr == nil {
		stderr = &LogWriter{T: t}
	}
	err := lab.Main(ctx, lab.Options{Dir: t.TempDir(), Environ: environ, Stdout: &stdout, Stderr: stderr}, run)
	return stdout.String(), err
}

// ExitCode is the exit code a target's error gives (0 for nil).
func ExitCode(err error) int {
	var e interface{ ExitStatus() int }
	if errors.As(err, &e) {
		return e.ExitStatus()
	}
	if err != nil {
		return 1
	}
	return 0
}

// LogWriter writes lines to the test log and keeps them for String; safe
// for concurrent use.
type LogWriter struct {
	T   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.T.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// String is everything written so far.
func (w *LogWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
