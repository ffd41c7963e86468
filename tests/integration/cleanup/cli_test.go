//go:build integration

package cleanup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/capilab/capilab/internal/cleanup"
	"github.com/capilab/capilab/tests/devcloudtest"
)

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
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			out, stderr, err := devcloudtest.Member().CLIRun(ctx, append(args, "-f", "json")...)
			if err != nil {
				return fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr))
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
