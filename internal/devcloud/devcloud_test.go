package devcloud_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/devcloud"
)

// fakeScript writes a shell script that records its arguments and behaves as body says.
func fakeScript(t *testing.T, body string) (script, argsFile string) {
	t.Helper()
	dir := t.TempDir()
	argsFile = filepath.Join(dir, "args")
	script = filepath.Join(dir, "devcloud.sh")
	src := "#!/bin/sh\necho \"$@\" >>" + argsFile + "\n" + body + "\n"
	if err := os.WriteFile(script, []byte(src), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, argsFile
}

func TestRunner(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		call     func(*devcloud.Runner, context.Context) error
		wantArgs string
		wantOut  string
		wantErr  string
	}{
		{"up installs then starts", "echo did $1", (*devcloud.Runner).Up, "install\nstart\n", "did install\ndid start\n", ""},
		{"up stops at a failed install", "echo nope >&2; exit 3", (*devcloud.Runner).Up, "install\n", "", "devcloud install"},
		{"down stops", "", (*devcloud.Runner).Down, "stop\n", "", ""},
		{"status fails when the script does", "exit 1", (*devcloud.Runner).Status, "status\n", "", "exit status 1"},
		{"env", "echo export OS_CLOUD=devcloud-member", (*devcloud.Runner).Env, "env\n", "export OS_CLOUD=devcloud-member\n", ""},
		{"reset", "", (*devcloud.Runner).Reset, "reset\n", "", ""},
		{"unknown verb is refused before running", "", func(r *devcloud.Runner, ctx context.Context) error {
			return r.Run(ctx, "destroy")
		}, "", "", `unknown verb "destroy"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			script, argsFile := fakeScript(t, tc.body)
			var out, errOut bytes.Buffer
			r := devcloud.New(devcloud.WithScript(script), devcloud.WithOutput(&out, &errOut))
			err := tc.call(r, t.Context())
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v (stderr %q)", err, errOut.String())
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			args, _ := os.ReadFile(argsFile)
			if string(args) != tc.wantArgs {
				t.Errorf("script called with %q, want %q", args, tc.wantArgs)
			}
			if out.String() != tc.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
}

func TestRunnerMissingScript(t *testing.T) {
	r := devcloud.New(devcloud.WithScript(filepath.Join(t.TempDir(), "absent.sh")))
	if err := r.Run(t.Context(), "status"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error = %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestRunnerCancellation(t *testing.T) {
	// The script traps TERM and exits on it: cancellation must reach it promptly.
	script, _ := fakeScript(t, "trap 'echo got TERM; exit 143' TERM\nwhile :; do sleep 0.05; done")
	var out bytes.Buffer
	r := devcloud.New(devcloud.WithScript(script), devcloud.WithOutput(&out, &out), devcloud.WithStopGrace(5*time.Second))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := r.Run(ctx, "start")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Run returned %v after cancellation; the script should have ended on SIGTERM", d)
	}
	if !strings.Contains(out.String(), "got TERM") {
		t.Errorf("script output %q: it never saw SIGTERM", out.String())
	}
}
