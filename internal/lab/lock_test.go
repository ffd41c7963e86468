package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capilab/capilab/internal/state"
)

// TestMutatingTargetsTakeTheLabLock: while one run holds the lab's lock,
// every target that changes the lab exits with ExitBusy naming the holder
// (pid, target, since), before its body runs: zero cloud calls, nothing on
// stdout.
func TestMutatingTargetsTakeTheLabLock(t *testing.T) {
	srv, calls := fakeKeystone(t, true)
	dir, cloudsFile := labDir(t, srv.URL, map[string]string{})
	held, err := state.Dir(filepath.Join(dir, "state")).Lock("clean:full")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	mutating := []string{"clean:full", "image:register", "appcred:create", "appcred:delete", "mgmt:create", "mgmt:delete", "cluster:create", "cluster:delete", "clean:all"}
	for _, name := range mutating {
		t.Run(name, func(t *testing.T) {
			before := calls.Load()
			var stdout, stderr bytes.Buffer
			code := Execute(context.Background(), Options{Dir: dir, Environ: []string{"OS_CLOUD=lab", "OS_CLIENT_CONFIG_FILE=" + cloudsFile}, Stdout: &stdout, Stderr: &stderr}, name, Targets()[name])
			if code != ExitBusy {
				t.Fatalf("exit code %d, want %d (busy); stderr: %s", code, ExitBusy, stderr.String())
			}
			for _, want := range []string{"the lab is busy", "clean:full", fmt.Sprintf("pid %d", os.Getpid()), "since ", "nothing was done"} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q: %s", want, stderr.String())
				}
			}
			if n := strings.Count(strings.TrimSpace(stderr.String()), "\n"); n != 0 {
				t.Errorf("want one line, got %d:\n%s", n+1, stderr.String())
			}
			if calls.Load() != before || stdout.Len() != 0 {
				t.Errorf("busy, yet %d cloud call(s) and stdout %q", calls.Load()-before, stdout.String())
			}
		})
	}
	// Read-only targets do not wait for or take the lock.
	var stdout bytes.Buffer
	if code := Execute(context.Background(), Options{Dir: dir, Environ: []string{"OS_CLOUD=lab", "OS_CLIENT_CONFIG_FILE=" + cloudsFile}, Stdout: &stdout}, "config:show", Targets()["config:show"]); code != 0 {
		t.Errorf("config:show while the lab is locked: exit %d", code)
	}
}

// TestDryRunIsHonouredOrRefused: DRY_RUN=1 on a target without a dry run
// is bad input (exit 2, nothing done) instead of a real change; the
// targets with one take no lock for it.
func TestDryRunIsHonouredOrRefused(t *testing.T) {
	srv, calls := fakeKeystone(t, true)
	for _, name := range []string{"image:register", "appcred:create", "mgmt:create", "cluster:create", "cluster:delete"} {
		dir, cloudsFile := labDir(t, srv.URL, map[string]string{})
		before := calls.Load()
		err := Main(context.Background(), Options{Dir: dir, Environ: []string{"OS_CLOUD=lab", "OS_CLIENT_CONFIG_FILE=" + cloudsFile, "DRY_RUN=1"}}, Targets()[name])
		if ExitCode(err) != ExitBadInput || !strings.Contains(fmt.Sprint(err), "has no dry run") {
			t.Errorf("%s DRY_RUN=1: %v (exit %d), want exit %d saying it has no dry run", name, err, ExitCode(err), ExitBadInput)
		}
		if calls.Load() != before {
			t.Errorf("%s DRY_RUN=1 called the cloud", name)
		}
		if _, err := os.Stat(filepath.Join(dir, "state", state.LockFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s DRY_RUN=1 took the lab's lock", name)
		}
	}
}

// TestExecuteWritesTheErrorOnceInTheLogFormat: with LOG_FORMAT=json the
// last line is a JSON record carrying the exit code; in text it is one
// "Error:" line.
func TestExecuteWritesTheErrorOnceInTheLogFormat(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var stderr bytes.Buffer
		code := Execute(context.Background(), Options{Dir: t.TempDir(), Environ: []string{"LOG_FORMAT=" + format, "CLUSTER=Bad_1"}, Stderr: &stderr}, "config:show", Targets()["config:show"])
		if code != ExitBadInput {
			t.Fatalf("%s: exit %d, want %d", format, code, ExitBadInput)
		}
		out := stderr.String()
		if format == "text" {
			if !strings.HasPrefix(out, "Error: invalid settings") || strings.Count(out, "Error:") != 1 {
				t.Errorf("text: %q", out)
			}
			continue
		}
		var rec struct {
			Level    string `json:"level"`
			Msg      string `json:"msg"`
			Target   string `json:"target"`
			ExitCode int    `json:"exit_code"`
		}
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &rec); err != nil {
			t.Fatalf("json: the error line is not one JSON record: %v\n%s", err, out)
		}
		if rec.Level != "ERROR" || rec.ExitCode != ExitBadInput || rec.Target != "config:show" || !strings.Contains(rec.Msg, "Bad_1") {
			t.Errorf("json: %+v", rec)
		}
	}
}
