//go:build integration

// Package cleanup_test proves fullclean and leakcheck against devcloud, as
// the non-admin tenant devcloud-member: it seeds clusters' worth of what
// CAPO, OCCM, Cinder CSI and the lab create, plus foreign look-alikes, runs
// the real targets, and checks with the openstack CLI that nothing owned is
// left and nothing foreign is lost.
package cleanup_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"golang.org/x/sync/errgroup"

	"github.com/capilab/capilab/internal/cleanup"
	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/wait"
	"github.com/capilab/capilab/tests/devcloudtest"
)

// memberCloud is the devcloud tenant every test here acts as.
const memberCloud = "devcloud-member"

// world seeds resources on devcloud and remembers each one as owned (the
// lab under test must delete it) or foreign (it must survive).
type world struct {
	t       testing.TB
	cloud   *cloud.Cloud
	network *gophercloud.ServiceClient
	compute *gophercloud.ServiceClient
	lb      *gophercloud.ServiceClient
	volume  *gophercloud.ServiceClient
	ident   *gophercloud.ServiceClient
	extNet  string
	flavor  string
	image   string

	mu      sync.Mutex
	owned   map[string]string // key → label
	foreign map[string]string
	subnetN int
}

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	c, err := cloud.Connect(ctx, cloud.Options{Cloud: memberCloud, Secrets: logging.NewSecrets()})
	if err != nil {
		t.Fatalf("devcloud must be running (make devcloud-up): %v", err)
	}
	w := &world{t: t, cloud: c, owned: map[string]string{}, foreign: map[string]string{}}
	must := func(sc *gophercloud.ServiceClient, err error) *gophercloud.ServiceClient {
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	w.network = must(c.Network())
	w.compute = must(c.Compute())
	w.lb = must(c.LoadBalancer())
	w.volume = must(c.BlockStorage())
	w.ident = must(c.Identity())
	pages, err := networks.List(w.network, networks.ListOpts{Name: "public"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nets, _ := networks.ExtractNetworks(pages)
	if len(nets) != 1 {
		t.Fatalf("devcloud has no external network \"public\"")
	}
	w.extNet = nets[0].ID
	w.flavor, w.image = lookupFlavorImage(t, w)
	w.subnetN = rand.IntN(200)
	return w
}

func lookupFlavorImage(t testing.TB, w *world) (string, string) {
	out := devcloudtest.Member().CLI(t, "flavor", "show", "m1.tiny", "-f", "value", "-c", "id")
	img := devcloudtest.Member().CLI(t, "image", "show", "devcloud-tiny", "-f", "value", "-c", "id")
	return strings.TrimSpace(out), strings.TrimSpace(img)
}

// uniquePrefix makes a lab prefix no other run uses.
func uniquePrefix(tag string) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 4)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return tag + string(b)
}

func (w *world) record(ours bool, t cleanup.Type, id, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := string(t) + "/" + id
	if ours {
		w.owned[key] = name
	} else {
		w.foreign[key] = name
	}
}

func (w *world) cidr() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.subnetN++
	return fmt.Sprintf("10.%d.%d.0/24", 100+w.subnetN/250, w.subnetN%250)
}

// clusterSpec says what to seed for one cluster.
type clusterSpec struct {
	prefix, name string
	ours         bool
	appcred      bool // seed <prefix>-<name>-appcred with capilab's description
	servers      int
	occmLBs      int
	csiVolumes   int
	attach       bool // attach one CSI volume to a server
	apiLB        bool
}

const capoDesc = "Created by cluster-api-provider-openstack cluster "

// seedCluster creates what CAPO, OCCM, Cinder CSI and the lab create for a
// cluster, with the names and descriptions they use.
func (w *world) seedCluster(ctx context.Context, s clusterSpec) error {
	rn := s.name + "-" + s.name
	rec := func(t cleanup.Type, id, name string) { w.record(s.ours, t, id, name) }
	net, err := networks.Create(ctx, w.network, networks.CreateOpts{Name: "k8s-clusterapi-cluster-" + rn}).Extract()
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	rec(cleanup.Network, net.ID, net.Name)
	sub, err := subnets.Create(ctx, w.network, subnets.CreateOpts{NetworkID: net.ID, Name: net.Name, Description: capoDesc + rn, CIDR: w.cidr(), IPVersion: gophercloud.IPv4}).Extract()
	if err != nil {
		return fmt.Errorf("subnet: %w", err)
	}
	rec(cleanup.Subnet, sub.ID, sub.Name)
	rtr, err := routers.Create(ctx, w.network, routers.CreateOpts{Name: net.Name, Description: capoDesc + rn, GatewayInfo: &routers.GatewayInfo{NetworkID: w.extNet}}).Extract()
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	rec(cleanup.Router, rtr.ID, rtr.Name)
	iface, err := routers.AddInterface(ctx, w.network, rtr.ID, routers.AddInterfaceOpts{SubnetID: sub.ID}).Extract()
	if err != nil {
		return fmt.Errorf("router interface: %w", err)
	}
	rec(cleanup.RouterInterface, iface.PortID, "interface")
	var sgIDs []string
	for _, role := range []string{"controlplane", "worker"} {
		sg, err := groups.Create(ctx, w.network, groups.CreateOpts{Name: "k8s-cluster-" + rn + "-secgroup-" + role}).Extract()
		if err != nil {
			return fmt.Errorf("security group: %w", err)
		}
		rec(cleanup.SecurityGroup, sg.ID, sg.Name)
		sgIDs = append(sgIDs, sg.ID)
	}
	if s.apiLB {
		lb, err := w.loadBalancer(ctx, rec, "k8s-clusterapi-cluster-"+rn+"-kubeapi", capoDesc+rn, sub.ID)
		if err != nil {
			return err
		}
		fip, err := floatingips.Create(ctx, w.network, floatingips.CreateOpts{FloatingNetworkID: w.extNet, PortID: lb.VipPortID, Description: capoDesc + rn}).Extract()
		if err != nil {
			return fmt.Errorf("floating IP on the API load balancer VIP: %w", err)
		}
		rec(cleanup.FloatingIP, fip.ID, fip.FloatingIP)
	}
	// A floating IP CAPO allocated and never associated.
	fip, err := floatingips.Create(ctx, w.network, floatingips.CreateOpts{FloatingNetworkID: w.extNet, Description: capoDesc + rn}).Extract()
	if err != nil {
		return fmt.Errorf("floating IP: %w", err)
	}
	rec(cleanup.FloatingIP, fip.ID, fip.FloatingIP)
	var serverIDs []string
	for i := range s.servers {
		desc := capoDesc + s.name // the short form a live CAPO run wrote on machine ports
		if i%2 == 1 {
			desc = capoDesc + rn
		}
		port, err := ports.Create(ctx, w.network, ports.CreateOpts{NetworkID: net.ID, Name: fmt.Sprintf("%s-md-0-%d", s.name, i), Description: desc, SecurityGroups: &[]string{sgIDs[i%2]}}).Extract()
		if err != nil {
			return fmt.Errorf("machine port: %w", err)
		}
		rec(cleanup.Port, port.ID, port.Name)
		srv, err := servers.Create(ctx, w.compute, servers.CreateOpts{Name: fmt.Sprintf("%s-md-0-%d", s.name, i), FlavorRef: w.flavor, ImageRef: w.image, Networks: []servers.Network{{Port: port.ID}}}, nil).Extract()
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		rec(cleanup.Server, srv.ID, srv.Name)
		serverIDs = append(serverIDs, srv.ID)
	}
	for _, id := range serverIDs {
		if err := w.waitFor(ctx, "server "+id+" to become ACTIVE", func(ctx context.Context) (bool, string, error) {
			srv, err := servers.Get(ctx, w.compute, id).Extract()
			if err != nil {
				return false, "", err
			}
			if srv.Status == "ERROR" {
				return false, srv.Status, fmt.Errorf("server %s went to ERROR", id)
			}
			return srv.Status == "ACTIVE", srv.Status, nil
		}); err != nil {
			return err
		}
	}
	for i := range s.occmLBs {
		svc := fmt.Sprintf("web%d", i)
		lb, err := w.loadBalancer(ctx, rec, fmt.Sprintf("kube_service_%s_default_%s", s.name, svc), fmt.Sprintf("Kubernetes external service default/%s from cluster %s", svc, s.name), sub.ID)
		if err != nil {
			return err
		}
		fip, err := floatingips.Create(ctx, w.network, floatingips.CreateOpts{FloatingNetworkID: w.extNet, PortID: lb.VipPortID, Description: fmt.Sprintf("Floating IP for Kubernetes external service default/%s from cluster %s", svc, s.name)}).Extract()
		if err != nil {
			return fmt.Errorf("floating IP on an OCCM VIP: %w", err)
		}
		rec(cleanup.FloatingIP, fip.ID, fip.FloatingIP)
		sg, err := groups.Create(ctx, w.network, groups.CreateOpts{Name: "lb-sg-" + lb.ID, Description: fmt.Sprintf("Security Group for default/%s Service LoadBalancer in cluster %s", svc, s.name)}).Extract()
		if err != nil {
			return fmt.Errorf("OCCM security group: %w", err)
		}
		rec(cleanup.SecurityGroup, sg.ID, sg.Name)
	}
	for i := range s.csiVolumes {
		v, err := volumes.Create(ctx, w.volume, volumes.CreateOpts{Size: 1, Name: fmt.Sprintf("pvc-%s-%d", s.name, i), Metadata: map[string]string{"cinder.csi.openstack.org/cluster": s.name}}, nil).Extract()
		if err != nil {
			return fmt.Errorf("volume: %w", err)
		}
		rec(cleanup.Volume, v.ID, v.Name)
		if err := w.waitVolume(ctx, v.ID, "available"); err != nil {
			return err
		}
		if i == 0 {
			snap, err := snapshots.Create(ctx, w.volume, snapshots.CreateOpts{VolumeID: v.ID, Name: "snapshot-" + v.Name, Metadata: map[string]string{"cinder.csi.openstack.org/cluster": s.name}}).Extract()
			if err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			rec(cleanup.Snapshot, snap.ID, snap.Name)
			if err := w.waitFor(ctx, "snapshot "+snap.ID+" to become available", func(ctx context.Context) (bool, string, error) {
				x, err := snapshots.Get(ctx, w.volume, snap.ID).Extract()
				if err != nil {
					return false, "", err
				}
				return x.Status == "available", x.Status, nil
			}); err != nil {
				return err
			}
		} else if s.attach && len(serverIDs) > 0 {
			if _, err := volumeattach.Create(ctx, w.compute, serverIDs[0], volumeattach.CreateOpts{VolumeID: v.ID}).Extract(); err != nil {
				return fmt.Errorf("attaching volume: %w", err)
			}
			if err := w.waitVolume(ctx, v.ID, "in-use"); err != nil {
				return err
			}
		}
	}
	for _, role := range []string{"controller", "worker"} {
		g, err := servergroups.Create(ctx, w.compute, servergroups.CreateOpts{Name: s.prefix + "-" + s.name + "-" + role, Policies: []string{"anti-affinity"}}).Extract()
		if err != nil {
			return fmt.Errorf("server group: %w", err)
		}
		rec(cleanup.ServerGroup, g.ID, g.Name)
	}
	sg, err := groups.Create(ctx, w.network, groups.CreateOpts{Name: s.prefix + "-" + s.name + "-cilium"}).Extract()
	if err != nil {
		return fmt.Errorf("cilium security group: %w", err)
	}
	rec(cleanup.SecurityGroup, sg.ID, sg.Name)
	if s.appcred {
		ac, err := applicationcredentials.Create(ctx, w.ident, w.cloud.UserID, applicationcredentials.CreateOpts{
			Name: s.prefix + "-" + s.name + "-appcred", Description: fmt.Sprintf("capilab lab=%s cluster=%s", s.prefix, s.name)}).Extract()
		if err != nil {
			return fmt.Errorf("application credential: %w", err)
		}
		rec(cleanup.AppCred, ac.ID, ac.Name)
	}
	return nil
}

// seedLab creates the lab's own keypair and credential.
func (w *world) seedLab(ctx context.Context, prefix string, ours bool) error {
	kp, err := keypairs.Create(ctx, w.compute, keypairs.CreateOpts{Name: prefix + "-keypair"}).Extract()
	if err != nil {
		return fmt.Errorf("keypair: %w", err)
	}
	w.record(ours, cleanup.Keypair, kp.Name, kp.Name)
	ac, err := applicationcredentials.Create(ctx, w.ident, w.cloud.UserID, applicationcredentials.CreateOpts{Name: prefix + "-appcred", Description: "capilab lab=" + prefix}).Extract()
	if err != nil {
		return fmt.Errorf("lab application credential: %w", err)
	}
	w.record(ours, cleanup.AppCred, ac.ID, ac.Name)
	return nil
}

// loadBalancer creates a load balancer, records it at once (so that the
// test's own cleanup finds it even if waiting fails) and waits for ACTIVE.
func (w *world) loadBalancer(ctx context.Context, rec func(cleanup.Type, string, string), name, desc, subnetID string) (*loadbalancers.LoadBalancer, error) {
	lb, err := loadbalancers.Create(ctx, w.lb, loadbalancers.CreateOpts{Name: name, Description: desc, VipSubnetID: subnetID}).Extract()
	if err != nil {
		return nil, fmt.Errorf("load balancer %s: %w", name, err)
	}
	rec(cleanup.LoadBalancer, lb.ID, lb.Name)
	err = w.waitFor(ctx, "load balancer "+name+" to become ACTIVE", func(ctx context.Context) (bool, string, error) {
		x, err := loadbalancers.Get(ctx, w.lb, lb.ID).Extract()
		if err != nil {
			return false, "", err
		}
		if x.ProvisioningStatus == "ERROR" {
			return false, "ERROR", fmt.Errorf("load balancer %s went to ERROR", name)
		}
		lb = x
		return x.ProvisioningStatus == "ACTIVE", x.ProvisioningStatus, nil
	})
	return lb, err
}

func (w *world) waitVolume(ctx context.Context, id, status string) error {
	return w.waitFor(ctx, "volume "+id+" to become "+status, func(ctx context.Context) (bool, string, error) {
		v, err := volumes.Get(ctx, w.volume, id).Extract()
		if err != nil {
			return false, "", err
		}
		if v.Status == "error" {
			return false, v.Status, fmt.Errorf("volume %s went to error", id)
		}
		return v.Status == status, v.Status, nil
	})
}

func (w *world) waitFor(ctx context.Context, what string, cond wait.Condition) error {
	return wait.For(ctx, logging.Discard(), wait.Spec{What: what, Timeout: 5 * time.Minute, Interval: time.Second}, cond)
}

// seed runs cluster seeds concurrently and fails the test on any error.
func (w *world) seed(specs []clusterSpec, labs map[string]bool) {
	w.t.Helper()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(4)
	for _, s := range specs {
		g.Go(func() error {
			if err := w.seedCluster(ctx, s); err != nil {
				return fmt.Errorf("seeding cluster %s of lab %s: %w", s.name, s.prefix, err)
			}
			return nil
		})
	}
	for prefix, ours := range labs {
		g.Go(func() error { return w.seedLab(ctx, prefix, ours) })
	}
	err := g.Wait()
	w.t.Cleanup(w.removeAll) // whatever was seeded, even on failure
	if err != nil {
		w.t.Fatal(err)
	}
}

// removeAll deletes whatever is left of the seeded resources, foreign
// ones included, with the cleanup engine itself (IDs only, so nothing
// else in the project is touched).
func (w *world) removeAll() {
	ctx := context.Background()
	b, err := cleanup.NewOpenStack(w.cloud)
	if err != nil {
		w.t.Errorf("test cleanup: %v", err)
		return
	}
	all, err := cleanup.Discover(ctx, b, 8)
	if err != nil {
		w.t.Errorf("test cleanup: %v", err)
		return
	}
	var mine []cleanup.Owned
	w.mu.Lock()
	for _, r := range all {
		_, o := w.owned[r.Key()]
		_, f := w.foreign[r.Key()]
		if o || f {
			mine = append(mine, cleanup.Owned{Resource: r, Cluster: "seeded", Rule: "test"})
		}
	}
	w.mu.Unlock()
	plan := cleanup.MakePlan(mine, cleanup.Filter{})
	res := cleanup.Execute(ctx, b, plan, cleanup.ExecOptions{Parallelism: 8, DeleteTimeout: 10 * time.Minute, PollInterval: time.Second})
	for _, s := range res.Steps {
		if s.Outcome != cleanup.OutcomeDeleted {
			w.t.Errorf("test cleanup: %s %s (%s): %s: %s", s.Type, s.Name, s.ID, s.Outcome, s.Error)
		}
	}
}
