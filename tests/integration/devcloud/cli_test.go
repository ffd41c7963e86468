//go:build integration

package devcloud

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capilab/capilab/tests/devcloudtest"
)

// The real openstack CLI (Debian's python3-openstackclient and python3-octaviaclient),
// run as the member, does what platform engineers do by hand.

// cliCleanup registers `openstack args...` to run when the test ends; "not found" counts as done.
func cliCleanup(t *testing.T, c devcloudtest.Cloud, args ...string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), devcloudtest.CleanupTimeout)
		defer cancel()
		_, stderr, err := c.CLIRun(ctx, args...)
		if err != nil && !cliNotFound(stderr) && !strings.Contains(stderr, "not found") {
			t.Errorf("cleanup: %v: %s", err, stderr)
		}
	})
}

// cliNotFound says whether the CLI's stderr says there is no such resource
// (octaviaclient says "Unable to locate <id> in loadbalancers").
func cliNotFound(stderr string) bool {
	for _, s := range []string{"No ", "could not be found", "404", "Unable to locate"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// cliFails runs the CLI expecting failure and checks stderr names the HTTP status wanted.
func cliFails(t *testing.T, c devcloudtest.Cloud, want string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	_, stderr, err := c.CLIRun(ctx, args...)
	if err == nil {
		t.Errorf("openstack %s succeeded, want it refused with %s", strings.Join(args, " "), want)
		return
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("openstack %s: stderr %q, want it to contain %q", strings.Join(args, " "), strings.TrimSpace(stderr), want)
	}
}

// cliWaitTimeout bounds the CLI tests' waits: as long as one CLI command gets
// (a CLI call takes seconds on a loaded machine).
const cliWaitTimeout = 5 * time.Minute

// cliWaitStatus waits (bounded by cliWaitTimeout) until `openstack showArgs...`
// prints want; an ERROR status ends the wait at once.
func cliWaitStatus(t *testing.T, c devcloudtest.Cloud, what, want string, showArgs ...string) {
	t.Helper()
	devcloudtest.WaitFor(t, cliWaitTimeout, what+" to be "+want, func(ctx context.Context) (bool, error) {
		out, _, err := c.CLIRun(ctx, showArgs...)
		got := strings.TrimSpace(out)
		if got == "ERROR" {
			t.Fatalf("%s went to ERROR, want %s", what, want)
		}
		return err == nil && got == want, nil
	})
}

// cliWaitGone waits (bounded by cliWaitTimeout) until `openstack showArgs...` says
// there is no such resource.
func cliWaitGone(t *testing.T, c devcloudtest.Cloud, what string, showArgs ...string) {
	t.Helper()
	devcloudtest.WaitFor(t, cliWaitTimeout, what+" to be gone", func(ctx context.Context) (bool, error) {
		_, stderr, err := c.CLIRun(ctx, showArgs...)
		return err != nil && cliNotFound(stderr), nil
	})
}

func TestCLITokenImageAppCred(t *testing.T) {
	t.Parallel()
	c := devcloudtest.Member()

	var tok map[string]any
	c.CLIJSON(t, &tok, "token", "issue")
	if tok["id"] == "" || tok["project_id"] == "" || tok["expires"] == "" {
		t.Errorf("token issue: %v, want id, project_id, expires", tok)
	}

	file := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(file, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	img := devcloudtest.Name(t, "image")
	cliCleanup(t, c, "image", "delete", img)
	var im map[string]any
	c.CLIJSON(t, &im, "image", "create", "--file", file, "--disk-format", "raw", "--container-format", "bare",
		"--property", "capilab_it=1", img)
	if im["id"] == "" {
		t.Fatalf("image create: no id in %v", keys(im))
	}
	devcloudtest.WaitFor(t, imageTimeout, "image "+img+" to be active", func(ctx context.Context) (bool, error) {
		out, _, err := c.CLIRun(ctx, "image", "show", img, "-f", "value", "-c", "status")
		return strings.TrimSpace(out) == "active", err
	})
	c.CLI(t, "image", "delete", img)
	cliFails(t, c, "No Image found", "image", "show", img)

	ac := devcloudtest.Name(t, "appcred")
	cliCleanup(t, c, "application", "credential", "delete", ac)
	var cred map[string]any
	c.CLIJSON(t, &cred, "application", "credential", "create", ac)
	if cred["secret"] == "" || cred["id"] == "" {
		t.Errorf("application credential create: no id or secret in %v", keys(cred))
	}
	c.CLI(t, "application", "credential", "delete", ac)
	cliFails(t, c, "No applicationcredential with a name or ID", "application", "credential", "show", ac)
}

func TestCLINetworkServerLoadBalancer(t *testing.T) {
	t.Parallel()
	c := devcloudtest.Member()
	net, sub, rtr := devcloudtest.Name(t, "net"), devcloudtest.Name(t, "subnet"), devcloudtest.Name(t, "router")
	port, sg, vm, lb := devcloudtest.Name(t, "port"), devcloudtest.Name(t, "sg"), devcloudtest.Name(t, "vm"), devcloudtest.Name(t, "lb")

	// Cleanups run last-registered first.
	cliCleanup(t, c, "network", "delete", net)
	c.CLI(t, "network", "create", net)
	cliCleanup(t, c, "subnet", "delete", sub)
	c.CLI(t, "subnet", "create", sub, "--network", net, "--subnet-range", "10.41.0.0/24")
	cliCleanup(t, c, "router", "delete", rtr)
	c.CLI(t, "router", "create", rtr)
	c.CLI(t, "router", "set", rtr, "--external-gateway", "public")
	cliCleanup(t, c, "router", "remove", "subnet", rtr, sub)
	c.CLI(t, "router", "add", "subnet", rtr, sub)
	cliCleanup(t, c, "security", "group", "delete", sg)
	c.CLI(t, "security", "group", "create", sg)
	c.CLI(t, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "--ingress", sg)
	cliCleanup(t, c, "port", "delete", port)
	c.CLI(t, "port", "create", port, "--network", net, "--security-group", sg)

	var fip map[string]any
	c.CLIJSON(t, &fip, "floating", "ip", "create", "public")
	fipID, _ := fip["id"].(string)
	cliCleanup(t, c, "floating", "ip", "delete", fipID)
	c.CLI(t, "floating", "ip", "set", "--port", port, fipID)
	if got := strings.TrimSpace(c.CLI(t, "floating", "ip", "show", fipID, "-f", "value", "-c", "port_id")); got == "" || got == "None" {
		t.Errorf("floating ip show: not associated after set --port")
	}

	// Conflicts, as in production.
	cliFails(t, c, "409", "network", "delete", net)
	cliFails(t, c, "409", "subnet", "delete", sub)
	cliFails(t, c, "409", "security", "group", "delete", sg)

	// Creates and deletes are one request each, and the test waits with show: a
	// `create --wait` that loses its connection while it polls cannot be repeated
	// (its create is done), so the long part of the command is kept out of it.
	cliCleanup(t, c, "server", "delete", "--wait", vm)
	var srv map[string]any
	c.CLIJSON(t, &srv, "server", "create", "--flavor", "m1.tiny", "--image", "devcloud-tiny", "--network", net, vm)
	srvID, _ := srv["id"].(string)
	cliWaitStatus(t, c, "server "+vm, "ACTIVE", "server", "show", srvID, "-f", "value", "-c", "status")

	cliCleanup(t, c, "loadbalancer", "delete", "--cascade", "--wait", lb)
	var l map[string]any
	c.CLIJSON(t, &l, "loadbalancer", "create", "--name", lb, "--vip-subnet-id", sub)
	lbID, _ := l["id"].(string)
	cliWaitStatus(t, c, "load balancer "+lb, "ACTIVE", "loadbalancer", "show", lbID, "-f", "value", "-c", "provisioning_status")
	c.CLI(t, "loadbalancer", "listener", "create", "--name", lb+"-l", "--protocol", "TCP", "--protocol-port", "6443", lbID)
	cliWaitStatus(t, c, "load balancer "+lb+" with its listener", "ACTIVE", "loadbalancer", "show", lbID, "-f", "value", "-c", "provisioning_status")

	c.CLI(t, "loadbalancer", "delete", "--cascade", lbID)
	cliWaitGone(t, c, "load balancer "+lb, "loadbalancer", "show", lbID)
	c.CLI(t, "server", "delete", srvID)
	cliWaitGone(t, c, "server "+vm, "server", "show", srvID)
	c.CLI(t, "floating", "ip", "delete", fipID)
	c.CLI(t, "port", "delete", port)
	c.CLI(t, "security", "group", "delete", sg)
	c.CLI(t, "router", "remove", "subnet", rtr, sub)
	c.CLI(t, "router", "delete", rtr)
	c.CLI(t, "subnet", "delete", sub)
	c.CLI(t, "network", "delete", net)
	cliFails(t, c, "No Network found", "network", "show", net)
}

func TestCLIVolume(t *testing.T) {
	t.Parallel()
	c := devcloudtest.Member()
	vol := devcloudtest.Name(t, "vol")
	cliCleanup(t, c, "volume", "delete", vol)
	c.CLI(t, "volume", "create", "--size", "1", "--property", "capilab_it=1", vol)
	devcloudtest.WaitFor(t, volumeTimeout, "volume "+vol+" to be available", func(ctx context.Context) (bool, error) {
		out, _, err := c.CLIRun(ctx, "volume", "show", vol, "-f", "value", "-c", "status")
		if strings.TrimSpace(out) == "error" {
			t.Fatalf("volume %s went to error", vol)
		}
		return strings.TrimSpace(out) == "available", err
	})
	c.CLI(t, "volume", "delete", vol)
	devcloudtest.WaitFor(t, volumeTimeout, "volume "+vol+" to be gone", func(ctx context.Context) (bool, error) {
		_, stderr, err := c.CLIRun(ctx, "volume", "show", vol)
		return err != nil && strings.Contains(stderr, "No volume with a name or ID"), nil
	})
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
