package cleanup

import (
	"context"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// Neutron: networks, subnets, routers (and their interfaces), ports,
// security groups, floating IPs. All listings are scoped to the project.

func listNetworks(ctx context.Context, c *clients) ([]Resource, error) {
	pages, err := networks.List(c.network, networks.ListOpts{ProjectID: c.projectID}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := networks.ExtractNetworks(pages)
	out := make([]Resource, 0, len(all))
	for _, n := range all {
		out = append(out, Resource{Type: Network, ID: n.ID, Name: n.Name, Description: n.Description, Status: n.Status, CreatedAt: n.CreatedAt, Tags: n.Tags})
	}
	return out, err
}

func deleteNetwork(ctx context.Context, c *clients, r *Resource) error {
	return networks.Delete(ctx, c.network, r.ID).ExtractErr()
}

func listSubnets(ctx context.Context, c *clients) ([]Resource, error) {
	pages, err := subnets.List(c.network, subnets.ListOpts{ProjectID: c.projectID}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := subnets.ExtractSubnets(pages)
	out := make([]Resource, 0, len(all))
	for _, s := range all {
		out = append(out, Resource{Type: Subnet, ID: s.ID, Name: s.Name, Description: s.Description, NetworkID: s.NetworkID, CreatedAt: s.CreatedAt, Tags: s.Tags})
	}
	return out, err
}

func deleteSubnet(ctx context.Context, c *clients, r *Resource) error {
	return subnets.Delete(ctx, c.network, r.ID).ExtractErr()
}

func listRouters(ctx context.Context, c *clients) ([]Resource, error) {
	pages, err := routers.List(c.network, routers.ListOpts{ProjectID: c.projectID}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := routers.ExtractRouters(pages)
	out := make([]Resource, 0, len(all))
	for _, rt := range all {
		out = append(out, Resource{Type: Router, ID: rt.ID, Name: rt.Name, Description: rt.Description, Status: rt.Status, CreatedAt: rt.CreatedAt, Tags: rt.Tags})
	}
	return out, err
}

func deleteRouter(ctx context.Context, c *clients, r *Resource) error {
	return routers.Delete(ctx, c.network, r.ID).ExtractErr()
}

// Ports that are deleted with their owner never appear: a network's DHCP
// port, a router's gateway, a floating IP's own port.
var skippedPortOwners = map[string]bool{
	"network:dhcp": true, "network:router_gateway": true, "network:floatingip": true,
	"network:router_centralized_snat": true, "network:router_ha_interface": true,
}

var routerInterfaceOwners = map[string]bool{
	"network:router_interface": true, "network:router_interface_distributed": true, "network:ha_router_replicated_interface": true,
}

// listPorts returns ports and router interfaces (ports a router owns),
// from one listing.
func listPorts(ctx context.Context, c *clients) ([]Resource, error) {
	pages, err := ports.List(c.network, ports.ListOpts{ProjectID: c.projectID}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := ports.ExtractPorts(pages)
	out := make([]Resource, 0, len(all))
	for _, p := range all {
		if skippedPortOwners[p.DeviceOwner] {
			continue
		}
		r := Resource{Type: Port, ID: p.ID, Name: p.Name, Description: p.Description, Status: p.Status, CreatedAt: p.CreatedAt, Tags: p.Tags,
			NetworkID: p.NetworkID, DeviceID: p.DeviceID, DeviceOwner: p.DeviceOwner, SecurityGroupIDs: p.SecurityGroups}
		for _, ip := range p.FixedIPs {
			r.SubnetIDs = append(r.SubnetIDs, ip.SubnetID)
		}
		if routerInterfaceOwners[p.DeviceOwner] {
			r.Type, r.RouterID, r.PortID = RouterInterface, p.DeviceID, p.ID
		}
		out = append(out, r)
	}
	return out, err
}

func deletePort(ctx context.Context, c *clients, r *Resource) error {
	return ports.Delete(ctx, c.network, r.ID).ExtractErr()
}

// removeRouterInterface detaches the router from the subnet by port; the
// port goes with it. A router that no longer has it answers 404.
func removeRouterInterface(ctx context.Context, c *clients, r *Resource) error {
	_, err := routers.RemoveInterface(ctx, c.network, r.RouterID, routers.RemoveInterfaceOpts{PortID: r.ID}).Extract()
	return err
}

func listSecurityGroups(ctx context.Context, c *clients) ([]Resource, error) {
	pages, err := groups.List(c.network, groups.ListOpts{ProjectID: c.projectID}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := groups.ExtractGroups(pages)
	out := make([]Resource, 0, len(all))
	for _, g := range all {
		out = append(out, Resource{Type: SecurityGroup, ID: g.ID, Name: g.Name, Description: g.Description, CreatedAt: g.CreatedAt, Tags: g.Tags})
	}
	return out, err
}

func deleteSecurityGroup(ctx context.Context, c *clients, r *Resource) error {
	return groups.Delete(ctx, c.network, r.ID).ExtractErr()
}

func listFloatingIPs(ctx context.Context, c *clients) ([]Resource, error) {
	pages, err := floatingips.List(c.network, floatingips.ListOpts{ProjectID: c.projectID}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := floatingips.ExtractFloatingIPs(pages)
	out := make([]Resource, 0, len(all))
	for _, f := range all {
		out = append(out, Resource{Type: FloatingIP, ID: f.ID, Name: f.FloatingIP, Description: f.Description, Status: f.Status, CreatedAt: f.CreatedAt, Tags: f.Tags,
			PortID: f.PortID, RouterID: f.RouterID})
	}
	return out, err
}

func deleteFloatingIP(ctx context.Context, c *clients, r *Resource) error {
	return floatingips.Delete(ctx, c.network, r.ID).ExtractErr()
}
