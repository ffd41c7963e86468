package cli

import (
	"io"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/lab"
)

func magefileTargets(t *testing.T) []Target {
	t.Helper()
	targets, err := Targets("../../" + MagefilesDir)
	if err != nil {
		t.Fatal(err)
	}
	return targets
}

// TestTargetsAreWhatMageRuns: the bootstrap's list is read from magefiles/
// with Mage's parser; it holds every lab target and the devcloud ones, and
// nothing else.
func TestTargetsAreWhatMageRuns(t *testing.T) {
	var got []string
	for _, tg := range magefileTargets(t) {
		got = append(got, tg.Name)
		if tg.Args != 0 {
			t.Errorf("%s takes %d positional argument(s); capilab's targets take settings only", tg.Name, tg.Args)
		}
	}
	var want []string
	for name := range lab.Targets() {
		want = append(want, name)
	}
	want = append(want, "devcloud:up", "devcloud:down", "devcloud:status", "devcloud:env", "devcloud:reset")
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("targets read from magefiles/:\n %v\nwant (lab.Targets and devcloud):\n %v", got, want)
	}
}

func TestParse(t *testing.T) {
	targets := magefileTargets(t)
	cases := []struct {
		name     string
		args     []string
		makeVars []string
		want     Parsed // Problems: substrings, one per line
	}{
		{name: "settings after the target, as docs show them",
			args: []string{"appcred:delete", "CLUSTER=demo1", "DRY_RUN=1"},
			want: Parsed{Targets: []string{"appcred:delete"}, Assignments: []Assignment{{"CLUSTER", "demo1"}, {"DRY_RUN", "1"}}}},
		{name: "case-insensitive like mage", args: []string{"Clean:Full", "DRY_RUN=1"},
			want: Parsed{Targets: []string{"clean:full"}, Assignments: []Assignment{{"DRY_RUN", "1"}}}},
		{name: "several targets, options anywhere", args: []string{"-v", "image:register", "appcred:create", "-t", "5m", "OS_CLOUD=devcloud-member"},
			want: Parsed{Targets: []string{"image:register", "appcred:create"}, RunFlags: []string{"-v", "-t", "5m"}, Assignments: []Assignment{{"OS_CLOUD", "devcloud-member"}}}},
		{name: "values may hold = and spaces", args: []string{"config:show", "IMAGE_EXTRA_PROPERTIES=a=b, c=d"},
			want: Parsed{Targets: []string{"config:show"}, Assignments: []Assignment{{"IMAGE_EXTRA_PROPERTIES", "a=b, c=d"}}}},
		{name: "list", args: []string{"-l"}, want: Parsed{Command: List, MageFlags: []string{"-l"}}},
		{name: "help of a target", args: []string{"-h", "clean:full"}, want: Parsed{Command: Help, MageFlags: []string{"-h"}, Targets: []string{"clean:full"}}},
		{name: "compile", args: []string{"-compile", "/tmp/x"}, want: Parsed{Command: Compile, MageFlags: []string{"-compile", "/tmp/x"}}},
		{name: "an assignment that is not a setting", args: []string{"clean:full", "DRYRUN=1"},
			want: Parsed{Targets: []string{"clean:full"}, Problems: []string{"DRYRUN=1: DRYRUN is not a capilab setting (did you mean DRY_RUN?)"}}},
		{name: "unknown target", args: []string{"appcred:delete", "CLUSTER-demo1"},
			want: Parsed{Targets: []string{"appcred:delete"}, Problems: []string{`unknown target "CLUSTER-demo1"`}}},
		{name: "one line per bad argument", args: []string{"clean:ful", "bogus", "ENVIRONMENT=gx", "-x"},
			want: Parsed{Problems: []string{`unknown target "clean:ful" (did you mean clean:full?)`, `unknown target "bogus"`, "ENVIRONMENT is SCS's environment selector", "unknown option -x"}}},
		{name: "refused option eats its value", args: []string{"-d", "magefiles", "config:show"},
			want: Parsed{Targets: []string{"config:show"}, Problems: []string{"option -d is not supported"}}},
		{name: "make variables are checked by name", args: []string{"clean:full"}, makeVars: []string{"DRY_RUN", "CLUSTERS", "DRYRUN"},
			want: Parsed{Targets: []string{"clean:full"}, Problems: []string{"make variable DRYRUN is not a capilab setting"}}},
		{name: "two commands", args: []string{"-l", "-version"}, want: Parsed{Command: List, MageFlags: []string{"-l", "-version"}, Problems: []string{"cannot be used together"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Parse(tc.args, targets, config.EnvName, tc.makeVars)
			problems := got.Problems
			got.Problems, tc.want.Problems = nil, append([]string(nil), tc.want.Problems...)
			wantProblems := tc.want.Problems
			tc.want.Problems = nil
			if !equalParsed(got, tc.want) {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tc.args, got, tc.want)
			}
			if len(problems) != len(wantProblems) {
				t.Fatalf("problems:\n%s\nwant %d line(s): %q", strings.Join(problems, "\n"), len(wantProblems), wantProblems)
			}
			for i, p := range problems {
				if !strings.Contains(p, wantProblems[i]) || !strings.HasPrefix(p, "capilab: ") || strings.Contains(p, "\n") {
					t.Errorf("problem %d: %q, want one line containing %q", i, p, wantProblems[i])
				}
			}
		})
	}
}

func equalParsed(a, b Parsed) bool {
	return a.Command == b.Command && slices.Equal(a.Targets, b.Targets) && slices.Equal(a.RunFlags, b.RunFlags) &&
		slices.Equal(a.MageFlags, b.MageFlags) && slices.Equal(a.Assignments, b.Assignments)
}

func TestWithAssignments(t *testing.T) {
	env := []string{"PATH=/bin", "CLUSTER=old", "HOME=/root"}
	got := withAssignments(env, []Assignment{{"CLUSTER", "a"}, {"DRY_RUN", "1"}, {"CLUSTER", "b"}})
	want := []string{"PATH=/bin", "HOME=/root", "CLUSTER=b", "DRY_RUN=1"}
	if !slices.Equal(got, want) {
		t.Errorf("withAssignments = %q, want %q", got, want)
	}
	if getenv(got, "CLUSTER") != "b" || getenv(got, "NOPE") != "" {
		t.Errorf("getenv: %q", getenv(got, "CLUSTER"))
	}
}

// TestCompileLockIsPerCheckout: runs of one checkout share the compile lock
// (Mage writes its generated main file into that checkout's magefiles/);
// a run of another checkout never waits for it.
func TestCompileLockIsPerCheckout(t *testing.T) {
	cache := t.TempDir()
	a, b := compileLockPath(cache, "/work/a"), compileLockPath(cache, "/work/b")
	if a != compileLockPath(cache, "/work/a") {
		t.Errorf("one checkout, two locks: %s, %s", a, compileLockPath(cache, "/work/a"))
	}
	if a == b {
		t.Errorf("checkouts /work/a and /work/b share the compile lock %s", a)
	}
	unlockA, err := lockFile(a, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer unlockA()
	unlockB, err := lockFile(b, time.Second, io.Discard)
	if err != nil {
		t.Fatalf("another checkout's compile lock while /work/a compiles: %v", err)
	}
	unlockB()
	if _, err := lockFile(a, 300*time.Millisecond, io.Discard); err == nil {
		t.Error("a second run of /work/a took its compile lock while the first held it")
	}
}
