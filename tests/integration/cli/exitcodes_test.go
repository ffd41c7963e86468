//go:build integration

package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/capilab/capilab/tests/devcloudtest"
)

// ciExample reads README's CI example (between <!-- ci-example:begin -->
// and <!-- ci-example:end -->): its command lines, comments dropped.
func ciExample(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- ci-example:begin -->\\s*```sh\\n(.*?)```\\s*<!-- ci-example:end -->").FindSubmatch(data)
	if m == nil {
		t.Fatal("README.md has no ci-example block")
	}
	var lines []string
	for _, line := range strings.Split(string(m[1]), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// TestExitCodesAsDocumented runs README's CI example exactly as written
// and the three documented ways to run a target, for each outcome: the
// target's own code 0/1/2/3 through bin/mage; make's 0 or 2 with the
// target's code in its "Error N" line; go run's 0 or 1 with "exit status N".
//
// Each leakcheck lists every resource type of the project (the slowest
// command here on a loaded devcloud), so a command line runs once: the CI
// example's last line is the table's bin/mage clean:check, and the table's
// other outcomes come from config:check, which makes one Keystone request.
func TestExitCodesAsDocumented(t *testing.T) {
	t.Parallel()
	leaky := newLab(t, "exit")
	t.Cleanup(func() { revokeLab(t, leaky.prefix) })
	if r := leaky.run("bin/mage appcred:create CLUSTER=leaky"); r.code != 0 {
		t.Fatalf("setup: %s", r)
	}
	clean := newLab(t, "exit")
	rejected := "OS_CLIENT_CONFIG_FILE=" + rejectedCloud(t)

	// README's CI example, line by line as a CI job runs it; the last line's code counts.
	example := ciExample(t)
	if len(example) != 2 || example[0] != "make bin/mage" || example[1] != "bin/mage clean:check" {
		t.Fatalf("README's CI example is %q; this test expects `make bin/mage` then `bin/mage clean:check`", example)
	}
	for _, tc := range []struct {
		name string
		l    *lab
		env  []string
		want int
	}{
		{"no leaks", clean, nil, 0},
		{"a leak: the credential of cluster leaky", leaky, nil, 3},
		{"bad settings", clean, []string{"CLUSTERS=Bad_1"}, 2},
		{"the check fails: Keystone rejects the login", clean, []string{rejected}, 1},
	} {
		t.Run("ci example/"+tc.name, func(t *testing.T) {
			tc.l.t = t
			var last result
			for i, line := range example {
				last = tc.l.run(line, tc.env...)
				if i < len(example)-1 && last.code != 0 {
					t.Fatalf("%s failed before the last line:\n%s", line, last)
				}
			}
			if last.code != tc.want {
				t.Errorf("%s: exit %d, README says %d", example[len(example)-1], last.code, tc.want)
			}
		})
	}

	// The documented table, one row per command, for each target outcome.
	for _, tc := range []struct {
		name   string
		l      *lab
		target string // Mage target
		make   string // its make name
		env    []string
		code   int  // the target's own
		ran    bool // bin/mage <target> ran as the CI example's last line
	}{
		{"success", clean, "config:check", "config-check", nil, 0, false},
		{"target failed: Keystone rejects the login", clean, "config:check", "config-check", []string{rejected}, 1, false},
		{"bad settings", clean, "config:check", "config-check", []string{"CLUSTERS=Bad_1"}, 2, false},
		{"owned resources remain", leaky, "clean:check", "leakcheck", nil, 3, true},
	} {
		t.Run("table/"+tc.name, func(t *testing.T) {
			tc.l.t = t
			if !tc.ran {
				if r := tc.l.run("bin/mage "+tc.target, tc.env...); r.code != tc.code {
					t.Errorf("bin/mage %s: exit %d, want the target's own %d", tc.target, r.code, tc.code)
				}
			}
			r := tc.l.run("make "+tc.make, tc.env...)
			wantMake, wantGo := 0, 0
			if tc.code != 0 {
				wantMake, wantGo = 2, 1
				if !strings.Contains(r.stderr, "] Error "+itoa(tc.code)) {
					t.Errorf("make %s: its Error line does not show the target's code %d:\n%s", tc.make, tc.code, r.stderr)
				}
			}
			if r.code != wantMake {
				t.Errorf("make %s: exit %d, README says %d", tc.make, r.code, wantMake)
			}
			r = tc.l.run("go run mage.go "+tc.target, tc.env...)
			if r.code != wantGo {
				t.Errorf("go run mage.go %s: exit %d, README says %d", tc.target, r.code, wantGo)
			}
			if tc.code != 0 && !strings.Contains(r.stderr, "exit status "+itoa(tc.code)) {
				t.Errorf("go run mage.go %s: it does not print exit status %d:\n%s", tc.target, tc.code, r.stderr)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// rejectedCloud writes a clouds.yaml whose devcloud-member is devcloud's
// Keystone with a wrong password: the check fails (Keystone answers 401).
func rejectedCloud(t *testing.T) string {
	t.Helper()
	auth, _ := devcloudtest.Member().Entry(t)["auth"].(map[string]any)
	p := filepath.Join(t.TempDir(), "clouds.yaml")
	err := os.WriteFile(p, []byte(fmt.Sprintf(`clouds:
  devcloud-member:
    auth:
      auth_url: %v
      username: %v
      password: not-the-password
      project_name: %v
      user_domain_name: %v
      project_domain_name: %v
`, auth["auth_url"], auth["username"], auth["project_name"], auth["user_domain_name"], auth["project_domain_name"])), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestJSONLogsEndInJSON: with LOG_FORMAT=json the error bin/mage ends with
// is a JSON record (with the exit code), like every log line before it.
func TestJSONLogsEndInJSON(t *testing.T) {
	t.Parallel()
	l := newLab(t, "json")
	r := l.run("bin/mage clean:check LOG_FORMAT=json CLUSTERS=Bad_1")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	var last struct {
		Level    string `json:"level"`
		Msg      string `json:"msg"`
		ExitCode int    `json:"exit_code"`
	}
	if r.code != 2 || json.Unmarshal([]byte(lines[len(lines)-1]), &last) != nil || last.Level != "ERROR" || last.ExitCode != 2 || !strings.Contains(last.Msg, "Bad_1") {
		t.Errorf("want exit 2 and a JSON error record as the last line:\n%s", r)
	}
}
