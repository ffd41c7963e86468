//go:build integration

package dataplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/listeners"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/monitors"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/pools"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/capilab/capilab/internal/dataplane"
	"github.com/capilab/capilab/tests/devcloudtest"
)

// tenant is the OpenStack side of one test cluster, as the member user.
type tenant struct {
	t       *testing.T
	cloud   devcloudtest.Cloud
	compute *gophercloud.ServiceClient
	net     *gophercloud.ServiceClient
	lbc     *gophercloud.ServiceClient
	img     *gophercloud.ServiceClient

	publicID string
	network  *networks.Network
	subnet   *subnets.Subnet
}

// Budgets of the waits on devcloud: generous, for a loaded 2-core machine
// (seen: a server ACTIVE after 2 to 11 minutes while Nova answered a
// listing in 45 s).
const (
	serverTimeout = 12 * time.Minute
	lbTimeout     = 10 * time.Minute
)

// retryTransient retries a request devcloud did not process or whose
// answer was lost, while that is safe: an answer 503 (the service, or
// Keystone behind its auth middleware, was unavailable: nothing was done)
// for every method; 502/504 and a lost connection or cut answer only for
// methods that may be repeated (not POST: a create whose answer was lost
// may have been made). At most 6 tries, 2 s, 4 s, ... apart, within ctx.
func retryTransient(log *slog.Logger) gophercloud.RetryFunc {
	return func(ctx context.Context, method, url string, _ *gophercloud.RequestOpts, err error, failCount uint) error {
		if failCount > 5 || ctx.Err() != nil || !transient(method, err) {
			return err
		}
		log.Warn("OpenStack request failed transiently; retrying", "method", method, "url", url, "try", failCount, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(failCount) * 2 * time.Second):
			return nil
		}
	}
}

func transient(method string, err error) bool {
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		switch code.Actual {
		case http.StatusServiceUnavailable:
			return true
		case http.StatusBadGateway, http.StatusGatewayTimeout:
			return method != http.MethodPost
		}
		return false
	}
	return method != http.MethodPost
}

func newTenant(t *testing.T) *tenant {
	c := devcloudtest.Member()
	compute := c.Compute(t)
	compute.Microversion = "2.90"
	tn := &tenant{t: t, cloud: c, compute: compute, net: c.Network(t), lbc: c.LoadBalancer(t), img: c.Image(t)}
	for _, sc := range []*gophercloud.ServiceClient{tn.compute, tn.net, tn.lbc, tn.img} {
		sc.ProviderClient.RetryFunc = retryTransient(testLog(t))
	}
	pages, err := networks.List(tn.net, networks.ListOpts{Name: "public"}).AllPages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	nets, err := networks.ExtractNetworks(pages)
	if err != nil || len(nets) != 1 {
		t.Fatalf("network public: %v (%d found)", err, len(nets))
	}
	tn.publicID = nets[0].ID
	return tn
}

// nodeImage registers a Glance image that marks servers as nodes: tiny
// data, the node-image property naming the container image.
func (tn *tenant) nodeImage(container string) string {
	t := tn.t
	ctx := t.Context()
	name := devcloudtest.Name(t, "node-image")
	img, err := images.Create(ctx, tn.img, images.CreateOpts{
		Name: name, DiskFormat: "raw", ContainerFormat: "bare",
		Properties: map[string]string{dataplane.DefaultNodeImageProperty: container},
	}).Extract()
	if err != nil {
		t.Fatalf("create image: %v", err)
	}
	devcloudtest.Cleanup(t, "image "+name, func(ctx context.Context) error { return images.Delete(ctx, tn.img, img.ID).ExtractErr() })
	if err := imagedata.Upload(ctx, tn.img, img.ID, bytes.NewReader([]byte{0})).ExtractErr(); err != nil {
		t.Fatalf("upload image: %v", err)
	}
	devcloudtest.WaitFor(t, time.Minute, "image "+name+" to be active", func(ctx context.Context) (bool, error) {
		got, err := images.Get(ctx, tn.img, img.ID).Extract()
		return err == nil && got.Status == images.ImageStatusActive, err
	})
	return img.ID
}

// networkWithRouter makes the cluster's network, subnet (cidr) and a router
// to public (floating IPs need it), deleted at the end.
func (tn *tenant) networkWithRouter(cidr string) {
	t := tn.t
	ctx := t.Context()
	n, err := networks.Create(ctx, tn.net, networks.CreateOpts{Name: devcloudtest.Name(t, "net")}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	devcloudtest.Cleanup(t, "network "+n.Name, func(ctx context.Context) error { return networks.Delete(ctx, tn.net, n.ID).ExtractErr() })
	s, err := subnets.Create(ctx, tn.net, subnets.CreateOpts{Name: devcloudtest.Name(t, "subnet"), NetworkID: n.ID, CIDR: cidr, IPVersion: gophercloud.IPv4}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	devcloudtest.Cleanup(t, "subnet "+s.Name, func(ctx context.Context) error { return subnets.Delete(ctx, tn.net, s.ID).ExtractErr() })
	r, err := routers.Create(ctx, tn.net, routers.CreateOpts{Name: devcloudtest.Name(t, "router"), GatewayInfo: &routers.GatewayInfo{NetworkID: tn.publicID}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	devcloudtest.Cleanup(t, "router "+r.Name, func(ctx context.Context) error { return routers.Delete(ctx, tn.net, r.ID).ExtractErr() })
	if _, err := routers.AddInterface(ctx, tn.net, r.ID, routers.AddInterfaceOpts{SubnetID: s.ID}).Extract(); err != nil {
		t.Fatal(err)
	}
	devcloudtest.Cleanup(t, "router interface", func(ctx context.Context) error {
		_, err := routers.RemoveInterface(ctx, tn.net, r.ID, routers.RemoveInterfaceOpts{SubnetID: s.ID}).Extract()
		return err
	})
	tn.network, tn.subnet = n, s
}

func (tn *tenant) port(name string) *ports.Port {
	t := tn.t
	p, err := ports.Create(t.Context(), tn.net, ports.CreateOpts{Name: devcloudtest.Name(t, name), NetworkID: tn.network.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	devcloudtest.Cleanup(t, "port "+p.Name, func(ctx context.Context) error { return ports.Delete(ctx, tn.net, p.ID).ExtractErr() })
	return p
}

// fip allocates a floating IP on public for portID ("" = unassociated).
func (tn *tenant) fip(portID string) *floatingips.FloatingIP {
	t := tn.t
	f, err := floatingips.Create(t.Context(), tn.net, floatingips.CreateOpts{FloatingNetworkID: tn.publicID, PortID: portID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	devcloudtest.Cleanup(t, "floating IP "+f.FloatingIP, func(ctx context.Context) error { return floatingips.Delete(ctx, tn.net, f.ID).ExtractErr() })
	return f
}

func (tn *tenant) flavor(name string) string {
	t := tn.t
	pages, err := flavors.ListDetail(tn.compute, nil).AllPages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := flavors.ExtractFlavors(pages)
	for _, f := range fs {
		if f.Name == name {
			return f.ID
		}
	}
	t.Fatalf("no flavor %s", name)
	return ""
}

// server boots a server on port with user data; it is deleted (and waited
// for) at the end unless the test deleted it itself.
func (tn *tenant) server(name, imageID, portID string, userData []byte) *servers.Server {
	t := tn.t
	s, err := servers.Create(t.Context(), tn.compute, servers.CreateOpts{
		Name: name, FlavorRef: tn.flavor("SCS-2V-4-20s"), ImageRef: imageID,
		Networks: []servers.Network{{Port: portID}}, UserData: userData,
	}, nil).Extract()
	if err != nil {
		t.Fatalf("create server %s: %v", name, err)
	}
	devcloudtest.Cleanup(t, "server "+name, func(ctx context.Context) error { return tn.deleteServer(ctx, s.ID) })
	return s
}

func (tn *tenant) deleteServer(ctx context.Context, id string) error {
	if err := servers.Delete(ctx, tn.compute, id).ExtractErr(); err != nil {
		return err
	}
	return devcloudtest.Poll(ctx, serverTimeout, time.Second, "server "+id+" to be deleted", func(ctx context.Context) (bool, error) {
		_, err := servers.Get(ctx, tn.compute, id).Extract()
		if devcloudtest.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

func (tn *tenant) waitActive(id string) *servers.Server {
	t := tn.t
	var got *servers.Server
	devcloudtest.WaitFor(t, serverTimeout, "server "+id+" to be ACTIVE", func(ctx context.Context) (bool, error) {
		var err error
		got, err = servers.Get(ctx, tn.compute, id).Extract()
		if err != nil {
			return false, err
		}
		if got.Status == "ERROR" {
			t.Fatalf("server %s went to ERROR: %+v", id, got.Fault)
		}
		return got.Status == "ACTIVE", nil
	})
	return got
}

// apiLB is the Kubernetes API load balancer in front of the control plane,
// shaped as CAPO makes it: VIP on the cluster subnet, TCP listener 6443,
// round-robin pool, TCP health monitor.
type apiLB struct {
	lb       *loadbalancers.LoadBalancer
	poolID   string
	activeAt time.Time // when the test first saw it ACTIVE (before its listener)
}

func (tn *tenant) apiLoadBalancer() *apiLB {
	t := tn.t
	ctx := t.Context()
	name := devcloudtest.Name(t, "kubeapi")
	lb, err := loadbalancers.Create(ctx, tn.lbc, loadbalancers.CreateOpts{Name: name, VipSubnetID: tn.subnet.ID}).Extract()
	if err != nil {
		t.Fatalf("create load balancer: %v", err)
	}
	devcloudtest.Cleanup(t, "load balancer "+name, func(ctx context.Context) error { return tn.deleteLB(ctx, lb.ID) })
	tn.waitLB(lb.ID)
	activeAt := time.Now()
	l, err := listeners.Create(ctx, tn.lbc, listeners.CreateOpts{Name: name + "-6443", LoadbalancerID: lb.ID, Protocol: listeners.ProtocolTCP, ProtocolPort: 6443}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	tn.waitLB(lb.ID)
	p, err := pools.Create(ctx, tn.lbc, pools.CreateOpts{Name: name + "-6443", ListenerID: l.ID, Protocol: pools.ProtocolTCP, LBMethod: pools.LBMethodRoundRobin}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	tn.waitLB(lb.ID)
	if _, err := monitors.Create(ctx, tn.lbc, monitors.CreateOpts{PoolID: p.ID, Type: monitors.TypeTCP, Delay: 2, Timeout: 1, MaxRetries: 1, MaxRetriesDown: 2}).Extract(); err != nil {
		t.Fatal(err)
	}
	got := tn.waitLB(lb.ID)
	return &apiLB{lb: got, poolID: p.ID, activeAt: activeAt}
}

func (tn *tenant) addMember(a *apiLB, address string) string {
	t := tn.t
	m, err := pools.CreateMember(t.Context(), tn.lbc, a.poolID, pools.CreateMemberOpts{Address: address, ProtocolPort: 6443, SubnetID: tn.subnet.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	tn.waitLB(a.lb.ID)
	return m.ID
}

func (tn *tenant) waitLB(id string) *loadbalancers.LoadBalancer {
	t := tn.t
	var lb *loadbalancers.LoadBalancer
	devcloudtest.WaitFor(t, lbTimeout, "load balancer "+id+" to be ACTIVE", func(ctx context.Context) (bool, error) {
		var err error
		lb, err = loadbalancers.Get(ctx, tn.lbc, id).Extract()
		if err != nil {
			return false, err
		}
		if lb.ProvisioningStatus == "ERROR" {
			return false, fmt.Errorf("load balancer %s went to ERROR", id)
		}
		return lb.ProvisioningStatus == "ACTIVE", nil
	})
	return lb
}

func (tn *tenant) deleteLB(ctx context.Context, id string) error {
	// Octavia refuses (409) to delete a load balancer while it is PENDING_*:
	// one that OCCM or the agent still works on. Asked again until it can.
	err := devcloudtest.Poll(ctx, lbTimeout, 2*time.Second, "load balancer "+id+" to accept its delete (not PENDING_*)", func(ctx context.Context) (bool, error) {
		err := loadbalancers.Delete(ctx, tn.lbc, id, loadbalancers.DeleteOpts{Cascade: true}).ExtractErr()
		switch {
		case err == nil || devcloudtest.IsNotFound(err):
			return true, nil
		case devcloudtest.IsConflict(err):
			return false, nil
		}
		return false, err
	})
	if err != nil {
		return err
	}
	return devcloudtest.Poll(ctx, lbTimeout, time.Second, "load balancer "+id+" to be deleted", func(ctx context.Context) (bool, error) {
		lb, err := loadbalancers.Get(ctx, tn.lbc, id).Extract()
		if devcloudtest.IsNotFound(err) || (err == nil && lb.ProvisioningStatus == "DELETED") {
			return true, nil
		}
		return false, err
	})
}

// get reads a URL with a short timeout (plain HTTP through VIPs and FIPs).
func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		return b.String(), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b.String(), nil
}
