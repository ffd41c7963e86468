package lab

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// An addon version capilab knows no source for is bad input for every
// target that creates a workload cluster: exit 2, one line per setting, no
// cloud or cluster call, nothing printed.
func TestUnknownAddonVersionIsBadInput(t *testing.T) {
	srv, calls := fakeKeystone(t, true)
	for name, target := range map[string]Target{"ClusterCreate": ClusterCreate, "mgmt:create": Targets()["mgmt:create"]} {
		t.Run(name, func(t *testing.T) {
			dir, cloudsFile := labDir(t, srv.URL, map[string]string{})
			var stdout, stderr bytes.Buffer
			env := []string{"OS_CLOUD=lab", "OS_CLIENT_CONFIG_FILE=" + cloudsFile, "KUBECONFIG=" + filepath.Join(dir, "no-kubeconfig"),
				"DEPLOY_METRICS=v0.0.1", "CNI_VERSION=v0.0.2"}
			before := calls.Load()
			err := Main(context.Background(), Options{Dir: dir, Environ: env, Stdout: &stdout, Stderr: &stderr}, target)
			var exit interface{ ExitStatus() int }
			if !errors.As(err, &exit) || exit.ExitStatus() != ExitBadInput {
				t.Fatalf("want exit code %d, got %v", ExitBadInput, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "deploy_metrics: metrics-server v0.0.1 is not a version capilab knows") ||
				!strings.HasPrefix(lines[1], "cni_version: cilium v0.0.2 is not") {
				t.Fatalf("want one line per setting, got:\n%s", err)
			}
			if calls.Load() != before || stdout.Len() != 0 {
				t.Fatalf("%d cloud request(s), stdout %q", calls.Load()-before, stdout.String())
			}
		})
	}
}
