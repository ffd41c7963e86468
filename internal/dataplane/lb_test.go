package dataplane

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func intp(i int) *int { return &i }

func TestLBConfig(t *testing.T) {
	v := &lbView{
		listeners: map[string][]Listener{"lb1": {
			{ID: "l1", Protocol: "TCP", ProtocolPort: 6443, DefaultPoolID: "p1", AdminStateUp: true},
			{ID: "l2", Protocol: "UDP", ProtocolPort: 53, DefaultPoolID: "p1", AdminStateUp: true},
			{ID: "l3", Protocol: "HTTP", ProtocolPort: 80, DefaultPoolID: "p2", AdminStateUp: true},
			{ID: "l4", Protocol: "TCP", ProtocolPort: 8080, DefaultPoolID: "p1", AdminStateUp: false},
		}},
		pools: map[string]Pool{
			"p1": {ID: "p1", AdminStateUp: true, HealthMonitorID: "hm1"},
			"p2": {ID: "p2", AdminStateUp: false},
		},
		monitors: map[string]HealthMonitor{"hm1": {ID: "hm1", Type: "TCP", Delay: 5, Timeout: 3, MaxRetries: 2, MaxRetriesDown: 3, AdminStateUp: true}},
		members: map[string][]Member{"p1": {
			{Address: "10.6.0.10", ProtocolPort: 6443, AdminStateUp: true},
			{Address: "10.6.0.11", ProtocolPort: 6443, AdminStateUp: false},
			{Address: "10.6.0.12", ProtocolPort: 6443, AdminStateUp: true, Weight: intp(0)},
			{Address: "10.6.0.13", ProtocolPort: 6443, AdminStateUp: true, Weight: intp(1), Backup: true},
		}},
	}
	cfg, skipped := lbConfig(LoadBalancer{ID: "lb1"}, v)
	if len(cfg.Listeners) != 2 || cfg.Listeners[0].Port != 80 || cfg.Listeners[1].Port != 6443 {
		t.Fatalf("listeners %+v", cfg.Listeners)
	}
	if len(cfg.Listeners[0].Members) != 0 {
		t.Errorf("a disabled pool has no members: %+v", cfg.Listeners[0])
	}
	l := cfg.Listeners[1]
	want := []LBMember{{Address: "10.6.0.10", Port: 6443}, {Address: "10.6.0.13", Port: 6443, Backup: true}}
	if len(l.Members) != 2 || l.Members[0] != want[0] || l.Members[1] != want[1] {
		t.Errorf("members %+v, want %+v (disabled and weight-0 members drained)", l.Members, want)
	}
	if l.Monitor == nil || l.Monitor.Delay != 5*time.Second || l.Monitor.Rise != 2 || l.Monitor.Fall != 3 {
		t.Errorf("monitor %+v", l.Monitor)
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "UDP") {
		t.Errorf("skipped %v", skipped)
	}
}

func namedBackend(t *testing.T, name string) (string, func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, name)
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l.Addr().String(), func() { l.Close() }
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func member(addr string) LBMember {
	h, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	return LBMember{Address: h, Port: port}
}

// The helper follows its config file: members added and removed take
// effect without a restart, and a monitored member that stops answering is
// taken out.
func TestRunLBFollowsConfig(t *testing.T) {
	a, _ := namedBackend(t, "a")
	b, stopB := namedBackend(t, "b")
	port := freePort(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "lb.json")
	write := func(cfg LBConfig) {
		raw, _ := json.Marshal(cfg)
		if err := os.WriteFile(path+".tmp", raw, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write(LBConfig{Listeners: []LBListener{{Port: port, Members: []LBMember{member(a)}}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunLB(ctx, path, newTestLogger(t)) }()
	defer func() { cancel(); <-done }()

	addr := "127.0.0.1:" + strconv.Itoa(port)
	answers := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				got["dial error"]++
				continue
			}
			c.SetDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(c, "x\n")
			b, _ := io.ReadAll(c)
			c.Close()
			got[string(b)]++
		}
		return got
	}
	eventually := func(what string, ok func(map[string]int) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		var got map[string]int
		for time.Now().Before(deadline) {
			got = answers(6)
			if ok(got) {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("%s: answers %v", what, got)
	}
	eventually("one member", func(g map[string]int) bool { return g["a"] == 6 })

	write(LBConfig{Listeners: []LBListener{{Port: port, Members: []LBMember{member(a), member(b)}}}})
	eventually("member b added", func(g map[string]int) bool { return g["a"] > 0 && g["b"] > 0 && g["a"]+g["b"] == 6 })

	// a rolling update: a leaves
	write(LBConfig{Listeners: []LBListener{{Port: port, Members: []LBMember{member(b)}}}})
	eventually("member a removed", func(g map[string]int) bool { return g["b"] == 6 })

	// monitored: b dies, a (back as member) serves everything
	mon := &LBMonitor{Delay: time.Second, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1}
	write(LBConfig{Listeners: []LBListener{{Port: port, Members: []LBMember{member(a), member(b)}, Monitor: mon}}})
	eventually("both members monitored", func(g map[string]int) bool { return g["a"] > 0 && g["b"] > 0 })
	stopB()
	eventually("dead member skipped", func(g map[string]int) bool { return g["a"] == 6 })

	write(LBConfig{})
	eventually("listener removed", func(g map[string]int) bool { return g["dial error"] == 6 })
}
