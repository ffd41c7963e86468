package devcloudtest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/testing/faultproxy"
	"github.com/capilab/capilab/tests/devcloudtest"
)

func TestName(t *testing.T) {
	a, b := devcloudtest.Name(t, "Net work"), devcloudtest.Name(t, "Net work")
	if a == b {
		t.Fatalf("two names are equal: %s", a)
	}
	for _, n := range []string{a, b} {
		if !strings.HasPrefix(n, devcloudtest.NamePrefix+"net-work-testname-") || len(n) > 80 {
			t.Errorf("name %q: want prefix %q, kind and test name, at most 80 characters", n, devcloudtest.NamePrefix+"net-work-testname-")
		}
	}
}

func TestPoll(t *testing.T) {
	tests := []struct {
		name    string
		cond    func(n int) (bool, error)
		wantErr error
	}{
		{"done on third call", func(n int) (bool, error) { return n >= 3, nil }, nil},
		{"error stops at once", func(int) (bool, error) { return false, os.ErrPermission }, os.ErrPermission},
		{"never done times out", func(int) (bool, error) { return false, nil }, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			err := devcloudtest.Poll(t.Context(), 200*time.Millisecond, 10*time.Millisecond, "thing", func(context.Context) (bool, error) {
				n++
				return tc.cond(n)
			})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Poll = %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "waiting for thing") {
				t.Errorf("error %q does not say what it waited for", err)
			}
		})
	}
}

func TestWithFaultsWritesProxiedCloud(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clouds.yaml")
	src := "clouds:\n  devcloud-member:\n    region_name: RegionOne\n    auth:\n      auth_url: http://127.0.0.1:5000/v3\n      username: m\n      password: p\n      project_name: m\n      user_domain_name: Default\n      project_domain_name: Default\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	base := devcloudtest.Cloud{Name: "devcloud-member", CloudsYAML: path}
	fc, p := devcloudtest.WithFaults(t, base, faultproxy.Config{Seed: 1})
	if fc.Name != "devcloud-member-faulty" || fc.CloudsYAML == path {
		t.Fatalf("faulty cloud = %+v", fc)
	}
	ao, _ := fc.AuthOptions(t)
	if ao.IdentityEndpoint != p.AuthURL() || ao.Username != "m" {
		t.Errorf("auth options = %+v, want endpoint %s and the base's user", ao, p.AuthURL())
	}
	if got := fc.Env(); got[0] != "OS_CLOUD=devcloud-member-faulty" || got[1] != "OS_CLIENT_CONFIG_FILE="+fc.CloudsYAML {
		t.Errorf("Env() = %v", got)
	}
}
