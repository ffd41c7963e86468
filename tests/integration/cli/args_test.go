//go:build integration

package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"

	"github.com/capilab/capilab/internal/appcred"
	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/naming"
)

// creds lists the member's application credentials of the lab by name.
func creds(t *testing.T, prefix string) map[string]bool {
	t.Helper()
	k := keystone(t)
	pages, err := applicationcredentials.List(k.Client, k.UserID, nil).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all, err := applicationcredentials.ExtractApplicationCredentials(pages)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, ac := range all {
		if p, _, ok := naming.ParseAppCredDescription(ac.Description); ok && p == prefix {
			out[ac.Name] = true
		}
	}
	return out
}

func keystone(t *testing.T) appcred.Keystone {
	t.Helper()
	c, err := cloud.Connect(context.Background(), cloud.Options{Cloud: "devcloud-member", Secrets: logging.NewSecrets()})
	if err != nil {
		t.Fatalf("devcloud must be running (make devcloud-up): %v", err)
	}
	k, err := appcred.KeystoneOf(c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// revokeLab revokes every credential of the lab (test cleanup).
func revokeLab(t *testing.T, prefix string) {
	k := keystone(t)
	pages, err := applicationcredentials.List(k.Client, k.UserID, nil).AllPages(context.Background())
	if err != nil {
		t.Error(err)
		return
	}
	all, _ := applicationcredentials.ExtractApplicationCredentials(pages)
	for _, ac := range all {
		if p, _, ok := naming.ParseAppCredDescription(ac.Description); ok && p == prefix {
			if err := applicationcredentials.Delete(context.Background(), k.Client, k.UserID, ac.ID).ExtractErr(); err != nil && !cloud.IsNotFound(err) {
				t.Errorf("cleanup: %v", err)
			}
		}
	}
}

// TestStrayArgumentsRunNothing: the commands of README and docs, as
// written, do what they say; a command line with an argument that is not
// a setting capilab reads or a target runs nothing at all (exit 2, one
// line per argument) — through bin/mage, make and go run. The lab's
// credentials are compared with the cloud's after each group of command
// lines: one that revoked anything fails the group.
func TestStrayArgumentsRunNothing(t *testing.T) {
	t.Parallel()
	l := newLab(t, "args")
	t.Cleanup(func() { revokeLab(t, l.prefix) })
	lab, demo, test := l.prefix+"-appcred", l.prefix+"-demo1-appcred", l.prefix+"-testcluster-appcred"
	for _, c := range []string{"testcluster", "demo1"} {
		if r := l.run("bin/mage appcred:create CLUSTER=" + c); r.code != 0 {
			t.Fatalf("setup: %s", r)
		}
	}
	want := map[string]bool{lab: true, demo: true, test: true}
	same := func(steps ...string) {
		t.Helper()
		got := creds(t, l.prefix)
		for name := range want {
			if !got[name] {
				t.Fatalf("after %q: credential %s is gone (have %v)", steps, name, got)
			}
		}
	}
	same("setup")

	// Dry runs as docs/image-appcred.md writes them: nothing revoked.
	dryRuns := []string{
		"bin/mage appcred:delete CLUSTER=demo1 DRY_RUN=1",
		"make appcred-delete CLUSTER=demo1 DRY_RUN=1",
		"go run mage.go appcred:delete CLUSTER=demo1 DRY_RUN=1",
	}
	for _, line := range dryRuns {
		r := l.run(line)
		if r.code != 0 || !strings.Contains(r.stdout, "dry run: would revoke application credential "+demo) {
			t.Errorf("%s: want exit 0 and the dry-run line for %s:\n%s", line, demo, r)
		}
	}
	r := l.run("bin/mage clean:full DRY_RUN=1")
	if r.code != 0 || !strings.Contains(r.stdout, "fullclean dry run for lab "+l.prefix) {
		t.Errorf("clean:full DRY_RUN=1: want the plan and exit 0:\n%s", r)
	}
	same(append(dryRuns, "bin/mage clean:full DRY_RUN=1")...)

	// Stray arguments: nothing runs, one line each, exit 2.
	var stray []string
	for _, tc := range []struct {
		line  string
		lines int // problem lines on stderr
		want  string
	}{
		{"bin/mage appcred:delete CLUSTER-demo1", 1, `unknown target "CLUSTER-demo1"`},
		{"bin/mage clean:full DRYRUN=1", 1, "DRYRUN is not a capilab setting (did you mean DRY_RUN?)"},
		{"bin/mage appcred:delete CLUSTER=demo1 dry-run bogus", 2, `unknown target "dry-run"`},
		{"go run mage.go clean:full DRYRUN=1", 1, "DRYRUN is not a capilab setting"},
		{"bin/mage appcred:delete ENVIRONMENT=gx-scs", 1, "SCS's environment selector"},
	} {
		r := l.run(tc.line)
		wantCode := 2
		if strings.HasPrefix(tc.line, "go run") {
			wantCode = 1 // go run's own status for any failure
		}
		problems := strings.Count(r.stderr, "capilab: ")
		if r.code != wantCode || problems != tc.lines || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%s: want exit %d, %d line(s) with %q and nothing done:\n%s", tc.line, wantCode, tc.lines, tc.want, r)
		}
		stray = append(stray, tc.line)
	}
	for _, tc := range []struct{ line, want string }{
		{"make fullclean DRYRUN=1", "DRYRUN is not a capilab setting"},
		{"make appcred-delete CLUSTER=demo1 ENVIRONMENT=gx-scs", "SCS's environment selector"},
		{"make fullclean forceclean", "make forceclean: capilab has no force options"},
		{"make appcred-delete dry-run", "make dry-run: destructive targets take DRY_RUN=1"},
		{"make appcred-delete bogus", "make bogus: no such target"},
	} {
		r := l.run(tc.line)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stdout+r.stderr, "application credential "+demo+": revoked") {
			t.Errorf("%s: want exit 2 with %q and nothing done:\n%s", tc.line, tc.want, r)
		}
		stray = append(stray, tc.line)
	}
	same(stray...)

	// The real thing revokes exactly what it says.
	r = l.run("bin/mage appcred:delete CLUSTER=demo1")
	if r.code != 0 || !strings.Contains(r.stdout, demo+": revoked") {
		t.Fatalf("appcred:delete CLUSTER=demo1:\n%s", r)
	}
	got := creds(t, l.prefix)
	if got[demo] || !got[lab] || !got[test] {
		t.Errorf("after revoking demo1's: %v, want %s and %s only", got, lab, test)
	}
}
