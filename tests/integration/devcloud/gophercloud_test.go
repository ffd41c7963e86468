//go:build integration

package devcloud

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/listeners"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/pools"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/capilab/capilab/tests/devcloudtest"
)

// The member can create an application credential, authenticate with it, and
// after deleting it can no longer authenticate.
func TestApplicationCredentialLifecycle(t *testing.T) {
	t.Parallel()
	c := devcloudtest.Member()
	pc, _ := c.Provider(t)
	idc, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	user, err := pc.GetAuthResult().(tokens.CreateResult).ExtractUser()
	if err != nil {
		t.Fatalf("user of the token: %v", err)
	}
	name := devcloudtest.Name(t, "appcred")
	ac, err := applicationcredentials.Create(t.Context(), idc, user.ID, applicationcredentials.CreateOpts{
		Name: name, Secret: "capilab-it-" + name,
	}).Extract()
	if err != nil {
		t.Fatalf("create application credential: %v", err)
	}
	devcloudtest.Cleanup(t, "application credential "+name, func(ctx context.Context) error {
		return applicationcredentials.Delete(ctx, idc, user.ID, ac.ID).ExtractErr()
	})

	ao, _ := c.AuthOptions(t)
	acAuth := gophercloud.AuthOptions{IdentityEndpoint: ao.IdentityEndpoint, ApplicationCredentialID: ac.ID, ApplicationCredentialSecret: "capilab-it-" + name}
	if _, err := openstack.AuthenticatedClient(t.Context(), acAuth); err != nil {
		t.Fatalf("authenticate with the new application credential: %v", err)
	}
	if err := applicationcredentials.Delete(t.Context(), idc, user.ID, ac.ID).ExtractErr(); err != nil {
		t.Fatalf("delete application credential: %v", err)
	}
	// Keystone answers 404 (credential not found) for a deleted ID, 401 for a bad secret.
	_, err = openstack.AuthenticatedClient(t.Context(), acAuth)
	if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("authenticate with a deleted application credential: %v, want 401 or 404", err)
	}
}

func TestImageLifecycle(t *testing.T) {
	t.Parallel()
	img := devcloudtest.Member().Image(t)
	name := devcloudtest.Name(t, "image")
	im, err := images.Create(t.Context(), img, images.CreateOpts{
		Name: name, ContainerFormat: "bare", DiskFormat: "raw",
		Properties: map[string]string{"capilab_it": "1"},
	}).Extract()
	if err != nil {
		t.Fatalf("create image: %v", err)
	}
	devcloudtest.Cleanup(t, "image "+name, func(ctx context.Context) error {
		return images.Delete(ctx, img, im.ID).ExtractErr()
	})
	data := bytes.Repeat([]byte("capilab"), 1024)
	if err := imagedata.Upload(t.Context(), img, im.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatalf("upload image data: %v", err)
	}
	devcloudtest.WaitFor(t, imageTimeout, "image "+name+" to be active", func(ctx context.Context) (bool, error) {
		got, err := images.Get(ctx, img, im.ID).Extract()
		if err != nil {
			return false, err
		}
		if got.Status == images.ImageStatusActive && got.SizeBytes != int64(len(data)) {
			t.Fatalf("image size %d, want %d", got.SizeBytes, len(data))
		}
		return got.Status == images.ImageStatusActive, nil
	})
	if err := images.Delete(t.Context(), img, im.ID).ExtractErr(); err != nil {
		t.Fatalf("delete image: %v", err)
	}
	if _, err := images.Get(t.Context(), img, im.ID).Extract(); !devcloudtest.IsNotFound(err) {
		t.Fatalf("get deleted image: %v, want 404", err)
	}
}

// Networks, subnets, routers, ports, security groups and floating IPs, with the
// conflicts production Neutron raises.
func TestNetworkLifecycleAndConflicts(t *testing.T) {
	t.Parallel()
	net := devcloudtest.Member().Network(t)
	ctx := t.Context()
	n, s := tenantNet(t, net, "10.31.0.0/24")

	r, err := routers.Create(ctx, net, routers.CreateOpts{
		Name: devcloudtest.Name(t, "router"), GatewayInfo: &routers.GatewayInfo{NetworkID: publicNetID(t, net)},
	}).Extract()
	if err != nil {
		t.Fatalf("create router with external gateway: %v", err)
	}
	devcloudtest.Cleanup(t, "router "+r.Name, func(ctx context.Context) error {
		return routers.Delete(ctx, net, r.ID).ExtractErr()
	})
	if _, err := routers.AddInterface(ctx, net, r.ID, routers.AddInterfaceOpts{SubnetID: s.ID}).Extract(); err != nil {
		t.Fatalf("add router interface: %v", err)
	}
	removeIface := func(ctx context.Context) error {
		_, err := routers.RemoveInterface(ctx, net, r.ID, routers.RemoveInterfaceOpts{SubnetID: s.ID}).Extract()
		return err
	}
	devcloudtest.Cleanup(t, "router interface", removeIface)

	sg, err := groups.Create(ctx, net, groups.CreateOpts{Name: devcloudtest.Name(t, "sg")}).Extract()
	if err != nil {
		t.Fatalf("create security group: %v", err)
	}
	devcloudtest.Cleanup(t, "security group "+sg.Name, func(ctx context.Context) error {
		return groups.Delete(ctx, net, sg.ID).ExtractErr()
	})
	if _, err := rules.Create(ctx, net, rules.CreateOpts{
		SecGroupID: sg.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolTCP, PortRangeMin: 6443, PortRangeMax: 6443, RemoteIPPrefix: "0.0.0.0/0",
	}).Extract(); err != nil {
		t.Fatalf("create security group rule: %v", err)
	}

	p, err := ports.Create(ctx, net, ports.CreateOpts{
		Name: devcloudtest.Name(t, "port"), NetworkID: n.ID, SecurityGroups: &[]string{sg.ID},
	}).Extract()
	if err != nil {
		t.Fatalf("create port: %v", err)
	}
	deletePort := func(ctx context.Context) error { return ports.Delete(ctx, net, p.ID).ExtractErr() }
	devcloudtest.Cleanup(t, "port "+p.Name, deletePort)

	fip, err := floatingips.Create(ctx, net, floatingips.CreateOpts{FloatingNetworkID: publicNetID(t, net), PortID: p.ID}).Extract()
	if err != nil {
		t.Fatalf("create floating IP on port: %v", err)
	}
	devcloudtest.Cleanup(t, "floating IP "+fip.FloatingIP, func(ctx context.Context) error {
		return floatingips.Delete(ctx, net, fip.ID).ExtractErr()
	})
	if fip.PortID != p.ID || fip.FixedIP != p.FixedIPs[0].IPAddress {
		t.Errorf("floating IP bound to port %s/%s, want %s/%s", fip.PortID, fip.FixedIP, p.ID, p.FixedIPs[0].IPAddress)
	}

	conflicts := []struct {
		what string
		del  func() error
		want int
	}{
		{"network that still has a port", func() error { return networks.Delete(ctx, net, n.ID).ExtractErr() }, http.StatusConflict},
		{"subnet with a router interface", func() error { return subnets.Delete(ctx, net, s.ID).ExtractErr() }, http.StatusConflict},
		{"router with an interface", func() error { return routers.Delete(ctx, net, r.ID).ExtractErr() }, http.StatusConflict},
		{"security group in use by a port", func() error { return groups.Delete(ctx, net, sg.ID).ExtractErr() }, http.StatusConflict},
	}
	for _, c := range conflicts {
		if err := c.del(); !gophercloud.ResponseCodeIs(err, c.want) {
			t.Errorf("delete %s: %v, want HTTP %d", c.what, err, c.want)
		}
	}

	// Disassociate, then the chain deletes in order.
	if _, err := floatingips.Update(ctx, net, fip.ID, floatingips.UpdateOpts{PortID: new(string)}).Extract(); err != nil {
		t.Fatalf("disassociate floating IP: %v", err)
	}
	if err := deletePort(ctx); err != nil {
		t.Fatalf("delete port: %v", err)
	}
	if err := groups.Delete(ctx, net, sg.ID).ExtractErr(); err != nil {
		t.Errorf("delete unused security group: %v", err)
	}
	if err := removeIface(ctx); err != nil {
		t.Fatalf("remove router interface: %v", err)
	}
	if err := subnets.Delete(ctx, net, s.ID).ExtractErr(); err != nil {
		t.Errorf("delete subnet without router interface: %v", err)
	}
}

// A server boots (ACTIVE) with a Neutron port bound by ML2; keypairs and server
// groups work; a volume attaches, refuses deletion while in use, and detaches.
func TestServerKeypairServerGroupVolume(t *testing.T) {
	t.Parallel()
	c := devcloudtest.Member()
	ctx := t.Context()
	compute, net, bs := c.Compute(t), c.Network(t), c.BlockStorage(t)

	kpName := devcloudtest.Name(t, "kp")
	kp, err := keypairs.Create(ctx, compute, keypairs.CreateOpts{Name: kpName}).Extract()
	if err != nil {
		t.Fatalf("create keypair: %v", err)
	}
	devcloudtest.Cleanup(t, "keypair "+kpName, func(ctx context.Context) error {
		return keypairs.Delete(ctx, compute, kpName, nil).ExtractErr()
	})
	if !strings.Contains(kp.PrivateKey, "PRIVATE KEY") {
		t.Errorf("generated keypair has no private key")
	}
	sgName := devcloudtest.Name(t, "group")
	grp, err := servergroups.Create(ctx, compute, servergroups.CreateOpts{Name: sgName, Policy: "soft-anti-affinity"}).Extract()
	if err != nil {
		t.Fatalf("create server group: %v", err)
	}
	devcloudtest.Cleanup(t, "server group "+sgName, func(ctx context.Context) error {
		return servergroups.Delete(ctx, compute, grp.ID).ExtractErr()
	})

	n, _ := tenantNet(t, net, "10.32.0.0/24")
	srv := bootServer(t, c, n.ID)
	if len(srv.Addresses[n.Name].([]any)) != 1 {
		t.Errorf("server addresses %v: want one address on %s", srv.Addresses, n.Name)
	}

	// Port binding (admin view): bound by the openvswitch mechanism driver, status DOWN (no agent).
	adminNet := devcloudtest.Admin().Network(t)
	pages, err := ports.List(adminNet, ports.ListOpts{DeviceID: srv.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var bound []struct {
		ports.Port
		portsbinding.PortsBindingExt
	}
	if err := ports.ExtractPortsInto(pages, &bound); err != nil || len(bound) != 1 {
		t.Fatalf("ports of the server: %d (%v), want 1", len(bound), err)
	}
	if bound[0].VIFType != "ovs" || bound[0].HostID == "" {
		t.Errorf("server port binding vif_type=%q host=%q, want ovs on the compute host", bound[0].VIFType, bound[0].HostID)
	}

	volName := devcloudtest.Name(t, "vol")
	vol, err := volumes.Create(ctx, bs, volumes.CreateOpts{Name: volName, Size: 1, Metadata: map[string]string{"capilab-it": "1"}}, nil).Extract()
	if err != nil {
		t.Fatalf("create volume: %v", err)
	}
	devcloudtest.Cleanup(t, "volume "+volName, func(ctx context.Context) error {
		_ = volumeattach.Delete(ctx, compute, srv.ID, vol.ID).ExtractErr()
		err := devcloudtest.Poll(ctx, volumeTimeout, time.Second, "volume "+volName+" to be deletable", func(ctx context.Context) (bool, error) {
			v, err := volumes.Get(ctx, bs, vol.ID).Extract()
			return err == nil && (v.Status == "available" || v.Status == "error"), err
		})
		if err != nil {
			return err
		}
		return volumes.Delete(ctx, bs, vol.ID, volumes.DeleteOpts{}).ExtractErr()
	})
	waitVolume := func(status string) *volumes.Volume {
		var v *volumes.Volume
		devcloudtest.WaitFor(t, volumeTimeout, "volume "+volName+" to be "+status, func(ctx context.Context) (bool, error) {
			var err error
			v, err = volumes.Get(ctx, bs, vol.ID).Extract()
			if err == nil && v.Status == "error" {
				t.Fatalf("volume %s went to error", volName)
			}
			return err == nil && v.Status == status, err
		})
		return v
	}
	if v := waitVolume("available"); v.Metadata["capilab-it"] != "1" {
		t.Errorf("volume metadata %v, want capilab-it=1", v.Metadata)
	}

	if _, err := volumeattach.Create(ctx, compute, srv.ID, volumeattach.CreateOpts{VolumeID: vol.ID}).Extract(); err != nil {
		t.Fatalf("attach volume: %v", err)
	}
	if v := waitVolume("in-use"); len(v.Attachments) != 1 || v.Attachments[0].ServerID != srv.ID {
		t.Errorf("volume attachments %+v, want one to server %s", v.Attachments, srv.ID)
	}
	if err := volumes.Delete(ctx, bs, vol.ID, volumes.DeleteOpts{}).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Errorf("delete volume in use: %v, want HTTP 400 (refused)", err)
	}
	if err := volumeattach.Delete(ctx, compute, srv.ID, vol.ID).ExtractErr(); err != nil {
		t.Fatalf("detach volume: %v", err)
	}
	waitVolume("available")
	if err := volumes.Delete(ctx, bs, vol.ID, volumes.DeleteOpts{}).ExtractErr(); err != nil {
		t.Fatalf("delete detached volume: %v", err)
	}
}

// A load balancer gets a real Neutron VIP port (devcloud's Octavia network
// driver), a floating IP can be associated with it as OCCM and CAPO do, and the
// port disappears with the load balancer.
func TestLoadBalancerVIPPortAndFloatingIP(t *testing.T) {
	t.Parallel()
	c := devcloudtest.Member()
	ctx := t.Context()
	net, lbc := c.Network(t), c.LoadBalancer(t)
	_, s := tenantNet(t, net, "10.33.0.0/24")
	routeToPublic(t, net, s.ID) // floating IPs need a router from the subnet to the external network

	name := devcloudtest.Name(t, "lb")
	lb, err := loadbalancers.Create(ctx, lbc, loadbalancers.CreateOpts{Name: name, VipSubnetID: s.ID}).Extract()
	if err != nil {
		t.Fatalf("create load balancer: %v", err)
	}
	deleteLB := func(ctx context.Context) error {
		err := loadbalancers.Delete(ctx, lbc, lb.ID, loadbalancers.DeleteOpts{Cascade: true}).ExtractErr()
		if err != nil && !devcloudtest.IsNotFound(err) {
			return err
		}
		return devcloudtest.Poll(ctx, lbTimeout, time.Second, "load balancer "+name+" to be deleted", func(ctx context.Context) (bool, error) {
			l, err := loadbalancers.Get(ctx, lbc, lb.ID).Extract()
			if devcloudtest.IsNotFound(err) || (err == nil && l.ProvisioningStatus == "DELETED") {
				return true, nil
			}
			return false, err
		})
	}
	devcloudtest.Cleanup(t, "load balancer "+name, deleteLB)
	lb = waitLB(t, lbc, lb.ID)

	vip, err := ports.Get(ctx, net, lb.VipPortID).Extract()
	if err != nil {
		t.Fatalf("VIP port %s of the load balancer in Neutron: %v", lb.VipPortID, err)
	}
	if vip.DeviceOwner != "Octavia" || vip.ProjectID != lb.ProjectID || vip.FixedIPs[0].IPAddress != lb.VipAddress {
		t.Errorf("VIP port owner=%q project=%q ip=%q; want Octavia, %q, %q", vip.DeviceOwner, vip.ProjectID, vip.FixedIPs[0].IPAddress, lb.ProjectID, lb.VipAddress)
	}

	lis, err := listeners.Create(ctx, lbc, listeners.CreateOpts{
		Name: devcloudtest.Name(t, "listener"), LoadbalancerID: lb.ID, Protocol: listeners.ProtocolTCP, ProtocolPort: 6443,
	}).Extract()
	if err != nil {
		t.Fatalf("create listener: %v", err)
	}
	waitLB(t, lbc, lb.ID)
	if _, err := pools.Create(ctx, lbc, pools.CreateOpts{
		Name: devcloudtest.Name(t, "pool"), ListenerID: lis.ID, Protocol: pools.ProtocolTCP, LBMethod: pools.LBMethodRoundRobin,
	}).Extract(); err != nil {
		t.Fatalf("create pool: %v", err)
	}
	waitLB(t, lbc, lb.ID)

	fip, err := floatingips.Create(ctx, net, floatingips.CreateOpts{FloatingNetworkID: publicNetID(t, net), PortID: lb.VipPortID}).Extract()
	if err != nil {
		t.Fatalf("associate a floating IP with the VIP port: %v", err)
	}
	devcloudtest.Cleanup(t, "floating IP "+fip.FloatingIP, func(ctx context.Context) error {
		return floatingips.Delete(ctx, net, fip.ID).ExtractErr()
	})
	if fip.FixedIP != lb.VipAddress {
		t.Errorf("floating IP maps to %s, want the VIP %s", fip.FixedIP, lb.VipAddress)
	}
	// No L3 agent runs, yet a floating IP's status follows its association at
	// once, as clients that wait for ACTIVE (CAPO) need.
	fipStatus := func(step, want string) {
		t.Helper()
		got, err := floatingips.Get(ctx, net, fip.ID).Extract()
		if err != nil {
			t.Fatalf("floating IP %s %s: %v", fip.FloatingIP, step, err)
		}
		if got.Status != want {
			t.Errorf("floating IP %s %s: status %s, want %s", fip.FloatingIP, step, got.Status, want)
		}
	}
	fipStatus("created with the VIP port", "ACTIVE")
	if _, err := floatingips.Update(ctx, net, fip.ID, floatingips.UpdateOpts{PortID: new(string)}).Extract(); err != nil {
		t.Fatalf("disassociate the floating IP: %v", err)
	}
	fipStatus("disassociated", "DOWN")
	if _, err := floatingips.Update(ctx, net, fip.ID, floatingips.UpdateOpts{PortID: &lb.VipPortID}).Extract(); err != nil {
		t.Fatalf("associate the floating IP again: %v", err)
	}
	fipStatus("associated again", "ACTIVE")

	if err := deleteLB(ctx); err != nil {
		t.Fatalf("cascade delete: %v", err)
	}
	if _, err := ports.Get(ctx, net, lb.VipPortID).Extract(); !devcloudtest.IsNotFound(err) {
		t.Errorf("VIP port after load balancer deletion: %v, want 404", err)
	}
	got, err := floatingips.Get(ctx, net, fip.ID).Extract()
	if err != nil {
		t.Fatalf("floating IP after its port went: %v", err)
	}
	if got.PortID != "" || got.Status != "DOWN" {
		t.Errorf("floating IP after its port went: port %q, status %s; want disassociated and DOWN", got.PortID, got.Status)
	}
}
