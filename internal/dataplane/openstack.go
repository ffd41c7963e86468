package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

// The OpenStack view the agent reconciles from. Typed only as far as used;
// read with plain GETs as admin (all projects).

// Network is a Neutron network.
type Network struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	External bool     `json:"router:external"`
	Subnets  []string `json:"subnets"`
	Status   string   `json:"status"`
}

// Subnet is a Neutron subnet.
type Subnet struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	NetworkID string `json:"network_id"`
	CIDR      string `json:"cidr"`
	GatewayIP string `json:"gateway_ip"`
	IPVersion int    `json:"ip_version"`
}

// Port is a Neutron port.
type Port struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	NetworkID   string    `json:"network_id"`
	DeviceID    string    `json:"device_id"`
	DeviceOwner string    `json:"device_owner"`
	MACAddress  string    `json:"mac_address"`
	FixedIPs    []FixedIP `json:"fixed_ips"`
}

// FixedIP is one address of a port.
type FixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

// FloatingIP is a Neutron floating IP.
type FloatingIP struct {
	ID                string `json:"id"`
	FloatingIP        string `json:"floating_ip_address"`
	FloatingNetworkID string `json:"floating_network_id"`
	FixedIP           string `json:"fixed_ip_address"`
	PortID            string `json:"port_id"`
	RouterID          string `json:"router_id"`
	ProjectID         string `json:"project_id"`
}

// neutron reads Neutron as admin.
type neutron struct{ sc *gophercloud.ServiceClient }

func (n neutron) get(ctx context.Context, path string, q url.Values, out any) error {
	u := n.sc.ServiceURL(path)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	_, err := n.sc.Get(ctx, u, out, &gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		return fmt.Errorf("neutron GET %s: %w", path, err)
	}
	return nil
}

func (n neutron) networks(ctx context.Context) ([]Network, error) {
	var out struct {
		Networks []Network `json:"networks"`
	}
	q := url.Values{"fields": {"id", "name", "router:external", "subnets", "status"}}
	return out.Networks, n.get(ctx, "networks", q, &out)
}

func (n neutron) subnets(ctx context.Context) ([]Subnet, error) {
	var out struct {
		Subnets []Subnet `json:"subnets"`
	}
	q := url.Values{"fields": {"id", "name", "network_id", "cidr", "gateway_ip", "ip_version"}}
	return out.Subnets, n.get(ctx, "subnets", q, &out)
}

// ports lists the ports of the given device owners (all when none given).
func (n neutron) ports(ctx context.Context, owners ...string) ([]Port, error) {
	var out struct {
		Ports []Port `json:"ports"`
	}
	q := url.Values{"fields": {"id", "name", "network_id", "device_id", "device_owner", "mac_address", "fixed_ips"}}
	for _, o := range owners {
		q.Add("device_owner", o)
	}
	return out.Ports, n.get(ctx, "ports", q, &out)
}

func (n neutron) floatingIPs(ctx context.Context) ([]FloatingIP, error) {
	var out struct {
		FloatingIPs []FloatingIP `json:"floatingips"`
	}
	return out.FloatingIPs, n.get(ctx, "floatingips", nil, &out)
}

// NetSpec is what a Docker network mirroring a Neutron network needs.
type NetSpec struct {
	NetworkID string
	Name      string // Neutron name
	SubnetID  string
	CIDR      netip.Prefix
	Gateway   netip.Addr
	External  bool
}

// netSpecs derives the mirror of each network from its IPv4 subnets. A
// Docker bridge carries one IPv4 subnet; a network with several is
// mirrored with the first that has a gateway, and the others are reported.
func netSpecs(nets []Network, subnets []Subnet) (map[string]NetSpec, map[string]string) {
	byNet := map[string][]Subnet{}
	for _, s := range subnets {
		if s.IPVersion == 4 {
			byNet[s.NetworkID] = append(byNet[s.NetworkID], s)
		}
	}
	specs := map[string]NetSpec{}
	problems := map[string]string{}
	for _, n := range nets {
		ss := byNet[n.ID]
		var chosen *Subnet
		var skipped []string
		for i := range ss {
			s := &ss[i]
			if chosen == nil && s.GatewayIP != "" {
				chosen = s
				continue
			}
			skipped = append(skipped, s.CIDR)
		}
		if chosen == nil {
			if len(ss) > 0 {
				problems[n.ID] = fmt.Sprintf("network %s (%s) has no IPv4 subnet with a gateway: the data plane needs the gateway as the host's side", n.Name, n.ID)
			}
			continue
		}
		p, err := netip.ParsePrefix(chosen.CIDR)
		if err != nil {
			problems[n.ID] = fmt.Sprintf("network %s: subnet %s: cidr %q: %v", n.Name, chosen.ID, chosen.CIDR, err)
			continue
		}
		gw, err := netip.ParseAddr(chosen.GatewayIP)
		if err != nil || !p.Contains(gw) {
			problems[n.ID] = fmt.Sprintf("network %s: subnet %s: gateway %q is not an address in %s", n.Name, chosen.ID, chosen.GatewayIP, chosen.CIDR)
			continue
		}
		specs[n.ID] = NetSpec{NetworkID: n.ID, Name: n.Name, SubnetID: chosen.ID, CIDR: p.Masked(), Gateway: gw, External: n.External}
		if len(skipped) > 0 {
			problems[n.ID] = fmt.Sprintf("network %s: only subnet %s is mirrored (one IPv4 subnet per Docker bridge); not reachable: %s", n.Name, chosen.CIDR, strings.Join(skipped, ", "))
		}
	}
	return specs, problems
}
