// Package dataplane is devcloud's data plane: an agent that makes the
// OpenStack resources of devcloud (whose Nova, Neutron and Octavia have
// fake back ends) carry real traffic on the local Docker engine.
//
//   - Every Neutron network something needs on this host is mirrored by a
//     Docker bridge network with the same CIDR whose gateway address is the
//     host (it routes between them, as a Neutron router would). Docker never
//     hands out addresses there: every container gets its Neutron port's IP.
//   - devcloud's APIs listen on 127.0.0.1 only. The agent forwards each API
//     port from the gateway address of every external network (172.24.4.1
//     for devcloud's `public`), so the catalog's second region, whose URLs
//     use that address, works from the host, from kind pods and from node
//     containers alike.
//
// Node containers, load balancers and floating IPs are reconciled from the
// same loop (see nodes.go, lb.go, fip.go). Everything the agent makes in
// Docker carries LabelOwner; it never touches anything else.
package dataplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/capilab/capilab/internal/dataplane/docker"
	"github.com/capilab/capilab/internal/dataplane/forward"
	"github.com/capilab/capilab/internal/fsutil"
)

// DefaultOwner is the value of LabelOwner and the prefix of the names of
// the Docker objects devcloud's agent makes.
const DefaultOwner = "devcloud"

// Options configure an Agent. Every field without a default is required.
type Options struct {
	// Owner marks and names everything the agent creates (default DefaultOwner).
	Owner string
	// Clients for the cloud, as admin.
	Compute, Network, Image, LoadBalancer *gophercloud.ServiceClient
	Docker                                *docker.Client
	// APIPorts are forwarded from the gateway of every external network to
	// the same port on APITarget (default 127.0.0.1).
	APIPorts  []int
	APITarget string
	// StateDir holds the agent's files (status, load balancer configs).
	StateDir string
	// Interval between reconciliations (default 2s).
	Interval time.Duration
	// PassTimeout bounds one reconciliation (default 90s).
	PassTimeout time.Duration
	Log         *slog.Logger
	// Firewall manages the DOCKER-USER rules; nil disables them (tests).
	Firewall Firewall
	// Faults records why a server went to ERROR; nil: ERROR without a fault.
	Faults FaultRecorder
	// NodeImageProperty is the Glance property that marks node images
	// (default DefaultNodeImageProperty).
	NodeImageProperty string
	// Region is the instance data's region (default RegionOne).
	Region string
	// HelperImage runs load balancer and floating IP helpers: it needs
	// /bin/sh, sleep and iptables (the kind node image has them).
	HelperImage string
	// AgentBinary is this program (static), mounted into load balancer
	// helpers, which run its `lb` command.
	AgentBinary string
	// KindNetworks are the Docker networks of kind clusters that may reach
	// floating IPs and VIPs (default: "kind").
	KindNetworks []string
}

// Agent reconciles devcloud's OpenStack state into Docker. Use New.
type Agent struct {
	opts   Options
	log    *slog.Logger
	neu    neutron
	nova   nova
	glance *glance
	octa   *octavia
	// binaryID changes when the agent binary does (helpers are recreated).
	binaryID string

	mu         sync.Mutex
	forwarders map[string]*forward.Forwarder // "addr:port" → forwarder
	nodes      map[string]*nodeState         // node container ID → state
	failed     map[string]bool               // server IDs reported as ERROR
	status     Status
}

// Status is what the agent writes to StateDir/status.json after every pass.
type Status struct {
	Time       time.Time `json:"time"`
	Pass       int       `json:"pass"`
	PassMillis int64     `json:"pass_ms"`
	Error      string    `json:"error,omitempty"`
	// FailedPasses counts the failed passes in a row up to this one (0 when
	// it succeeded); FailingSince is when the first of them started. A
	// loaded cloud fails a pass now and then; the next one retries.
	FailedPasses int       `json:"failed_passes,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	// IntervalMillis and PassTimeoutMillis are the agent's pace: a reader
	// knows how old status.json may get while a slow pass still runs.
	IntervalMillis    int64             `json:"interval_ms"`
	PassTimeoutMillis int64             `json:"pass_timeout_ms"`
	Networks          []NetworkStatus   `json:"networks"`
	Forwarders        []string          `json:"api_forwarders"`
	Nodes             int               `json:"nodes_running"`
	LoadBalancers     int               `json:"loadbalancers_forwarding"`
	FloatingIPs       int               `json:"floating_ips_forwarding"`
	Problems          map[string]string `json:"problems,omitempty"`
}

// NetworkStatus describes one mirrored network.
type NetworkStatus struct {
	NetworkID string `json:"network_id"`
	Docker    string `json:"docker_network"`
	Bridge    string `json:"bridge"`
	CIDR      string `json:"cidr"`
	Gateway   string `json:"gateway"`
	External  bool   `json:"external"`
}

// New checks the options and returns an agent.
func New(opts Options) (*Agent, error) {
	if opts.Owner == "" {
		opts.Owner = DefaultOwner
	}
	if opts.APITarget == "" {
		opts.APITarget = "127.0.0.1"
	}
	if opts.NodeImageProperty == "" {
		opts.NodeImageProperty = DefaultNodeImageProperty
	}
	if opts.Region == "" {
		opts.Region = "RegionOne"
	}
	if opts.KindNetworks == nil {
		opts.KindNetworks = []string{"kind"}
	}
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.PassTimeout <= 0 {
		opts.PassTimeout = 90 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	var missing []string
	if opts.Network == nil {
		missing = append(missing, "Network")
	}
	if (opts.Compute == nil) != (opts.Image == nil) {
		missing = append(missing, "Compute and Image (both or neither)")
	}
	if opts.Docker == nil {
		missing = append(missing, "Docker")
	}
	if opts.StateDir == "" {
		missing = append(missing, "StateDir")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("dataplane: options missing: %v", missing)
	}
	binaryID := ""
	if opts.AgentBinary != "" {
		raw, err := os.ReadFile(opts.AgentBinary)
		if err != nil {
			return nil, fmt.Errorf("dataplane: agent binary: %w", err)
		}
		sum := sha256.Sum256(raw)
		binaryID = hex.EncodeToString(sum[:8])
	}
	return &Agent{
		binaryID: binaryID,
		opts:     opts, log: opts.Log, neu: neutron{opts.Network}, nova: nova{opts.Compute},
		glance:     &glance{sc: opts.Image, property: opts.NodeImageProperty},
		octa:       &octavia{sc: opts.LoadBalancer},
		forwarders: map[string]*forward.Forwarder{}, nodes: map[string]*nodeState{}, failed: map[string]bool{},
	}, nil
}

// Run reconciles until ctx ends, then stops the forwarders and removes the
// agent's firewall rules. Containers and networks stay: they are the
// cloud's "machines" and outlive a restart of the agent.
func (a *Agent) Run(ctx context.Context) error {
	if err := os.MkdirAll(a.opts.StateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	a.log.Info("data plane agent running", "owner", a.opts.Owner, "interval", a.opts.Interval, "api_ports", a.opts.APIPorts, "docker_api", a.opts.Docker.APIVersion())
	defer a.shutdown()
	t := time.NewTimer(0)
	defer t.Stop()
	pass := 0
	var fails failStreak
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		pass++
		start := time.Now()
		// One pass is bounded: a cloud that hangs (a loaded devcloud's Nova
		// answered after minutes) delays the data plane, never stalls it.
		pctx, cancel := context.WithTimeout(ctx, a.opts.PassTimeout)
		st, err := a.Reconcile(pctx)
		cancel()
		st.Pass = pass
		st.Time = start.UTC()
		st.PassMillis = time.Since(start).Milliseconds()
		st.IntervalMillis = a.opts.Interval.Milliseconds()
		st.PassTimeoutMillis = a.opts.PassTimeout.Milliseconds()
		if ctx.Err() != nil {
			return nil
		}
		fails.record(st.Time, err != nil)
		if err != nil {
			st.Error = err.Error()
			st.FailedPasses, st.FailingSince = fails.n, fails.since
			a.log.Warn("reconcile pass failed; retrying", "pass", pass, "failed_in_a_row", fails.n, "err", err)
		}
		a.writeStatus(st)
		t.Reset(a.opts.Interval)
	}
}

// failStreak counts failed passes in a row and when the first of them began.
type failStreak struct {
	n     int
	since time.Time
}

func (f *failStreak) record(at time.Time, failed bool) {
	if !failed {
		*f = failStreak{}
		return
	}
	if f.n == 0 {
		f.since = at
	}
	f.n++
}

func (a *Agent) shutdown() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, f := range a.forwarders {
		f.Close()
		delete(a.forwarders, k)
	}
	if a.opts.Firewall != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.opts.Firewall.RemoveAll(ctx); err != nil {
			a.log.Error("removing the data plane's firewall rules", "err", err)
		} else {
			a.log.Info("firewall rules removed")
		}
	}
	a.log.Info("data plane agent stopped")
}

func (a *Agent) writeStatus(st Status) {
	a.mu.Lock()
	a.status = st
	a.mu.Unlock()
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return
	}
	_ = fsutil.WriteAtomic(filepath.Join(a.opts.StateDir, "status.json"), raw, 0o644)
}

// Reconcile runs one pass: read OpenStack and Docker, converge Docker.
func (a *Agent) Reconcile(ctx context.Context) (Status, error) {
	st := Status{Problems: map[string]string{}}
	nets, err := a.neu.networks(ctx)
	if err != nil {
		return st, err
	}
	subnets, err := a.neu.subnets(ctx)
	if err != nil {
		return st, err
	}
	specs, problems := netSpecs(nets, subnets)
	for k, v := range problems {
		st.Problems["network "+k] = v
	}
	// Which networks are wanted: every external one (floating IPs, the API
	// forwarders) plus those that nodes and load balancers sit on.
	want := map[string]NetSpec{}
	for id, s := range specs {
		if s.External {
			want[id] = s
		}
	}
	ports, err := a.neu.ports(ctx, "compute:nova", "Octavia")
	if err != nil {
		return st, err
	}
	vipMACs := map[string]string{}
	for _, p := range ports {
		if p.DeviceOwner == "Octavia" {
			vipMACs[p.ID] = p.MACAddress
		}
	}
	var nodes map[string]*node
	if a.opts.Compute != nil {
		servers, err := a.nova.servers(ctx)
		if err != nil {
			return st, err
		}
		var np map[string]string
		nodes, np = a.desiredNodes(ctx, servers, ports)
		for k, v := range np {
			st.Problems["server "+k] = v
		}
		for _, n := range nodes {
			if s, ok := specs[n.network]; ok && !serverGone(n.server) && n.server.Status != "ERROR" {
				want[n.network] = s
			}
		}
	}
	var lbs *lbView
	if a.opts.LoadBalancer != nil {
		if lbs, err = a.octa.view(ctx); err != nil {
			return st, err
		}
		for _, lb := range lbs.lbs {
			if lb.ProvisioningStatus == "PENDING_DELETE" || lb.ProvisioningStatus == "DELETED" {
				continue
			}
			if s, ok := specs[lb.VIPNetworkID]; ok {
				want[lb.VIPNetworkID] = s
			}
		}
	}
	fips, err := a.neu.floatingIPs(ctx)
	if err != nil {
		return st, err
	}
	mirrors, conflicts, err := a.reconcileNetworks(ctx, want)
	for id, msg := range conflicts {
		st.Problems["network "+id] = msg
	}
	if err != nil {
		return st, err
	}
	for _, m := range mirrors {
		st.Networks = append(st.Networks, NetworkStatus{
			NetworkID: m.Spec.NetworkID, Docker: m.DockerName, Bridge: m.Bridge,
			CIDR: m.Spec.CIDR.String(), Gateway: m.Spec.Gateway.String(), External: m.Spec.External,
		})
	}
	sort.Slice(st.Networks, func(i, j int) bool { return st.Networks[i].NetworkID < st.Networks[j].NetworkID })
	st.Forwarders = a.reconcileAPIForwarders(ctx, mirrors)
	var errs []error
	if nodes != nil {
		netProblems := map[string]string{}
		for k, v := range problems {
			netProblems[k] = v
		}
		for k, v := range conflicts {
			netProblems[k] = v
		}
		n, nerrs := a.reconcileNodes(ctx, nodes, mirrors, netProblems)
		st.Nodes = n
		errs = append(errs, nerrs...)
	}
	helperOK := a.helperImagePresent(ctx, &st)
	if lbs != nil {
		errs = append(errs, a.reconcileLBs(ctx, lbs, mirrors, vipMACs, helperOK, &st)...)
	}
	errs = append(errs, a.reconcileFIPs(ctx, fips, mirrors, helperOK, &st)...)
	if a.opts.Firewall != nil {
		if err := a.opts.Firewall.Sync(ctx, a.firewallRules(ctx, mirrors)); err != nil {
			errs = append(errs, err)
		}
	}
	return st, errors.Join(errs...)
}

// reconcileNetworks makes the Docker mirrors of want exist and removes the
// agent's other mirrors once nothing is attached to them. It returns the
// mirrors by Neutron network ID and, per network that cannot be mirrored,
// why.
func (a *Agent) reconcileNetworks(ctx context.Context, want map[string]NetSpec) (map[string]mirror, map[string]string, error) {
	all, err := a.opts.Docker.NetworkList(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	have := map[string]mirror{}
	gone := map[string]bool{} // Docker IDs removed in this pass
	var errs []error
	for _, n := range all {
		if n.Labels[LabelOwner] != a.opts.Owner || n.Labels[LabelKind] != KindNetwork {
			continue
		}
		m, ok := mirrorFromDocker(n)
		if !ok {
			continue
		}
		w, wanted := want[m.Spec.NetworkID]
		if wanted && w.CIDR == m.Spec.CIDR && w.Gateway == m.Spec.Gateway && w.SubnetID == m.Spec.SubnetID {
			m.Spec = w
			have[w.NetworkID] = m
			continue
		}
		// Containers go first (their reconcilers remove them); the list
		// does not say whether any are attached, an inspect does.
		if full, err := a.opts.Docker.NetworkInspect(ctx, n.ID); err == nil && len(full.Containers) > 0 {
			a.log.Debug("network no longer wanted but containers are still attached", "network", n.Name, "containers", len(full.Containers))
			continue
		}
		a.log.Info("removing Docker network", "network", n.Name, "neutron_network", m.Spec.NetworkID, "reason", reasonGone(wanted))
		if err := a.opts.Docker.NetworkRemove(ctx, n.ID); err != nil {
			errs = append(errs, fmt.Errorf("remove Docker network %s: %w", n.Name, err))
			continue
		}
		gone[n.ID] = true
	}
	conflicts := map[string]string{}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids) // deterministic: with overlaps, the same network wins every pass
	for _, id := range ids {
		if _, ok := have[id]; ok {
			continue
		}
		spec := want[id]
		// Our mirrors of networks nobody needs any more are on their way
		// out (their containers go first): wait for them instead of
		// refusing the network.
		stale := map[string]bool{}
		for k := range gone {
			stale[k] = true
		}
		for _, n := range all {
			if n.Labels[LabelOwner] == a.opts.Owner && n.Labels[LabelKind] == KindNetwork {
				if _, wanted := want[n.Labels[LabelNetworkID]]; !wanted {
					stale[n.ID] = true
				}
			}
		}
		if ov := overlapping(all, spec.CIDR, stale); len(ov) == 0 && len(overlapping(all, spec.CIDR, gone)) > 0 {
			a.log.Info("network waits for an old mirror with an overlapping CIDR to go", "neutron_network", id, "cidr", spec.CIDR)
			continue
		}
		if ov := overlapping(all, spec.CIDR, stale); len(ov) > 0 {
			conflicts[id] = fmt.Sprintf("Neutron network %s (%s, subnet %s) cannot be mirrored on this host: its CIDR overlaps %s; devcloud's data plane puts every network on one machine, so networks that carry nodes, load balancers or floating IPs need distinct CIDRs",
				spec.Name, id, spec.CIDR, joinAnd(ov))
			continue
		}
		ds := mirrorSpec(a.opts.Owner, spec)
		a.log.Info("creating Docker network", "network", ds.Name, "neutron_network", id, "cidr", spec.CIDR, "gateway", spec.Gateway, "bridge", BridgeName(spec))
		did, err := a.opts.Docker.NetworkCreate(ctx, ds)
		if err != nil {
			conflicts[id] = fmt.Sprintf("Neutron network %s (%s): creating its Docker network failed: %v", spec.Name, id, err)
			continue
		}
		m := mirror{DockerID: did, DockerName: ds.Name, Bridge: BridgeName(spec), Spec: spec}
		have[id] = m
		all = append(all, docker.Network{ID: did, Name: ds.Name, IPAM: *ds.IPAM, Labels: ds.Labels})
	}
	return have, conflicts, errors.Join(errs...)
}

// helperImagePresent says whether load balancer and floating IP helpers can
// run; without the image they are a problem in the status, not an error of
// every pass.
func (a *Agent) helperImagePresent(ctx context.Context, st *Status) bool {
	if a.opts.HelperImage == "" {
		st.Problems["helper image"] = "no helper image configured: load balancers and floating IPs do not forward"
		return false
	}
	if _, err := a.opts.Docker.ImageInspect(ctx, a.opts.HelperImage); err != nil {
		st.Problems["helper image"] = fmt.Sprintf("helper image %s is not in the Docker engine (%v): load balancers and floating IPs do not forward until it is (make kind-image)", a.opts.HelperImage, err)
		return false
	}
	return true
}

func reasonGone(wanted bool) string {
	if wanted {
		return "its Neutron subnet changed"
	}
	return "nothing needs it any more"
}

func joinAnd(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	s := items[0]
	for _, it := range items[1 : len(items)-1] {
		s += ", " + it
	}
	return s + " and " + items[len(items)-1]
}

// reconcileAPIForwarders listens on the gateway of every external mirror
// for each API port and closes forwarders of gateways that went away.
func (a *Agent) reconcileAPIForwarders(ctx context.Context, mirrors map[string]mirror) []string {
	want := map[string]string{} // listen → target
	for _, m := range mirrors {
		if !m.Spec.External {
			continue
		}
		for _, p := range a.opts.APIPorts {
			want[netip.AddrPortFrom(m.Spec.Gateway, uint16(p)).String()] = a.opts.APITarget + ":" + strconv.Itoa(p)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, f := range a.forwarders {
		if _, ok := want[k]; !ok {
			a.log.Info("closing API forwarder", "listen", k)
			f.Close()
			delete(a.forwarders, k)
		}
	}
	var out []string
	for listen, target := range want {
		if f, ok := a.forwarders[listen]; ok {
			f.SetBackends([]string{target})
			out = append(out, listen+" -> "+target)
			continue
		}
		f, err := forward.Listen(ctx, listen, []string{target}, a.log.With("forwarder", listen))
		if err != nil {
			a.log.Warn("cannot listen for API forwarding yet; retrying next pass", "listen", listen, "err", err)
			continue
		}
		a.log.Info("API forwarder listening", "listen", listen, "target", target)
		a.forwarders[listen] = f
		out = append(out, listen+" -> "+target)
	}
	sort.Strings(out)
	return out
}
