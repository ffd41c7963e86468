package remote

import (
	"context"
	"regexp"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/capilab/capilab/internal/cloud"
)

// OpenStack is the Catalog of a connected cloud (the caller's project).
type OpenStack struct{ Cloud *cloud.Cloud }

var _ Catalog = OpenStack{}

// Networks lists the networks visible to the project.
func (o OpenStack) Networks(ctx context.Context) ([]NetworkInfo, error) {
	c, err := o.Cloud.Network()
	if err != nil {
		return nil, err
	}
	pages, err := networks.List(c, networks.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	var all []struct {
		networks.Network
		external.NetworkExternalExt
	}
	if err := networks.ExtractNetworksInto(pages, &all); err != nil {
		return nil, err
	}
	out := make([]NetworkInfo, 0, len(all))
	for _, n := range all {
		out = append(out, NetworkInfo{ID: n.ID, Name: n.Name, External: n.External, Subnets: len(n.Subnets)})
	}
	return out, nil
}

// Images looks an image up by name, and by ID.
func (o OpenStack) Images(ctx context.Context, nameOrID string) ([]ImageInfo, error) {
	c, err := o.Cloud.Image()
	if err != nil {
		return nil, err
	}
	var out []ImageInfo
	add := func(all []images.Image) {
		for _, img := range all {
			out = append(out, ImageInfo{ID: img.ID, Name: img.Name, Status: string(img.Status), MinDiskGiB: img.MinDiskGigabytes, CreatedAt: img.CreatedAt})
		}
	}
	pages, err := images.List(c, images.ListOpts{Name: nameOrID}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := images.ExtractImages(pages)
	if err != nil {
		return nil, err
	}
	add(all)
	img, err := images.Get(ctx, c, nameOrID).Extract()
	switch {
	case err == nil:
		add([]images.Image{*img})
	case !cloud.IsNotFound(err) && !gophercloud.ResponseCodeIs(err, 400):
		return nil, err
	}
	return out, nil
}

// Flavors lists the flavors the project may use.
func (o OpenStack) Flavors(ctx context.Context) ([]FlavorInfo, error) {
	c, err := o.Cloud.Compute()
	if err != nil {
		return nil, err
	}
	pages, err := flavors.ListDetail(c, flavors.ListOpts{AccessType: flavors.AllAccess}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := flavors.ExtractFlavors(pages)
	if err != nil {
		return nil, err
	}
	out := make([]FlavorInfo, 0, len(all))
	for _, f := range all {
		out = append(out, FlavorInfo{ID: f.ID, Name: f.Name, DiskGiB: f.Disk})
	}
	return out, nil
}

// AvailabilityZones lists the available compute availability zones.
func (o OpenStack) AvailabilityZones(ctx context.Context) ([]string, error) {
	c, err := o.Cloud.Compute()
	if err != nil {
		return nil, err
	}
	pages, err := availabilityzones.List(c).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := availabilityzones.ExtractAvailabilityZones(pages)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, z := range all {
		if z.ZoneState.Available {
			out = append(out, z.ZoneName)
		}
	}
	return out, nil
}

// Existing lists the project's resources that carry one of the node's
// exact names (Nova filters server names by regular expression, Neutron
// and Cinder by equality; every match is compared again exactly).
func (o OpenStack) Existing(ctx context.Context, n Names) ([]Existing, error) {
	var out []Existing
	add := func(typ, id, name, want string) {
		if name == want {
			out = append(out, Existing{Type: typ, ID: id, Name: name})
		}
	}
	compute, err := o.Cloud.Compute()
	if err != nil {
		return nil, err
	}
	pages, err := servers.List(compute, servers.ListOpts{Name: "^" + regexp.QuoteMeta(n.Server()) + "$"}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	srvs, err := servers.ExtractServers(pages)
	if err != nil {
		return nil, err
	}
	for _, s := range srvs {
		add("openstack_compute_instance_v2", s.ID, s.Name, n.Server())
	}
	kp, err := keypairs.Get(ctx, compute, n.Keypair(), nil).Extract()
	switch {
	case err == nil:
		add("openstack_compute_keypair_v2", kp.Name, kp.Name, n.Keypair())
	case !cloud.IsNotFound(err):
		return nil, err
	}

	network, err := o.Cloud.Network()
	if err != nil {
		return nil, err
	}
	proj := o.Cloud.ProjectID
	pages, err = networks.List(network, networks.ListOpts{Name: n.Network(), ProjectID: proj}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	nets, err := networks.ExtractNetworks(pages)
	if err != nil {
		return nil, err
	}
	for _, x := range nets {
		add("openstack_networking_network_v2", x.ID, x.Name, n.Network())
	}
	pages, err = subnets.List(network, subnets.ListOpts{Name: n.Subnet(), ProjectID: proj}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	subs, err := subnets.ExtractSubnets(pages)
	if err != nil {
		return nil, err
	}
	for _, x := range subs {
		add("openstack_networking_subnet_v2", x.ID, x.Name, n.Subnet())
	}
	pages, err = routers.List(network, routers.ListOpts{Name: n.Router(), ProjectID: proj}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	rts, err := routers.ExtractRouters(pages)
	if err != nil {
		return nil, err
	}
	for _, x := range rts {
		add("openstack_networking_router_v2", x.ID, x.Name, n.Router())
	}
	pages, err = groups.List(network, groups.ListOpts{Name: n.SecurityGroup(), ProjectID: proj}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	sgs, err := groups.ExtractGroups(pages)
	if err != nil {
		return nil, err
	}
	for _, x := range sgs {
		add("openstack_networking_secgroup_v2", x.ID, x.Name, n.SecurityGroup())
	}
	pages, err = ports.List(network, ports.ListOpts{Name: n.Server(), ProjectID: proj}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	pts, err := ports.ExtractPorts(pages)
	if err != nil {
		return nil, err
	}
	for _, x := range pts {
		add("openstack_networking_port_v2", x.ID, x.Name, n.Server())
	}

	if bs, err := o.Cloud.BlockStorage(); err == nil {
		pages, err := volumes.List(bs, volumes.ListOpts{Name: n.Server()}).AllPages(ctx)
		if err != nil {
			return nil, err
		}
		vols, err := volumes.ExtractVolumes(pages)
		if err != nil {
			return nil, err
		}
		for _, x := range vols {
			add("openstack_blockstorage_volume_v3", x.ID, x.Name, n.Server())
		}
	}
	return out, nil
}

// ServerExists reports whether a server of that ID exists (404: no).
func (o OpenStack) ServerExists(ctx context.Context, id string) (bool, error) {
	c, err := o.Cloud.Compute()
	if err != nil {
		return false, err
	}
	_, err = servers.Get(ctx, c, id).Extract()
	switch {
	case err == nil:
		return true, nil
	case cloud.IsNotFound(err):
		return false, nil
	}
	return false, err
}
