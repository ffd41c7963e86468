package remote

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/config"
)

// Catalog is what the preflight reads from the cloud (read-only).
type Catalog interface {
	Networks(ctx context.Context) ([]NetworkInfo, error)
	Images(ctx context.Context, nameOrID string) ([]ImageInfo, error)
	Flavors(ctx context.Context) ([]FlavorInfo, error)
	AvailabilityZones(ctx context.Context) ([]string, error)
	// Existing lists resources that carry one of the node's exact names.
	Existing(ctx context.Context, n Names) ([]Existing, error)
}

// NetworkInfo is a network as the preflight sees it.
type NetworkInfo struct {
	ID, Name string
	External bool
	Subnets  int
}

// ImageInfo is an image as the preflight sees it.
type ImageInfo struct {
	ID, Name   string
	Status     string
	MinDiskGiB int
	CreatedAt  time.Time
}

// FlavorInfo is a flavor as the preflight sees it.
type FlavorInfo struct {
	ID, Name string
	DiskGiB  int
}

// Existing is a resource with one of the node's names.
type Existing struct {
	Type string // the OpenTofu resource type that would track it
	ID   string
	Name string
}

// Preflight checks the settings of the remote node against the cloud
// before anything is planned: the external network, image, flavor and
// availability zone must exist (one problem line each, with the source of
// the setting), and no resource may carry one of the node's names unless
// this lab's OpenTofu state tracks it (another management node with the
// same prefix in this project: refused, never adopted or replaced).
func Preflight(ctx context.Context, cat Catalog, s *config.Settings, sources map[string]string, st *State) (Resolved, error) {
	var res Resolved
	var ps config.Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, config.Problem{Source: sources[key], Key: key, Message: fmt.Sprintf(format, args...)})
	}

	nets, err := cat.Networks(ctx)
	if err != nil {
		return res, fmt.Errorf("listing networks: %w", err)
	}
	if ext, msg := pickExternal(nets, s.ExternalNetwork); msg != "" {
		add("external_network", "%s", msg)
	} else {
		res.ExternalNetwork = Ref{ID: ext.ID, Name: ext.Name}
	}

	images, err := cat.Images(ctx, s.MgmtImage)
	if err != nil {
		return res, fmt.Errorf("looking up image %q: %w", s.MgmtImage, err)
	}
	if img, msg := pickImage(images, s.MgmtImage); msg != "" {
		add("mgmt_image", "%s", msg)
	} else {
		res.Image = Image{Ref: Ref{ID: img.ID, Name: img.Name}, MinDiskGiB: img.MinDiskGiB}
	}

	flavors, err := cat.Flavors(ctx)
	if err != nil {
		return res, fmt.Errorf("listing flavors: %w", err)
	}
	if f, msg := pickFlavor(flavors, s.KindFlavor); msg != "" {
		add("kind_flavor", "%s", msg)
	} else {
		res.Flavor = Flavor{Ref: Ref{ID: f.ID, Name: f.Name}, DiskGiB: f.DiskGiB}
	}

	if s.AvailabilityZone != "" {
		zones, err := cat.AvailabilityZones(ctx)
		if err != nil {
			return res, fmt.Errorf("listing availability zones: %w", err)
		}
		if !slices.Contains(zones, s.AvailabilityZone) {
			add("availability_zone", "%q is not an available compute availability zone here (have %s)", s.AvailabilityZone, listOrNone(zones))
		}
	}

	existing, err := cat.Existing(ctx, Names{Prefix: s.Prefix})
	if err != nil {
		return res, fmt.Errorf("looking for resources named like the management node: %w", err)
	}
	for _, e := range Conflicts(existing, st) {
		add("prefix", "%s %s (%s) exists in this project but is not in capilab's state: another management node uses prefix %q here; choose another PREFIX (nothing was adopted or changed)", kindOf(e.Type), e.Name, e.ID, s.Prefix)
	}
	if len(ps) > 0 {
		return res, &config.InvalidError{Problems: ps}
	}
	return res, nil
}

// Conflicts are the existing resources with the node's names that the
// lab's state does not track.
func Conflicts(existing []Existing, st *State) []Existing {
	var out []Existing
	for _, e := range existing {
		if st != nil && slices.Contains(st.IDs(e.Type), e.ID) {
			continue
		}
		out = append(out, e)
	}
	return out
}

func kindOf(tofuType string) string {
	switch tofuType {
	case "openstack_compute_instance_v2":
		return "server"
	case "openstack_networking_network_v2":
		return "network"
	case "openstack_networking_subnet_v2":
		return "subnet"
	case "openstack_networking_router_v2":
		return "router"
	case "openstack_networking_secgroup_v2":
		return "security group"
	case "openstack_compute_keypair_v2":
		return "keypair"
	case "openstack_networking_port_v2":
		return "port"
	case "openstack_blockstorage_volume_v3":
		return "volume"
	}
	return tofuType
}

// pickExternal finds the external network by name or ID, or the only one
// when none is named.
func pickExternal(nets []NetworkInfo, want string) (NetworkInfo, string) {
	var external []NetworkInfo
	for _, n := range nets {
		if n.External {
			external = append(external, n)
		}
	}
	usable := func(n NetworkInfo) string {
		if n.Subnets == 0 {
			return fmt.Sprintf("external network %s (%s) has no subnet: no floating IP can be allocated from it", n.Name, n.ID)
		}
		return ""
	}
	if want == "" {
		switch len(external) {
		case 0:
			return NetworkInfo{}, "is empty and no external network is visible to this project to detect: set EXTERNAL_NETWORK to the network that provides floating IPs"
		case 1:
			return external[0], usable(external[0])
		}
		names := make([]string, 0, len(external))
		for _, n := range external {
			names = append(names, n.Name)
		}
		slices.Sort(names)
		return NetworkInfo{}, fmt.Sprintf("is empty and there are %d external networks (%s): set EXTERNAL_NETWORK to one of them", len(external), strings.Join(names, ", "))
	}
	var byName []NetworkInfo
	for _, n := range nets {
		if n.ID == want {
			if !n.External {
				return NetworkInfo{}, fmt.Sprintf("network %s (%s) is not external (router:external is false): the router cannot reach it", n.Name, n.ID)
			}
			return n, usable(n)
		}
		if n.Name == want {
			byName = append(byName, n)
		}
	}
	var extByName []NetworkInfo
	for _, n := range byName {
		if n.External {
			extByName = append(extByName, n)
		}
	}
	switch {
	case len(extByName) == 1:
		return extByName[0], usable(extByName[0])
	case len(extByName) > 1:
		return NetworkInfo{}, fmt.Sprintf("%d external networks are named %q: set EXTERNAL_NETWORK to the ID of one", len(extByName), want)
	case len(byName) > 0:
		return NetworkInfo{}, fmt.Sprintf("network %q is not external (router:external is false): the router cannot reach it", want)
	}
	return NetworkInfo{}, fmt.Sprintf("no network named %q or with that ID is visible to this project (external networks here: %s)", want, listOrNone(namesOf(external)))
}

func namesOf(nets []NetworkInfo) []string {
	out := make([]string, 0, len(nets))
	for _, n := range nets {
		out = append(out, n.Name)
	}
	slices.Sort(out)
	return out
}

// pickImage takes the image of that ID, or the newest active image of that
// name (as SCS's management VM did).
func pickImage(images []ImageInfo, want string) (ImageInfo, string) {
	var named []ImageInfo
	for _, img := range images {
		if img.ID == want {
			if img.Status != "active" {
				return ImageInfo{}, fmt.Sprintf("image %s (%s) is %s, not active", img.Name, img.ID, img.Status)
			}
			return img, ""
		}
		if img.Name == want {
			named = append(named, img)
		}
	}
	var active []ImageInfo
	for _, img := range named {
		if img.Status == "active" {
			active = append(active, img)
		}
	}
	if len(active) == 0 {
		if len(named) > 0 {
			return ImageInfo{}, fmt.Sprintf("image %q exists but is not active (%s)", want, named[0].Status)
		}
		return ImageInfo{}, fmt.Sprintf("no image named %q or with that ID is visible to this project", want)
	}
	slices.SortStableFunc(active, func(a, b ImageInfo) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return active[0], ""
}

func pickFlavor(flavors []FlavorInfo, want string) (FlavorInfo, string) {
	var byName []FlavorInfo
	for _, f := range flavors {
		if f.ID == want {
			return f, ""
		}
		if f.Name == want {
			byName = append(byName, f)
		}
	}
	switch len(byName) {
	case 1:
		return byName[0], ""
	case 0:
		names := make([]string, 0, len(flavors))
		for _, f := range flavors {
			names = append(names, f.Name)
		}
		slices.Sort(names)
		if len(names) > 12 {
			names = append(names[:12], "…")
		}
		return FlavorInfo{}, fmt.Sprintf("no flavor named %q or with that ID (have %s)", want, listOrNone(names))
	}
	return FlavorInfo{}, fmt.Sprintf("%d flavors are named %q: set KIND_FLAVOR to the ID of one", len(byName), want)
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}
