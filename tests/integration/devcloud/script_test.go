//go:build integration

package devcloud

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capilab/capilab/tests/devcloudtest"
)

var script = filepath.Join("..", "..", "..", "scripts", "devcloud", "devcloud.sh")

func runScript(t *testing.T, timeout time.Duration, verb string, env ...string) string {
	t.Helper()
	out, err := scriptOutput(t.Context(), timeout, verb, env...)
	if err != nil {
		t.Fatalf("devcloud.sh %s: %v; unhealthy: %s\n%s", verb, err, unhealthy(out), out)
	}
	return out
}

// scriptOutput runs devcloud.sh verb (bounded by timeout) and returns its
// combined output.
func scriptOutput(ctx context.Context, timeout time.Duration, verb string, env ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, verb)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// unhealthy picks the lines of devcloud.sh's output that make it fail, so
// that a failure's first line (what a CI summary keeps) names them.
func unhealthy(out string) string {
	failing := func(w string) bool {
		switch w {
		case "stopped", "DOWN", "ERROR", "STALE", "FAILED", "ERROR:", "error:":
			return true
		}
		return false
	}
	var bad []string
	for l := range strings.Lines(out) {
		if f := strings.Fields(l); slices.ContainsFunc(f, failing) {
			bad = append(bad, strings.Join(f, " "))
		}
	}
	if len(bad) == 0 {
		return "(no line says which)"
	}
	return strings.Join(bad, " | ")
}

// runDir holds devcloud's PID files.
func runDir() string {
	if s := os.Getenv("DEVCLOUD_STATE"); s != "" {
		return filepath.Join(s, "run")
	}
	return "/var/lib/devcloud/run"
}

// pidFiles are the PIDs devcloud recorded, by process name.
func pidFiles(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(runDir(), "*.pid"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no PID files in %s (%v): is devcloud running?", runDir(), err)
	}
	pids := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pids[strings.TrimSuffix(filepath.Base(f), ".pid")] = strings.TrimSpace(string(b))
	}
	return pids
}

// servicePIDs are the PIDs of devcloud's OpenStack services and their
// infrastructure. The data-plane agent is left out: the data-plane tests
// restart it on purpose, possibly while this test runs.
func servicePIDs(t *testing.T) map[string]string {
	t.Helper()
	pids := pidFiles(t)
	delete(pids, "dataplane")
	return pids
}

// `start` on a running devcloud is a no-op: it says so and restarts no
// service. (It may repeat the data plane's self-check when the agent's
// binary changed since the last pass; that check bounds its own waits.)
// A user's exported OS_CLOUD (what `devcloud.sh env` prints) does not
// change whose credentials devcloud's own steps use.
func TestScriptStartIsIdempotent(t *testing.T) {
	before := servicePIDs(t)
	out := runScript(t, 10*time.Minute, "start", "OS_CLOUD=devcloud-member")
	if !strings.Contains(out, "already running") {
		t.Errorf("start on a running devcloud did work:\n%s", out)
	}
	if after := servicePIDs(t); !maps.Equal(before, after) {
		t.Errorf("start on a running devcloud restarted services: PIDs before %v, after %v\n%s", before, after, out)
	}
	// The data-plane tier restarts the agent on purpose, possibly now: for
	// those seconds its forwarders are gone and status says so. Healthy
	// means status passes within a bounded wait, not at one instant.
	var last string
	err := devcloudtest.Poll(t.Context(), 5*time.Minute, 10*time.Second, "devcloud.sh status to pass",
		func(ctx context.Context) (bool, error) {
			out, err := scriptOutput(ctx, 2*time.Minute, "status", "DEVCLOUD_SELFCHECK=never")
			if err == nil {
				return true, nil
			}
			last = unhealthy(out)
			t.Logf("devcloud.sh status: %v; unhealthy: %s", err, last)
			return false, nil
		})
	if err != nil {
		t.Fatalf("%v; unhealthy: %s", err, last)
	}
}

// Every socket a devcloud process listens on is bound to loopback.
func TestScriptListensOnLoopbackOnly(t *testing.T) {
	pids := map[string]bool{}
	sessions := map[string]bool{}
	for _, pid := range pidFiles(t) {
		sessions[pid] = true
	}
	ps, err := exec.Command("ps", "-e", "-o", "pid=,sid=").Output()
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(ps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && sessions[f[1]] {
			pids[f[0]] = true
		}
	}
	ss, err := exec.Command("ss", "-H", "-ltnup").Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	// The data plane forwards the APIs to containers at the gateway of devcloud's public
	// network: an address of the data plane's own Docker bridge (dc-*), which only the
	// host and the containers on that bridge reach.
	bridgeAddrs := map[string]string{}
	addrs, err := exec.Command("ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		t.Fatalf("ip addr: %v", err)
	}
	for _, l := range strings.Split(string(addrs), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && strings.HasPrefix(f[1], "dc-") {
			bridgeAddrs[strings.Split(f[3], "/")[0]] = f[1]
		}
	}
	checked := 0
	sc = bufio.NewScanner(bytes.NewReader(ss))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		owner := false
		for _, part := range strings.Split(line, "pid=")[1:] {
			pid := part[:strings.IndexAny(part+",", ",)")]
			if _, err := strconv.Atoi(pid); err == nil && pids[pid] {
				owner = true
			}
		}
		if !owner {
			continue
		}
		checked++
		local := f[4]
		host := local[:strings.LastIndex(local, ":")]
		if bridge, ok := bridgeAddrs[host]; ok && strings.Contains(line, `(("dataplane",`) {
			t.Logf("data plane forwards on %s (bridge %s)", local, bridge)
			continue
		}
		if !strings.HasPrefix(local, "127.") && !strings.HasPrefix(local, "[::1]") {
			t.Errorf("devcloud process listens on %s, not loopback: %s", local, line)
		}
	}
	if checked < 10 {
		t.Errorf("found only %d listening sockets of devcloud processes; want every API, MariaDB and RabbitMQ", checked)
	}
}

// clouds.yaml holds passwords: it must be private, and have both devcloud entries.
func TestScriptCloudsYAML(t *testing.T) {
	fi, err := os.Stat(devcloudtest.CloudsYAMLPath())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", devcloudtest.CloudsYAMLPath(), fi.Mode().Perm())
	}
	for _, c := range []devcloudtest.Cloud{devcloudtest.Admin(), devcloudtest.Member()} {
		if auth, _ := c.Entry(t)["auth"].(map[string]any); auth["auth_url"] == nil {
			t.Errorf("cloud %s has no auth_url", c.Name)
		}
	}
}

// devcloud's uwsgi-served APIs (Keystone, Placement, Octavia) answer a request
// that takes longer than uwsgi's default router timeout (60 s): cutting it
// would leave the client without an answer while the worker still does the
// work, and a client that repeats a create then makes a second resource. The
// test runs a worker exactly as devcloud.sh starts its APIs, serving an app
// that takes 70 s.
func TestScriptAPIServerAnswersSlowRequests(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Fatalf("devcloud runs as root; this test starts uwsgi as devcloud.sh does and needs root too")
	}
	dir := t.TempDir()
	app := filepath.Join(dir, "slow.py")
	if err := os.WriteFile(app, []byte(`import time
def application(environ, start_response):
    time.sleep(70)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done after 70 s\n"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	// devcloud.sh's own function prints the command line it starts an API with.
	line, err := exec.CommandContext(t.Context(), "bash", "-c",
		`eval "$(sed -n '/^uwsgi_cmd()/,/^}/p' "$1")" && LOGDIR=$2 && uwsgi_cmd "$3" "$4" 1 root slow`,
		"bash", script, dir, port, app).Output()
	if err != nil {
		t.Fatalf("uwsgi_cmd from %s: %v", script, err)
	}
	argv := strings.Fields(string(line))
	if len(argv) < 2 || argv[0] != "uwsgi" {
		t.Fatalf("uwsgi_cmd printed %q, want a uwsgi command line", line)
	}
	srv := exec.Command(argv[0], argv[1:]...)
	if err := srv.Start(); err != nil {
		t.Fatalf("start %s: %v", line, err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = srv.Process.Kill()
			<-done
		}
	})
	url := "http://127.0.0.1:" + port + "/"
	devcloudtest.WaitFor(t, time.Minute, "uwsgi on "+url+" to accept connections", func(ctx context.Context) (bool, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", "127.0.0.1:"+port)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s (a 70 s request) after %s: %v; uwsgi's log: %s", url, time.Since(start).Round(time.Second), err, readFile(filepath.Join(dir, "slow.log")))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "done after 70 s") {
		t.Errorf("POST %s: %s %q, want 200 and the app's answer", url, resp.Status, body)
	}
}

func readFile(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
