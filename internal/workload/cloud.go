package workload

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	computequotas "github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	lbquotas "github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/quotas"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/capilab/capilab/internal/cloud"
)

// ErrNotFound is a cloud object that does not exist.
var ErrNotFound = errors.New("not found")

// Flavor is what capilab needs to know of a Nova flavor.
type Flavor struct {
	Name          string
	VCPUs, RAMMiB int
	DiskGiB       int
}

// Image is what capilab needs to know of a Glance image.
type Image struct {
	ID, Name  string
	SizeBytes int64
	Status    string
}

// Quota is the project's limits and usage of what clusters consume
// (-1: unlimited).
type Quota struct {
	Instances, Cores, RAMMiB     Usage
	Volumes, GigabytesVolumes    Usage
	LoadBalancers, FloatingIPs   Usage
	SecurityGroups, ServerGroups Usage
}

// Usage is one quota: limit and what is in use.
type Usage struct{ Limit, InUse int }

// Free is what is left (-1: unlimited).
func (u Usage) Free() int {
	if u.Limit < 0 {
		return -1
	}
	return u.Limit - u.InUse
}

// Cloud is what creating and deleting a cluster asks of OpenStack beyond
// what CAPO does itself.
type Cloud interface {
	Name() string
	Flavor(ctx context.Context, name string) (Flavor, error)
	Image(ctx context.Context, name string) (Image, error)
	ExternalNetwork(ctx context.Context, nameOrID string) (string, error)
	Quota(ctx context.Context) (Quota, error)
	// EnsureServerGroup returns the ID of the server group of that name,
	// creating it with the policy when missing.
	EnsureServerGroup(ctx context.Context, name, policy string) (string, error)
	// DeleteServerGroups deletes every server group of that name; none is fine.
	DeleteServerGroups(ctx context.Context, name string) error
	// EnsureSecurityGroup makes the group exist with exactly these ingress rules.
	EnsureSecurityGroup(ctx context.Context, name, description string, rules []Rule) error
	DeleteSecurityGroups(ctx context.Context, name string) error
	// SubnetCIDRs are the CIDRs of every subnet the credentials see.
	SubnetCIDRs(ctx context.Context) ([]string, error)
	// ServerFault is Nova's fault message of a server ("" when none).
	ServerFault(ctx context.Context, id string) (string, error)
}

// Rule is one ingress rule.
type Rule struct {
	Protocol       string // tcp, udp
	Port           int
	RemoteIPPrefix string
}

// OpenStack is Cloud on gophercloud (retries and transient errors are the
// transport's: internal/cloud).
type OpenStack struct{ C *cloud.Cloud }

// Name is the cloud's name.
func (o OpenStack) Name() string { return o.C.Name }

func (o OpenStack) compute() (*gophercloud.ServiceClient, error) { return o.C.Compute() }

func isNotFound(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusNotFound) }

// Flavor finds a flavor by name (or ID).
func (o OpenStack) Flavor(ctx context.Context, name string) (Flavor, error) {
	c, err := o.compute()
	if err != nil {
		return Flavor{}, err
	}
	pages, err := flavors.ListDetail(c, flavors.ListOpts{AccessType: flavors.AllAccess}).AllPages(ctx)
	if err != nil {
		return Flavor{}, fmt.Errorf("cloud %s: list flavors: %w", o.C.Name, err)
	}
	all, err := flavors.ExtractFlavors(pages)
	if err != nil {
		return Flavor{}, err
	}
	for _, f := range all {
		if f.Name == name || f.ID == name {
			return Flavor{Name: f.Name, VCPUs: f.VCPUs, RAMMiB: f.RAM, DiskGiB: f.Disk}, nil
		}
	}
	return Flavor{}, fmt.Errorf("flavor %s on cloud %s: %w", name, o.C.Name, ErrNotFound)
}

// Image finds an active image by name.
func (o OpenStack) Image(ctx context.Context, name string) (Image, error) {
	g, err := o.C.Image()
	if err != nil {
		return Image{}, err
	}
	pages, err := images.List(g, images.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return Image{}, fmt.Errorf("cloud %s: list images: %w", o.C.Name, err)
	}
	all, err := images.ExtractImages(pages)
	if err != nil {
		return Image{}, err
	}
	for _, img := range all {
		if img.Status == images.ImageStatusActive {
			return Image{ID: img.ID, Name: img.Name, SizeBytes: img.SizeBytes, Status: string(img.Status)}, nil
		}
	}
	return Image{}, fmt.Errorf("active image %s on cloud %s: %w", name, o.C.Name, ErrNotFound)
}

// ServerFault is Nova's fault message of server id ("" when it has none).
func (o OpenStack) ServerFault(ctx context.Context, id string) (string, error) {
	c, err := o.compute()
	if err != nil {
		return "", err
	}
	srv, err := servers.Get(ctx, c, id).Extract()
	if err != nil {
		return "", fmt.Errorf("cloud %s: server %s: %w", o.C.Name, id, err)
	}
	return srv.Fault.Message, nil
}

// SubnetCIDRs lists the CIDR of every subnet the credentials see.
func (o OpenStack) SubnetCIDRs(ctx context.Context) ([]string, error) {
	n, err := o.C.Network()
	if err != nil {
		return nil, err
	}
	pages, err := subnets.List(n, subnets.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("cloud %s: list subnets: %w", o.C.Name, err)
	}
	all, err := subnets.ExtractSubnets(pages)
	if err != nil {
		return nil, fmt.Errorf("cloud %s: list subnets: %w", o.C.Name, err)
	}
	out := make([]string, 0, len(all))
	for _, sn := range all {
		out = append(out, sn.CIDR)
	}
	return out, nil
}

// ExternalNetwork resolves an external network by name or ID; "" picks the
// only external network (an error when there are none or several).
func (o OpenStack) ExternalNetwork(ctx context.Context, nameOrID string) (string, error) {
	n, err := o.C.Network()
	if err != nil {
		return "", err
	}
	// The filter is the server's: decoding router:external into a struct
	// that embeds networks.Network would be silently dropped (its own
	// UnmarshalJSON is promoted and ignores the outer fields).
	yes := true
	pages, err := networks.List(n, external.ListOptsExt{ListOptsBuilder: networks.ListOpts{}, External: &yes}).AllPages(ctx)
	if err != nil {
		return "", fmt.Errorf("cloud %s: list external networks: %w", o.C.Name, err)
	}
	all, err := networks.ExtractNetworks(pages)
	if err != nil {
		return "", err
	}
	var names []string
	for _, net := range all {
		if nameOrID != "" && (net.Name == nameOrID || net.ID == nameOrID) {
			return net.Name, nil
		}
		names = append(names, net.Name)
	}
	switch {
	case nameOrID != "":
		return "", fmt.Errorf("external network %s on cloud %s: %w", nameOrID, o.C.Name, ErrNotFound)
	case len(names) == 1:
		return names[0], nil
	case len(names) == 0:
		return "", fmt.Errorf("cloud %s has no external network", o.C.Name)
	}
	return "", fmt.Errorf("cloud %s has several external networks (%s): set external_network", o.C.Name, strings.Join(names, ", "))
}

// Quota reads the project's quotas and usage.
func (o OpenStack) Quota(ctx context.Context) (Quota, error) {
	var q Quota
	project := o.C.ProjectID
	c, err := o.compute()
	if err != nil {
		return q, err
	}
	cq, err := computequotas.GetDetail(ctx, c, project).Extract()
	if err != nil {
		return q, fmt.Errorf("cloud %s: compute quota: %w", o.C.Name, err)
	}
	q.Instances = Usage{cq.Instances.Limit, cq.Instances.InUse}
	q.Cores = Usage{cq.Cores.Limit, cq.Cores.InUse}
	q.RAMMiB = Usage{cq.RAM.Limit, cq.RAM.InUse}
	q.ServerGroups = Usage{cq.ServerGroups.Limit, cq.ServerGroups.InUse}
	if bs, err := o.C.BlockStorage(); err == nil {
		if vq, err := quotasets.GetUsage(ctx, bs, project).Extract(); err == nil {
			q.Volumes = Usage{vq.Volumes.Limit, vq.Volumes.InUse}
			q.GigabytesVolumes = Usage{vq.Gigabytes.Limit, vq.Gigabytes.InUse}
		} else {
			return q, fmt.Errorf("cloud %s: volume quota: %w", o.C.Name, err)
		}
	} else {
		q.Volumes, q.GigabytesVolumes = Usage{-1, 0}, Usage{-1, 0}
	}
	n, err := o.C.Network()
	if err != nil {
		return q, err
	}
	var nq struct {
		Quota struct {
			FloatingIP    struct{ Limit, Used int } `json:"floatingip"`
			SecurityGroup struct{ Limit, Used int } `json:"security_group"`
		} `json:"quota"`
	}
	if _, err := n.Get(ctx, n.ServiceURL("quotas", project, "details.json"), &nq, nil); err != nil {
		return q, fmt.Errorf("cloud %s: network quota: %w", o.C.Name, err)
	}
	q.FloatingIPs = Usage{nq.Quota.FloatingIP.Limit, nq.Quota.FloatingIP.Used}
	q.SecurityGroups = Usage{nq.Quota.SecurityGroup.Limit, nq.Quota.SecurityGroup.Used}
	q.LoadBalancers = Usage{-1, 0}
	if lb, err := o.C.LoadBalancer(); err == nil {
		lq, err := lbquotas.Get(ctx, lb, project).Extract()
		if err != nil {
			return q, fmt.Errorf("cloud %s: load balancer quota: %w", o.C.Name, err)
		}
		pages, err := loadbalancers.List(lb, loadbalancers.ListOpts{ProjectID: project}).AllPages(ctx)
		if err != nil {
			return q, fmt.Errorf("cloud %s: list load balancers: %w", o.C.Name, err)
		}
		all, err := loadbalancers.ExtractLoadBalancers(pages)
		if err != nil {
			return q, err
		}
		q.LoadBalancers = Usage{Limit: lq.Loadbalancer, InUse: len(all)}
	}
	return q, nil
}

// EnsureServerGroup returns the ID of the server group named name.
func (o OpenStack) EnsureServerGroup(ctx context.Context, name, policy string) (string, error) {
	c, err := o.compute()
	if err != nil {
		return "", err
	}
	found, err := o.serverGroups(ctx, c, name)
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 1:
		return found[0].ID, nil
	case 0:
	default:
		return "", fmt.Errorf("cloud %s: %d server groups are named %s; delete the extra ones", o.C.Name, len(found), name)
	}
	c.Microversion = "2.64"
	sg, err := servergroups.Create(ctx, c, servergroups.CreateOpts{Name: name, Policy: policy}).Extract()
	if err != nil {
		return "", fmt.Errorf("cloud %s: create server group %s (%s): %w", o.C.Name, name, policy, err)
	}
	return sg.ID, nil
}

func (o OpenStack) serverGroups(ctx context.Context, c *gophercloud.ServiceClient, name string) ([]servergroups.ServerGroup, error) {
	pages, err := servergroups.List(c, servergroups.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("cloud %s: list server groups: %w", o.C.Name, err)
	}
	all, err := servergroups.ExtractServerGroups(pages)
	if err != nil {
		return nil, err
	}
	var out []servergroups.ServerGroup
	for _, g := range all {
		if g.Name == name {
			out = append(out, g)
		}
	}
	return out, nil
}

// DeleteServerGroups deletes the server groups named name.
func (o OpenStack) DeleteServerGroups(ctx context.Context, name string) error {
	c, err := o.compute()
	if err != nil {
		return err
	}
	found, err := o.serverGroups(ctx, c, name)
	if err != nil {
		return err
	}
	for _, g := range found {
		if err := servergroups.Delete(ctx, c, g.ID).ExtractErr(); err != nil && !isNotFound(err) {
			return fmt.Errorf("cloud %s: delete server group %s (%s): %w", o.C.Name, name, g.ID, err)
		}
	}
	return nil
}

// EnsureSecurityGroup makes a security group with exactly these ingress rules.
func (o OpenStack) EnsureSecurityGroup(ctx context.Context, name, description string, want []Rule) error {
	n, err := o.C.Network()
	if err != nil {
		return err
	}
	pages, err := groups.List(n, groups.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return fmt.Errorf("cloud %s: list security groups: %w", o.C.Name, err)
	}
	found, err := groups.ExtractGroups(pages)
	if err != nil {
		return err
	}
	var g *groups.SecGroup
	switch len(found) {
	case 0:
		g, err = groups.Create(ctx, n, groups.CreateOpts{Name: name, Description: description}).Extract()
		if err != nil {
			return fmt.Errorf("cloud %s: create security group %s: %w", o.C.Name, name, err)
		}
	case 1:
		g = &found[0]
	default:
		return fmt.Errorf("cloud %s: %d security groups are named %s", o.C.Name, len(found), name)
	}
	have := map[Rule]bool{}
	for _, r := range g.Rules {
		if r.Direction == "ingress" && r.PortRangeMin == r.PortRangeMax {
			have[Rule{Protocol: r.Protocol, Port: r.PortRangeMin, RemoteIPPrefix: r.RemoteIPPrefix}] = true
		}
	}
	for _, r := range want {
		if have[r] {
			continue
		}
		_, err := rules.Create(ctx, n, rules.CreateOpts{SecGroupID: g.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
			Protocol: rules.RuleProtocol(r.Protocol), PortRangeMin: r.Port, PortRangeMax: r.Port, RemoteIPPrefix: r.RemoteIPPrefix}).Extract()
		if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
			return fmt.Errorf("cloud %s: add rule %s/%d to %s: %w", o.C.Name, r.Protocol, r.Port, name, err)
		}
	}
	return nil
}

// DeleteSecurityGroups deletes the security groups named name.
func (o OpenStack) DeleteSecurityGroups(ctx context.Context, name string) error {
	n, err := o.C.Network()
	if err != nil {
		return err
	}
	pages, err := groups.List(n, groups.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return fmt.Errorf("cloud %s: list security groups: %w", o.C.Name, err)
	}
	found, err := groups.ExtractGroups(pages)
	if err != nil {
		return err
	}
	for _, g := range found {
		if err := groups.Delete(ctx, n, g.ID).ExtractErr(); err != nil && !isNotFound(err) {
			return fmt.Errorf("cloud %s: delete security group %s (%s): %w", o.C.Name, name, g.ID, err)
		}
	}
	return nil
}
