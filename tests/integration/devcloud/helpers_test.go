//go:build integration

package devcloud

import (
	"context"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/capilab/capilab/tests/devcloudtest"
)

// Bounds of the waits; devcloud's fake back ends are much faster than these.
const (
	serverTimeout = 3 * time.Minute
	lbTimeout     = 3 * time.Minute
	volumeTimeout = 2 * time.Minute
	imageTimeout  = time.Minute
)

// tenantNet creates a network with one IPv4 subnet (cidr) and registers their deletion.
func tenantNet(t *testing.T, net *gophercloud.ServiceClient, cidr string) (*networks.Network, *subnets.Subnet) {
	t.Helper()
	ctx := t.Context()
	n, err := networks.Create(ctx, net, networks.CreateOpts{Name: devcloudtest.Name(t, "net")}).Extract()
	if err != nil {
		t.Fatalf("create network: %v", err)
	}
	devcloudtest.Cleanup(t, "network "+n.Name, func(ctx context.Context) error {
		return networks.Delete(ctx, net, n.ID).ExtractErr()
	})
	s, err := subnets.Create(ctx, net, subnets.CreateOpts{
		Name: devcloudtest.Name(t, "subnet"), NetworkID: n.ID, CIDR: cidr, IPVersion: gophercloud.IPv4,
	}).Extract()
	if err != nil {
		t.Fatalf("create subnet: %v", err)
	}
	devcloudtest.Cleanup(t, "subnet "+s.Name, func(ctx context.Context) error {
		return subnets.Delete(ctx, net, s.ID).ExtractErr()
	})
	return n, s
}

// routeToPublic creates a router with a gateway on network public and an interface on
// subnetID, and registers their removal.
func routeToPublic(t *testing.T, net *gophercloud.ServiceClient, subnetID string) {
	t.Helper()
	ctx := t.Context()
	r, err := routers.Create(ctx, net, routers.CreateOpts{
		Name: devcloudtest.Name(t, "router"), GatewayInfo: &routers.GatewayInfo{NetworkID: publicNetID(t, net)},
	}).Extract()
	if err != nil {
		t.Fatalf("create router: %v", err)
	}
	devcloudtest.Cleanup(t, "router "+r.Name, func(ctx context.Context) error {
		return routers.Delete(ctx, net, r.ID).ExtractErr()
	})
	if _, err := routers.AddInterface(ctx, net, r.ID, routers.AddInterfaceOpts{SubnetID: subnetID}).Extract(); err != nil {
		t.Fatalf("add router interface: %v", err)
	}
	devcloudtest.Cleanup(t, "interface of router "+r.Name, func(ctx context.Context) error {
		_, err := routers.RemoveInterface(ctx, net, r.ID, routers.RemoveInterfaceOpts{SubnetID: subnetID}).Extract()
		return err
	})
}

// publicNetID is the external network devcloud creates (floating IPs come from it).
func publicNetID(t *testing.T, net *gophercloud.ServiceClient) string {
	t.Helper()
	pages, err := networks.List(net, networks.ListOpts{Name: "public"}).AllPages(t.Context())
	if err != nil {
		t.Fatalf("list networks: %v", err)
	}
	all, err := networks.ExtractNetworks(pages)
	if err != nil || len(all) != 1 {
		t.Fatalf("external network public: found %d (%v), want 1", len(all), err)
	}
	return all[0].ID
}

func flavorID(t *testing.T, compute *gophercloud.ServiceClient, name string) string {
	t.Helper()
	pages, err := flavors.ListDetail(compute, nil).AllPages(t.Context())
	if err != nil {
		t.Fatalf("list flavors: %v", err)
	}
	all, err := flavors.ExtractFlavors(pages)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if f.Name == name {
			return f.ID
		}
	}
	t.Fatalf("flavor %s not found", name)
	return ""
}

func imageID(t *testing.T, img *gophercloud.ServiceClient, name string) string {
	t.Helper()
	pages, err := images.List(img, images.ListOpts{Name: name}).AllPages(t.Context())
	if err != nil {
		t.Fatalf("list images: %v", err)
	}
	all, err := images.ExtractImages(pages)
	if err != nil || len(all) == 0 {
		t.Fatalf("image %s: %v (found %d)", name, err, len(all))
	}
	return all[0].ID
}

// bootServer creates a server on network netID, waits for ACTIVE and registers a
// deletion that waits until the server (and so its ports) is gone.
func bootServer(t *testing.T, c devcloudtest.Cloud, netID string) *servers.Server {
	t.Helper()
	compute := c.Compute(t)
	name := devcloudtest.Name(t, "vm")
	s, err := servers.Create(t.Context(), compute, servers.CreateOpts{
		Name:      name,
		FlavorRef: flavorID(t, compute, "m1.tiny"),
		ImageRef:  imageID(t, c.Image(t), "devcloud-tiny"),
		Networks:  []servers.Network{{UUID: netID}},
		Metadata:  map[string]string{"capilab-it": "1"},
	}, nil).Extract()
	if err != nil {
		t.Fatalf("create server: %v", err)
	}
	devcloudtest.Cleanup(t, "server "+name, func(ctx context.Context) error {
		if err := servers.Delete(ctx, compute, s.ID).ExtractErr(); err != nil {
			return err
		}
		return devcloudtest.Poll(ctx, serverTimeout, time.Second, "server "+name+" to be deleted", func(ctx context.Context) (bool, error) {
			_, err := servers.Get(ctx, compute, s.ID).Extract()
			if devcloudtest.IsNotFound(err) {
				return true, nil
			}
			return false, err
		})
	})
	var got *servers.Server
	devcloudtest.WaitFor(t, serverTimeout, "server "+name+" to be ACTIVE", func(ctx context.Context) (bool, error) {
		got, err = servers.Get(ctx, compute, s.ID).Extract()
		if err != nil {
			return false, err
		}
		if got.Status == "ERROR" {
			t.Fatalf("server %s went to ERROR: %+v", name, got.Fault)
		}
		return got.Status == "ACTIVE", nil
	})
	return got
}

// waitLB waits until the load balancer is ACTIVE (provisioning) again.
func waitLB(t *testing.T, lbc *gophercloud.ServiceClient, id string) *loadbalancers.LoadBalancer {
	t.Helper()
	var lb *loadbalancers.LoadBalancer
	devcloudtest.WaitFor(t, lbTimeout, "load balancer "+id+" to be ACTIVE", func(ctx context.Context) (bool, error) {
		var err error
		lb, err = loadbalancers.Get(ctx, lbc, id).Extract()
		if err != nil {
			return false, err
		}
		if lb.ProvisioningStatus == "ERROR" {
			t.Fatalf("load balancer %s went to ERROR", id)
		}
		return lb.ProvisioningStatus == "ACTIVE", nil
	})
	return lb
}
