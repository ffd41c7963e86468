//go:build integration

package cleanup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/capilab/capilab/internal/cleanup"
)

// cli runs the real openstack CLI as the given cloud and returns stdout.
func cli(t testing.TB, cloudName string, args ...string) string {
	t.Helper()
	out, err := cliErr(cloudName, "", args...)
	if err != nil {
		t.Fatalf("openstack %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// cliErr runs the CLI, repeating a run that could not reach the cloud at
// all (the CLI itself does not retry; devcloud's Keystone under load
// sometimes drops a connection).
func cliErr(cloudName, cloudsFile string, args ...string) (string, error) {
	var out string
	var err error
	for attempt := range 3 {
		out, err = cliOnce(cloudName, cloudsFile, args...)
		var ce *cliError
		if err == nil || !errors.As(err, &ce) || !strings.Contains(ce.stderr, "Unable to establish connection") {
			return out, err
		}
		time.Sleep(time.Duration(attempt+1) * 2 * time.Second) // backoff between whole CLI runs
	}
	return out, err
}

func cliOnce(cloudName, cloudsFile string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/openstack", args...)
	cmd.Env = append(os.Environ(), "OS_CLOUD="+cloudName)
	if cloudsFile != "" {
		cmd.Env = append(cmd.Env, "OS_CLIENT_CONFIG_FILE="+cloudsFile)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &cliError{err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type cliError struct {
	err    error
	stderr string
}

func (e *cliError) Error() string { return e.err.Error() + ": " + strings.TrimSpace(e.stderr) }

// cliListings are the openstack CLI listings that show each resource type.
var cliListings = map[cleanup.Type][]string{
	cleanup.Network:         {"network", "list"},
	cleanup.Subnet:          {"subnet", "list"},
	cleanup.Router:          {"router", "list"},
	cleanup.Port:            {"port", "list"},
	cleanup.RouterInterface: {"port", "list", "--device-owner", "network:router_interface"},
	cleanup.SecurityGroup:   {"security", "group", "list"},
	cleanup.FloatingIP:      {"floating", "ip", "list"},
	cleanup.LoadBalancer:    {"loadbalancer", "list"},
	cleanup.Server:          {"server", "list"},
	cleanup.Volume:          {"volume", "list"},
	cleanup.Snapshot:        {"volume", "snapshot", "list"},
	cleanup.ServerGroup:     {"server", "group", "list"},
	cleanup.Keypair:         {"keypair", "list"},
	cleanup.AppCred:         {"application", "credential", "list"},
}

// cliInventory lists every resource type with the openstack CLI and
// returns the keys ("type/id") that exist.
func cliInventory(t testing.TB) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	var g errgroup.Group
	g.SetLimit(4)
	results := make(map[cleanup.Type][]map[string]any, len(cliListings))
	type item struct {
		t    cleanup.Type
		rows []map[string]any
	}
	ch := make(chan item, len(cliListings))
	for typ, args := range cliListings {
		g.Go(func() error {
			out, err := cliErr(memberCloud, "", append(args, "-f", "json")...)
			if err != nil {
				return err
			}
			var rows []map[string]any
			if err := json.Unmarshal([]byte(out), &rows); err != nil {
				return err
			}
			ch <- item{typ, rows}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("listing with the openstack CLI: %v", err)
	}
	close(ch)
	for it := range ch {
		results[it.t] = it.rows
	}
	for typ, rows := range results {
		for _, row := range rows {
			id, _ := row["ID"].(string)
			if id == "" {
				id, _ = row["id"].(string) // octaviaclient's columns are lower case
			}
			if typ == cleanup.Keypair {
				id, _ = row["Name"].(string)
			}
			keys[string(typ)+"/"+id] = true
		}
	}
	return keys
}

// assertOutcome checks with the CLI: no owned resource exists, every
// foreign one does.
func (w *world) assertOutcome(t *testing.T) {
	t.Helper()
	have := cliInventory(t)
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, name := range w.owned {
		if have[key] {
			t.Errorf("owned %s (%s) still exists (openstack CLI)", key, name)
		}
	}
	for key, name := range w.foreign {
		if !have[key] {
			t.Errorf("foreign %s (%s) is gone (openstack CLI)", key, name)
		}
	}
	if !t.Failed() {
		t.Logf("openstack CLI: %d owned resources gone, %d foreign intact", len(w.owned), len(w.foreign))
	}
}
