//go:build integration

// Package cli_test runs capilab the way README tells users and CI to run
// it — `make <target>`, `bin/mage <target>`, `go run mage.go <target>`, as
// processes from the repository root — against devcloud (devcloud-member),
// and proves what the command line promises: stray arguments run nothing,
// exit codes reach the caller as documented, a signal to the process a
// caller started stops the work, and a second run of the same lab says who
// holds its lock.
package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capilab/capilab/tests/devcloudtest"
)

// root is the repository root: every documented command runs there.
var root, _ = filepath.Abs(filepath.Join("..", "..", ".."))

func TestMain(m *testing.M) {
	// Debian's tools first (make, the openstack CLI), Go where it was found.
	goBin, err := exec.LookPath("go")
	if err == nil {
		os.Setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin:"+filepath.Dir(goBin))
	}
	// bin/mage as README says: built by make.
	cmd := exec.Command("make", "bin/mage")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "make bin/mage: %v\n%s", err, out)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func uniquePrefix(tag string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return tag + hex.EncodeToString(b)
}

// lab is one test lab: its prefix, state and artifacts in a temporary
// directory, and the cloud the commands use.
type lab struct {
	t        *testing.T
	prefix   string
	dir      string
	cloud    devcloudtest.Cloud
	extraEnv []string
}

func newLab(t *testing.T, tag string) *lab {
	l := &lab{t: t, prefix: uniquePrefix(tag), dir: t.TempDir(), cloud: devcloudtest.Member()}
	// An empty settings file of its own: a lab.yaml in the repository root is not the test's.
	if err := os.WriteFile(filepath.Join(l.dir, "lab.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return l
}

// env is the environment of every command: the process's, without
// settings that could leak in from the caller, plus the lab's.
func (l *lab) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "OS_") || name == "LAB_CONFIG" || name == "CAPILAB_MAKE_VARS" || name == "MAKEFLAGS" || name == "MFLAGS" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, l.cloud.Env()...)
	env = append(env, "PREFIX="+l.prefix, "STATE_DIR="+filepath.Join(l.dir, "state"), "ARTIFACTS_DIR="+filepath.Join(l.dir, "artifacts"),
		"LAB_CONFIG="+filepath.Join(l.dir, "lab.yaml"))
	return append(env, l.extraEnv...)
}

type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout:\n%s\nstderr:\n%s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// run runs a documented command line (split on spaces, as a shell would
// here) from the repository root and returns its exit code and output.
func (l *lab) run(line string, env ...string) result {
	l.t.Helper()
	args := strings.Fields(line)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = root
	cmd.Env = append(l.env(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		l.t.Fatalf("%s: %v", line, err)
	}
	l.t.Logf("$ %s\n%s", line, r)
	return r
}

// descendants lists the live processes below pid (children, grandchildren, …).
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, state := parentOf(p); pp > 0 && state != "Z" {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// parentOf reads a process's parent and state from /proc/<pid>/stat.
func parentOf(pid int) (int, string) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, ""
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, ""
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 {
		return 0, ""
	}
	pp, _ := strconv.Atoi(fields[1])
	return pp, fields[0]
}

// alive reports whether pid is a process that has not ended (a zombie has).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	_, state := parentOf(pid)
	return state != "" && state != "Z"
}

// exeOf is the executable of a process.
func exeOf(pid int) string {
	p, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return p
}
