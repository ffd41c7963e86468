//go:build integration

package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"

	"github.com/capilab/capilab/internal/testing/faultproxy"
	"github.com/capilab/capilab/tests/devcloudtest"
)

// seeded is a lab with resources fullclean deletes: per recorded cluster
// (state/clusters/<c>/, the lab's proof that it made the cluster) its
// cilium security group and its two anti-affinity server groups.
type seeded struct {
	*lab
	compute, network *gophercloud.ServiceClient
	mu               sync.Mutex
	sgs, srvgroups   map[string]string // id → name
}

func seedLab(t *testing.T, l *lab, clusters int) *seeded {
	t.Helper()
	m := devcloudtest.Member()
	s := &seeded{lab: l, compute: m.Compute(t), network: m.Network(t), sgs: map[string]string{}, srvgroups: map[string]string{}}
	t.Cleanup(func() { s.removeAll(t) })
	ctx := context.Background()
	for i := 1; i <= clusters; i++ {
		c := fmt.Sprintf("c%d", i)
		if err := os.MkdirAll(filepath.Join(l.dir, "state", "clusters", c), 0o700); err != nil {
			t.Fatal(err)
		}
		sg, err := groups.Create(ctx, s.network, groups.CreateOpts{Name: l.prefix + "-" + c + "-cilium"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		s.sgs[sg.ID] = sg.Name
		for _, role := range []string{"controller", "worker"} {
			g, err := servergroups.Create(ctx, s.compute, servergroups.CreateOpts{Name: l.prefix + "-" + c + "-" + role, Policy: "soft-anti-affinity"}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			s.srvgroups[g.ID] = g.Name
		}
	}
	t.Logf("seeded lab %s: %d clusters, %d resources", l.prefix, clusters, s.remaining(t))
	return s
}

// remaining counts the seeded resources that still exist (two list calls).
func (s *seeded) remaining(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	pages, err := groups.List(s.network, groups.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sgs, err := groups.ExtractGroups(pages)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range sgs {
		if _, ok := s.sgs[g.ID]; ok {
			n++
		}
	}
	pages, err = servergroups.List(s.compute, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srvgroups, err := servergroups.ExtractServerGroups(pages)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range srvgroups {
		if _, ok := s.srvgroups[g.ID]; ok {
			n++
		}
	}
	return n
}

// removeAll deletes what is left of the seed (test cleanup; 404 is fine).
func (s *seeded) removeAll(t *testing.T) {
	ctx := context.Background()
	for id := range s.sgs {
		if err := groups.Delete(ctx, s.network, id).ExtractErr(); err != nil && !devcloudtest.IsNotFound(err) {
			t.Errorf("cleanup: security group %s: %v", id, err)
		}
	}
	for id := range s.srvgroups {
		if err := servergroups.Delete(ctx, s.compute, id).ExtractErr(); err != nil && !devcloudtest.IsNotFound(err) {
			t.Errorf("cleanup: server group %s: %v", id, err)
		}
	}
}

// watcher keeps a process's output and tells when a text appears in it.
type watcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	seen chan struct{}
	want string
}

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.want != "" && strings.Contains(w.buf.String(), w.want) {
		close(w.seen)
		w.want = ""
	}
	return len(p), nil
}

func (w *watcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

type proc struct {
	cmd    *exec.Cmd
	stderr *watcher
	stdout bytes.Buffer
	done   chan struct{}
	err    error
}

// start starts a documented command line and returns once its stderr
// shows want (bounded); the test fails if it ends or the bound passes first.
func (l *lab) start(t *testing.T, line, want string, env ...string) *proc {
	t.Helper()
	args := strings.Fields(line)
	p := &proc{cmd: exec.Command(args[0], args[1:]...), stderr: &watcher{seen: make(chan struct{}), want: want}, done: make(chan struct{})}
	p.cmd.Dir = root
	p.cmd.Env = append(l.env(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case <-p.stderr.seen:
	case <-p.done:
		t.Fatalf("%s ended before its output showed %q: %v\n%s", line, want, p.err, p.stderr)
	case <-time.After(5 * time.Minute):
		t.Fatalf("%s: no %q in its output after 5 minutes:\n%s", line, want, p.stderr)
	}
	return p
}

// workOf finds the process doing the work below (or at) pid: the compiled
// targets binary, which lives in Mage's cache directory.
func workOf(t *testing.T, pid int) int {
	t.Helper()
	cache := os.Getenv("MAGEFILE_CACHE")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".magefile")
	}
	var found []int
	for _, p := range append([]int{pid}, descendants(pid)...) {
		if strings.HasPrefix(exeOf(p), cache+"/") {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one targets process below pid %d, found %v", pid, found)
	}
	return found[0]
}

// waitGone waits (bounded) until none of pids is alive.
func waitGone(t *testing.T, bound time.Duration, what string, pids ...int) {
	t.Helper()
	devcloudtest.WaitFor(t, bound, what, func(context.Context) (bool, error) {
		for _, p := range pids {
			if alive(p) {
				return false, nil
			}
		}
		return true, nil
	})
}

func totalRequests(p *faultproxy.Proxy) int {
	n := 0
	for _, s := range p.Stats() {
		n += s.Requests
	}
	return n
}

// TestSignalsStopTheWork: SIGTERM or SIGKILL to the process a caller (a
// CI runner) started — make, bin/mage or go run — while fullclean is
// deleting stops the work: the targets process ends within the bound, no
// process of it is left, no request reaches the cloud afterwards, and the
// lab is not cleaned to the end (the run was stopped, it did not finish).
// Every request goes through a proxy that adds latency, so fullclean takes
// long enough to be stopped in the middle.
func TestSignalsStopTheWork(t *testing.T) {
	t.Parallel()
	s := seedLab(t, newLab(t, "sig"), 12)
	type stopped struct {
		name     string
		proxy    *faultproxy.Proxy
		requests int
	}
	var runs []stopped
	for _, entry := range []string{"bin/mage clean:full", "make fullclean", "go run mage.go clean:full"} {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			name := fmt.Sprintf("%s/%s", entry, sig)
			t.Run(name, func(t *testing.T) {
				slow, proxy := devcloudtest.WithFaults(t, devcloudtest.Member(), faultproxy.Config{Rules: map[string]faultproxy.Rule{faultproxy.AnyService: {Latency: 700 * time.Millisecond}}})
				s.cloud = slow
				defer func() { s.cloud = devcloudtest.Member() }()
				before := s.remaining(t)
				p := s.start(t, entry, `msg="deleted `, "PARALLELISM=2")
				work := workOf(t, p.cmd.Process.Pid)
				tree := append([]int{p.cmd.Process.Pid, work}, descendants(work)...)
				if err := p.cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				waitGone(t, 45*time.Second, "the work of "+entry+" to end after "+sig.String(), tree...)
				t.Logf("%s: the work (pid %d) ended %s after %s", entry, work, time.Since(start).Round(time.Millisecond), sig)
				<-p.done
				runs = append(runs, stopped{name: name, proxy: proxy, requests: totalRequests(proxy)})
				after := s.remaining(t)
				if after == 0 || after >= before {
					t.Errorf("seeded resources: %d before, %d after: want some deleted and the run stopped before the end", before, after)
				}
				t.Logf("stderr of %s:\n%s", entry, p.stderr)
			})
		}
	}
	// Nothing reached the cloud from a stopped run since it ended.
	for _, r := range runs {
		if n := totalRequests(r.proxy); n != r.requests {
			t.Errorf("%s: %d request(s) reached the cloud after the work ended", r.name, n-r.requests)
		}
	}
}

// TestSecondRunSaysWhoHoldsTheLock: while one fullclean of a lab runs, a
// second run that would change the lab exits at once with code 4 (make:
// "Error 4") naming the holder's target and pid, having done nothing; a
// run killed with SIGKILL leaves the lock free, and the next run takes it
// over and finishes the job.
func TestSecondRunSaysWhoHoldsTheLock(t *testing.T) {
	t.Parallel()
	s := seedLab(t, newLab(t, "lock"), 6)
	slow, _ := devcloudtest.WithFaults(t, devcloudtest.Member(), faultproxy.Config{Rules: map[string]faultproxy.Rule{faultproxy.AnyService: {Latency: 700 * time.Millisecond}}})
	s.cloud = slow
	first := s.start(t, "bin/mage clean:full", `msg="▶ deleting`, "PARALLELISM=1")
	pid := first.cmd.Process.Pid // bin/mage became the work (exec)
	for _, tc := range []struct {
		line string
		code int
		want string
	}{
		{"bin/mage clean:full", 4, fmt.Sprintf("clean:full (pid %d", pid)},
		{"bin/mage appcred:create", 4, fmt.Sprintf("clean:full (pid %d", pid)},
		{"make fullclean", 2, "] Error 4"},
	} {
		r := s.run(tc.line)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "since ") || strings.Contains(r.stderr, "discovering") {
			t.Errorf("%s while the lab is locked: want exit %d naming the holder (%q) and nothing done:\n%s", tc.line, tc.code, tc.want, r)
		}
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	s.cloud = devcloudtest.Member()
	r := s.run("bin/mage clean:full")
	if r.code != 0 || !strings.Contains(r.stderr, "took over the lab's lock") || !strings.Contains(r.stderr, fmt.Sprintf("pid %d", pid)) {
		t.Fatalf("the run after a killed one: want exit 0, taking over the killed run's lock:\n%s", r)
	}
	if n := s.remaining(t); n != 0 {
		t.Errorf("%d seeded resource(s) left after the last fullclean", n)
	}
}
