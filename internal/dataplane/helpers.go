package dataplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/dataplane/docker"
	"github.com/capilab/capilab/internal/fsutil"
)

// Helper containers carry a load balancer's VIP or a floating IP: small
// containers of HelperImage on a mirrored network with the Neutron
// address, named and labelled by the agent.

// helperWant is one helper container the agent wants.
type helperWant struct {
	key     string // LB or FIP ID
	spec    docker.ContainerSpec
	since   time.Time // when OpenStack last changed the resource (reaction time)
	what    string    // for logs: "load balancer x", "floating IP y"
	network string    // Neutron network
}

func specHash(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:8])
}

// reconcileHelpers makes the helpers of one kind exactly want. Helpers of
// keys in keep are left alone when not wanted (their resource is in a
// transient state: an updating load balancer keeps forwarding).
func (a *Agent) reconcileHelpers(ctx context.Context, kind, keyLabel string, want map[string]helperWant, keep map[string]bool) (int, []error) {
	existing, err := a.opts.Docker.ContainerList(ctx, map[string][]string{"label": {LabelOwner + "=" + a.opts.Owner, LabelKind + "=" + kind}})
	if err != nil {
		return 0, []error{err}
	}
	var errs []error
	have := map[string]docker.ContainerSummary{}
	for _, c := range existing {
		key := c.Labels[keyLabel]
		w, wanted := want[key]
		_, dup := have[key]
		if dup || (!wanted && !keep[key]) || (wanted && c.Labels[LabelSpec] != w.spec.Labels[LabelSpec]) {
			a.log.Info("removing "+kind+" helper", "container", c.Name(), "key", key, "wanted", wanted)
			if err := a.opts.Docker.ContainerRemove(ctx, c.ID); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", c.Name(), err))
			}
			continue
		}
		have[key] = c
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	running := 0
	for _, k := range keys {
		w := want[k]
		if c, ok := have[k]; ok {
			if c.State != "running" {
				if err := a.opts.Docker.ContainerStart(ctx, c.ID); err != nil {
					errs = append(errs, fmt.Errorf("start %s: %w", c.Name(), err))
					continue
				}
			}
			running++
			continue
		}
		id, err := a.opts.Docker.ContainerCreate(ctx, w.spec)
		if docker.IsConflict(err) {
			// A leftover of the same name (e.g. being removed): retry next pass.
			errs = append(errs, fmt.Errorf("%s: container name %s in use: %w", w.what, w.spec.Name, err))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: create helper: %w", w.what, err))
			continue
		}
		if err := a.opts.Docker.ContainerStart(ctx, id); err != nil {
			_ = a.opts.Docker.ContainerRemove(ctx, id)
			errs = append(errs, fmt.Errorf("%s: start helper: %w", w.what, err))
			continue
		}
		running++
		attrs := []any{"container", w.spec.Name, "ip", w.spec.IPv4}
		if !w.since.IsZero() {
			attrs = append(attrs, "since_openstack_change", time.Since(w.since).Round(time.Millisecond))
		}
		a.log.Info(w.what+" forwarding", attrs...)
	}
	return running, errs
}

// writeJSONAtomic writes v to path (temp file + rename).
func writeJSONAtomic(path string, v any) (bool, error) {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return false, err
	}
	if old, err := os.ReadFile(path); err == nil && string(old) == string(raw) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	return true, fsutil.WriteAtomic(path, raw, 0o644)
}
