package lab

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/logging"
)

// TestConfigCheckLogsInAfresh: with a valid token in the lab's cache,
// config:check still authenticates (a cached token cannot tell whether the
// credential still works).
func TestConfigCheckLogsInAfresh(t *testing.T) {
	srv, calls := fakeKeystone(t, true)
	dir, cloudsFile := labDir(t, srv.URL, map[string]string{})
	// A run that caches the token, as every target does.
	if _, err := cloud.Connect(context.Background(), cloud.Options{Cloud: "lab", CloudsFile: cloudsFile, Secrets: logging.NewSecrets(),
		TokenCache: filepath.Join(dir, "state", "tokens")}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		before := calls.Load()
		var stdout bytes.Buffer
		err := Main(context.Background(), Options{Dir: dir, Environ: []string{"OS_CLOUD=lab", "OS_CLIENT_CONFIG_FILE=" + cloudsFile}, Stdout: &stdout}, Targets()["config:check"])
		if err != nil {
			t.Fatal(err)
		}
		if calls.Load() == before {
			t.Fatalf("run %d: config:check said %q without a single request to Keystone", i+1, stdout.String())
		}
	}
}

// TestNoCloudIsBadInput: no cloud selected, or a clouds.yaml without the
// entry, is bad input (exit 2, one line, no call) for every target that
// needs the cloud.
func TestNoCloudIsBadInput(t *testing.T) {
	srv, calls := fakeKeystone(t, true)
	dir, cloudsFile := labDir(t, srv.URL, map[string]string{})
	for _, tc := range []struct {
		name, want string
		env        []string
	}{
		{"no cloud", "no cloud selected", []string{"OS_CLIENT_CONFIG_FILE=" + cloudsFile}},
		{"no such entry", "cloud nosuch", []string{"OS_CLOUD=nosuch", "OS_CLIENT_CONFIG_FILE=" + cloudsFile}},
	} {
		for _, target := range []string{"config:check", "clean:check", "appcred:list", "image:register", "clean:full", "appcred:create", "appcred:delete"} {
			before := calls.Load()
			var stderr bytes.Buffer
			code := Execute(context.Background(), Options{Dir: dir, Environ: tc.env, Stderr: &stderr}, target, Targets()[target])
			if code != ExitBadInput || !strings.Contains(stderr.String(), tc.want) || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
				t.Errorf("%s %s: exit %d, stderr %q; want exit %d and one line with %q", tc.name, target, code, stderr.String(), ExitBadInput, tc.want)
			}
			if calls.Load() != before {
				t.Errorf("%s %s: called the cloud", tc.name, target)
			}
		}
	}
}
