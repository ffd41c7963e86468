package lab

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// The remote management node's bad input stops before any cloud call, with
// exit code 2 and one line per problem, like every other setting.
func TestRemoteBadInput(t *testing.T) {
	srv, calls := fakeKeystone(t, true)
	for _, tc := range []struct {
		target string
		env    []string
		want   []string
	}{
		{"mgmt:create", []string{"MGMT_MODE=remote", "RESTRICT_MGMT_SERVER=192.0.2.1"}, []string{`restrict_mgmt_server: "192.0.2.1" is not a CIDR`}},
		{"mgmt:create", []string{"MGMT_MODE=remote", "RESTRICT_MGMT_SERVER=10.1.2.3/8,office"}, []string{`"10.1.2.3/8" has host bits set`, `"office" is not a CIDR`}},
		{"mgmt:create", []string{"MGMT_MODE=cloud"}, []string{`mgmt_mode: "cloud" is not one of local, remote`}},
		{"clean:all", []string{"MGMT_MODE=remote", "REMOTE_TIMEOUT=0"}, []string{"remote_timeout: must be longer than 0"}},
		{"mgmt:ssh", nil, []string{"make ssh logs in to the remote management node, and mgmt_mode is local"}},
	} {
		t.Run(tc.target+"/"+strings.Join(tc.env, ","), func(t *testing.T) {
			dir, cloudsFile := labDir(t, srv.URL, map[string]string{})
			before := calls.Load()
			var stdout bytes.Buffer
			env := append([]string{"OS_CLOUD=lab", "OS_CLIENT_CONFIG_FILE=" + cloudsFile}, tc.env...)
			err := Main(context.Background(), Options{Dir: dir, Environ: env, Stdout: &stdout}, Targets()[tc.target])
			var exit interface{ ExitStatus() int }
			if !errors.As(err, &exit) || exit.ExitStatus() != ExitBadInput {
				t.Fatalf("want exit code %d, got %v", ExitBadInput, err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			if n := len(strings.Split(err.Error(), "\n")); len(tc.want) > 1 && n != len(tc.want)+1 {
				t.Errorf("want %d problem lines, got %d:\n%v", len(tc.want), n-1, err)
			}
			if calls.Load() != before {
				t.Fatalf("%d cloud request(s) despite bad input", calls.Load()-before)
			}
		})
	}
}

func TestByMgmtMode(t *testing.T) {
	var ran []string
	target := ByMgmtMode(
		func(context.Context, *Run) error { ran = append(ran, "local"); return nil },
		func(context.Context, *Run) error { ran = append(ran, "remote"); return nil })
	for _, mode := range []string{"", "local", "remote"} {
		dir := t.TempDir()
		env := []string{}
		if mode != "" {
			env = append(env, "MGMT_MODE="+mode)
		}
		if err := Main(context.Background(), Options{Dir: dir, Environ: env}, target); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(ran, ",") != "local,local,remote" {
		t.Fatalf("ran %v, want local (default), local, remote", ran)
	}
}
