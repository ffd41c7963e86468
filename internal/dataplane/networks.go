package dataplane

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"github.com/capilab/capilab/internal/dataplane/docker"
)

// Labels on everything the agent creates in Docker. Ownership is proven by
// LabelOwner; nothing without it is ever changed or removed.
const (
	LabelOwner     = "dev.capilab.dataplane.owner"
	LabelKind      = "dev.capilab.dataplane.kind" // network, node, lb, fip
	LabelNetworkID = "dev.capilab.dataplane.network-id"
	LabelSubnetID  = "dev.capilab.dataplane.subnet-id"
	LabelCIDR      = "dev.capilab.dataplane.cidr"
	LabelGateway   = "dev.capilab.dataplane.gateway"
	LabelServerID  = "dev.capilab.dataplane.server-id"
	LabelLBID      = "dev.capilab.dataplane.loadbalancer-id"
	LabelFIPID     = "dev.capilab.dataplane.floatingip-id"
	LabelSpec      = "dev.capilab.dataplane.spec" // hash of what the container was made from
)

// Kinds of Docker objects the agent makes.
const (
	KindNetwork = "network"
	KindNode    = "node"
	KindLB      = "lb"
	KindFIP     = "fip"
)

var nameCleaner = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// sanitize makes s usable inside a Docker object name.
func sanitize(s string, max int) string {
	s = strings.Trim(nameCleaner.ReplaceAllString(s, "-"), "-.")
	if len(s) > max {
		s = strings.TrimRight(s[:max], "-.")
	}
	if s == "" {
		s = "x"
	}
	return s
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// DockerNetworkName is the name of the Docker network mirroring a Neutron network.
func DockerNetworkName(owner string, spec NetSpec) string {
	return owner + "-" + sanitize(spec.Name, 24) + "-" + short(spec.NetworkID)
}

// BridgeName is the Linux bridge of the mirror: at most 15 characters.
func BridgeName(spec NetSpec) string { return "dc-" + short(spec.NetworkID) }

// mirrorSpec is the Docker network for a Neutron network. Addresses are
// never handed out by Docker: the IP range holds only the gateway, which
// the bridge itself takes, so every container must name its address (the
// fixed IP of its Neutron port). No masquerading: the host routes between
// these networks, as a Neutron router would, and sources stay visible.
func mirrorSpec(owner string, spec NetSpec) docker.NetworkSpec {
	return docker.NetworkSpec{
		Name:   DockerNetworkName(owner, spec),
		Driver: "bridge",
		IPAM: &docker.IPAM{Driver: "default", Config: []docker.IPAMConfig{{
			Subnet:  spec.CIDR.String(),
			Gateway: spec.Gateway.String(),
			IPRange: netip.PrefixFrom(spec.Gateway, spec.Gateway.BitLen()).String(),
		}}},
		Options: map[string]string{
			"com.docker.network.bridge.name":                 BridgeName(spec),
			"com.docker.network.bridge.enable_ip_masquerade": "false",
			"com.docker.network.bridge.enable_icc":           "true",
		},
		Labels: map[string]string{
			LabelOwner:     owner,
			LabelKind:      KindNetwork,
			LabelNetworkID: spec.NetworkID,
			LabelSubnetID:  spec.SubnetID,
			LabelCIDR:      spec.CIDR.String(),
			LabelGateway:   spec.Gateway.String(),
		},
	}
}

// mirror is a Docker network the agent made.
type mirror struct {
	DockerID   string
	DockerName string
	Bridge     string
	Spec       NetSpec
	Containers int
}

func mirrorFromDocker(n docker.Network) (mirror, bool) {
	cidr, err1 := netip.ParsePrefix(n.Labels[LabelCIDR])
	gw, err2 := netip.ParseAddr(n.Labels[LabelGateway])
	if err1 != nil || err2 != nil {
		return mirror{}, false
	}
	return mirror{
		DockerID: n.ID, DockerName: n.Name, Bridge: n.BridgeName(), Containers: len(n.Containers),
		Spec: NetSpec{NetworkID: n.Labels[LabelNetworkID], SubnetID: n.Labels[LabelSubnetID], CIDR: cidr, Gateway: gw},
	}, true
}

// overlapping returns a description of every Docker network (other than
// skip) whose subnet overlaps cidr.
func overlapping(nets []docker.Network, cidr netip.Prefix, skip map[string]bool) []string {
	var out []string
	for _, n := range nets {
		if skip[n.ID] {
			continue
		}
		for _, c := range n.IPAM.Config {
			p, err := netip.ParsePrefix(c.Subnet)
			if err != nil || !p.Addr().Is4() {
				continue
			}
			if p.Overlaps(cidr) {
				what := fmt.Sprintf("Docker network %s (%s)", n.Name, p)
				if n.Labels[LabelOwner] != "" {
					what = fmt.Sprintf("Neutron network %s (%s)", n.Labels[LabelNetworkID], p)
				}
				out = append(out, what)
			}
		}
	}
	sort.Strings(out)
	return out
}
