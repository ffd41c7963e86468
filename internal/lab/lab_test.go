package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
)

const (
	knownSecret = "S3cret-Pa55word-never-printed"
	knownToken  = "gAAAAA-token-value-never-printed"
)

// fakeKeystone counts every request it sees. ok=false answers like a
// Keystone that rejects the credentials and echoes the request (some
// proxies do), so the password travels in the error body.
func fakeKeystone(t *testing.T, ok bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":{"message":"bad credentials in %s"}}`, body)
			return
		}
		w.Header().Set("X-Subject-Token", knownToken)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"token":{"expires_at":"2099-01-01T00:00:00.000000Z","user":{"id":"u1","name":"alice"},"project":{"id":"p1","name":"lab"},
			"catalog":[{"type":"identity","name":"keystone","endpoints":[{"interface":"public","region":"RegionOne","region_id":"RegionOne","url":"%s/v3"}]}]}}`, srv.URL)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// labDir writes clouds.yaml (cloud "lab" at authURL, password knownSecret)
// and optional files into a temporary directory.
func labDir(t *testing.T, authURL string, files map[string]string) (dir, cloudsFile string) {
	t.Helper()
	dir = t.TempDir()
	cloudsFile = filepath.Join(dir, "clouds.yaml")
	files["clouds.yaml"] = fmt.Sprintf(`clouds:
  lab:
    auth:
      auth_url: %s/v3
      username: alice
      password: %s
      project_name: lab
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
`, authURL, knownSecret)
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, cloudsFile
}

func targetNames() []string {
	var names []string
	for name := range Targets() {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// TestBadInputMakesNoCalls runs every target with each class of bad input
// and proves: exit code 2, one line per problem, zero requests to the cloud.
// (No target can reach a cluster before settings load either: New returns
// before any target body runs.)
func TestBadInputMakesNoCalls(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		env   []string
		lines int
	}{
		{name: "cluster name", env: []string{"CLUSTER=alpha_1"}, lines: 1},
		{name: "cluster name too long", env: []string{"CLUSTER=" + strings.Repeat("c", 41)}, lines: 1},
		{name: "overlapping CIDRs", env: []string{"POD_CIDR=10.8.0.0/16"}, lines: 1},
		{name: "malformed CIDR", env: []string{"SERVICE_CIDR=10.96.0.0"}, lines: 1},
		{name: "version", env: []string{"KUBERNETES_VERSION=latest"}, lines: 1},
		{name: "count", env: []string{"CONTROLLER_COUNT=4"}, lines: 1},
		{name: "unknown key", files: map[string]string{"lab.yaml": "worker_cnt: 3\n"}, lines: 1},
		{name: "several", files: map[string]string{"lab.yaml": "prefix: Lab\n"}, env: []string{"WORKER_COUNT=-3", "DRY_RUN=maybe"}, lines: 3},
	}
	srv, calls := fakeKeystone(t, true)
	for _, name := range targetNames() {
		for _, tc := range cases {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				files := map[string]string{}
				for k, v := range tc.files {
					files[k] = v
				}
				dir, cloudsFile := labDir(t, srv.URL, files)
				before := calls.Load()
				var stdout, stderr bytes.Buffer
				env := append([]string{"OS_CLOUD=lab", "OS_CLIENT_CONFIG_FILE=" + cloudsFile, "KUBECONFIG=" + filepath.Join(dir, "no-kubeconfig")}, tc.env...)
				err := Main(context.Background(), Options{Dir: dir, Environ: env, Stdout: &stdout, Stderr: &stderr}, Targets()[name])
				var exit interface{ ExitStatus() int }
				if !errors.As(err, &exit) || exit.ExitStatus() != ExitBadInput {
					t.Fatalf("want exit code %d, got %v", ExitBadInput, err)
				}
				lines := strings.Split(err.Error(), "\n")
				if len(lines) != tc.lines+1 { // header + one line per problem
					t.Fatalf("want %d problem line(s), got:\n%s", tc.lines, err)
				}
				if calls.Load() != before {
					t.Fatalf("%d cloud request(s) made despite bad input", calls.Load()-before)
				}
				if stdout.Len() != 0 {
					t.Fatalf("target printed output despite bad input: %q", stdout.String())
				}
			})
		}
	}
}

// TestNotImplementedTargetsFailLoudly: every target whose work has not
// landed (Pending; NotImplemented is built only from that list) must exit
// with code 1 saying so — never succeed, never call the cloud, print nothing
// on stdout. Delete this test with the last pending target.
func TestNotImplementedTargetsFailLoudly(t *testing.T) {
	srv, calls := fakeKeystone(t, true)
	pending := Pending()
	all := Targets()
	for _, name := range pending {
		t.Run(name, func(t *testing.T) {
			target, ok := all[name]
			if !ok {
				t.Fatalf("pending target %s is not in Targets()", name)
			}
			dir, cloudsFile := labDir(t, srv.URL, map[string]string{})
			before := calls.Load()
			var stdout, stderr bytes.Buffer
			code := Execute(context.Background(), Options{Dir: dir, Environ: []string{"OS_CLOUD=lab", "OS_CLIENT_CONFIG_FILE=" + cloudsFile}, Stdout: &stdout, Stderr: &stderr}, name, target)
			if code != ExitFailure {
				t.Errorf("exit code %d, want %d", code, ExitFailure)
			}
			if want := "Error: " + name + ": not implemented yet\n"; stderr.String() != want {
				t.Errorf("stderr %q, want %q", stderr.String(), want)
			}
			if stdout.Len() != 0 {
				t.Errorf("printed %q on stdout", stdout.String())
			}
			if calls.Load() != before {
				t.Errorf("not implemented, yet it called the cloud %d time(s)", calls.Load()-before)
			}
		})
	}
}

// TestSecretNeverPrinted pushes a known secret through every path that
// prints: the config dump, an error from the cloud that echoes the password,
// and HTTP debug logging of a successful session, in text and JSON.
func TestSecretNeverPrinted(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		for _, tc := range []struct {
			name    string
			target  string
			ok      bool
			wantErr bool
		}{
			{name: "config dump", target: "config:show", ok: true},
			{name: "auth error echoing the password", target: "config:check", ok: false, wantErr: true},
			{name: "debug HTTP log of a session", target: "config:check", ok: true},
		} {
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				srv, calls := fakeKeystone(t, tc.ok)
				dir, cloudsFile := labDir(t, srv.URL, map[string]string{"lab.yaml": "cloud: lab\n"})
				var stdout, stderr bytes.Buffer
				env := []string{"OS_CLIENT_CONFIG_FILE=" + cloudsFile, "LOG_LEVEL=debug", "LOG_FORMAT=" + format}
				err := Main(context.Background(), Options{Dir: dir, Environ: env, Stdout: &stdout, Stderr: &stderr}, Targets()[tc.target])
				if (err != nil) != tc.wantErr {
					t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
				}
				errText := ""
				if err != nil {
					errText = err.Error()
					if !strings.Contains(errText, "cloud lab") {
						t.Errorf("error does not name the cloud: %s", errText)
					}
				}
				if tc.target == "config:check" && calls.Load() == 0 {
					t.Fatal("the cloud was never called: the test proves nothing")
				}
				all := stdout.String() + stderr.String() + errText
				for _, secret := range []string{knownSecret, knownToken} {
					if strings.Contains(all, secret) {
						t.Fatalf("secret %q printed:\n%s", secret, all)
					}
				}
				if tc.name == "debug HTTP log of a session" && !strings.Contains(stderr.String(), "auth/tokens") {
					t.Fatalf("debug log lacks the HTTP exchange, so the test proves nothing:\n%s", stderr.String())
				}
				if tc.name == "config dump" && !strings.Contains(stdout.String(), "password") {
					t.Fatalf("config dump lacks the password line (redacted):\n%s", stdout.String())
				}
			})
		}
	}
}
