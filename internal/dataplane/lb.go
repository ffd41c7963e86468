package dataplane

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/capilab/capilab/internal/dataplane/docker"
)

// LB helpers: a container holding the VIP on the mirror of the VIP's
// network, running this program's `lb` command (the agent's own static
// binary, mounted read-only) on a config the agent rewrites whenever
// Octavia's members change. The helper survives restarts of the agent.

const lbConfigName = "lb.json"

func (a *Agent) lbConfigDir(lbID string) string { return filepath.Join(a.opts.StateDir, "lb", lbID) }

// reconcileLBs forwards every ACTIVE load balancer whose VIP network is
// mirrored; load balancers in a transient state keep their helper.
func (a *Agent) reconcileLBs(ctx context.Context, v *lbView, mirrors map[string]mirror, vipMACs map[string]string, helperOK bool, st *Status) []error {
	want := map[string]helperWant{}
	keep := map[string]bool{}
	var errs []error
	for _, lb := range v.lbs {
		switch lb.ProvisioningStatus {
		case "ACTIVE":
		case "PENDING_DELETE", "DELETED":
			continue
		default:
			keep[lb.ID] = true // PENDING_UPDATE (members changing), ERROR: keep what forwards now
			continue
		}
		m, ok := mirrors[lb.VIPNetworkID]
		if !ok {
			continue // mirrored next pass, or the network is refused (see problems)
		}
		cfg, skipped := lbConfig(lb, v)
		for _, s := range skipped {
			st.Problems["load balancer "+lb.ID] = s
		}
		changed, err := writeJSONAtomic(filepath.Join(a.lbConfigDir(lb.ID), lbConfigName), cfg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if changed {
			a.log.Info("load balancer config written", "loadbalancer", lb.ID, "listeners", len(cfg.Listeners), "members", memberCount(cfg))
		}
		if !helperOK || a.opts.AgentBinary == "" {
			keep[lb.ID] = true
			continue
		}
		spec := docker.ContainerSpec{
			Name:       a.opts.Owner + "-lb-" + sanitize(lb.Name, 30) + "-" + short(lb.ID),
			Image:      a.opts.HelperImage,
			Hostname:   "lb-" + short(lb.ID),
			Entrypoint: []string{"/dataplane", "lb", "--config", "/config/" + lbConfigName},
			Labels: map[string]string{
				LabelOwner: a.opts.Owner, LabelKind: KindLB, LabelLBID: lb.ID, LabelNetworkID: lb.VIPNetworkID,
				LabelSpec: specHash(lb.VIPAddress, m.DockerName, a.opts.HelperImage, vipMACs[lb.VIPPortID], a.binaryID),
			},
			Network:       m.DockerName,
			IPv4:          lb.VIPAddress,
			MAC:           vipMACs[lb.VIPPortID],
			Binds:         []string{a.opts.AgentBinary + ":/dataplane:ro", a.lbConfigDir(lb.ID) + ":/config:ro"},
			RestartPolicy: "unless-stopped",
		}
		since, _ := time.Parse("2006-01-02T15:04:05", lb.UpdatedAt)
		want[lb.ID] = helperWant{key: lb.ID, spec: spec, since: since, what: "load balancer " + lb.ID, network: lb.VIPNetworkID}
	}
	n, herrs := a.reconcileHelpers(ctx, KindLB, LabelLBID, want, keep)
	st.LoadBalancers = n
	errs = append(errs, herrs...)
	// Config directories of load balancers that are gone.
	dirs, _ := os.ReadDir(filepath.Join(a.opts.StateDir, "lb"))
	for _, d := range dirs {
		if _, ok := want[d.Name()]; !ok && !keep[d.Name()] {
			_ = os.RemoveAll(filepath.Join(a.opts.StateDir, "lb", d.Name()))
		}
	}
	return errs
}

func memberCount(c LBConfig) int {
	n := 0
	for _, l := range c.Listeners {
		n += len(l.Members)
	}
	return n
}
