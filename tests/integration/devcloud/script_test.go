//go:build integration

package devcloud

import (
	"bufio"
	"bytes"
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capilab/capilab/tests/devcloudtest"
)

var script = filepath.Join("..", "..", "..", "scripts", "devcloud", "devcloud.sh")

func runScript(t *testing.T, timeout time.Duration, verb string, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, verb)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("devcloud.sh %s: %v\n%s", verb, err, out)
	}
	return string(out)
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
func TestScriptStartIsIdempotent(t *testing.T) {
	before := servicePIDs(t)
	out := runScript(t, 10*time.Minute, "start")
	if !strings.Contains(out, "already running") {
		t.Errorf("start on a running devcloud did work:\n%s", out)
	}
	if after := servicePIDs(t); !maps.Equal(before, after) {
		t.Errorf("start on a running devcloud restarted services: PIDs before %v, after %v\n%s", before, after, out)
	}
	runScript(t, 2*time.Minute, "status", "DEVCLOUD_SELFCHECK=never")
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
