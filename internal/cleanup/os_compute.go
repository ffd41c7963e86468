package cleanup

import (
	"context"
	"fmt"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
)

// Nova: servers (asynchronous deletion), server groups, keypairs.

func listServers(ctx context.Context, c *clients) ([]Resource, error) {
	pages, err := servers.List(c.compute, servers.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := servers.ExtractServers(pages)
	out := make([]Resource, 0, len(all))
	for _, s := range all {
		// Nova reports a server it is done deleting as DELETED for as long
		// as it takes to release its placement allocations (seconds, 22 s
		// seen on devcloud) before the listing drops it: it is gone, and
		// counting it made a verified fullclean fail.
		if s.Status == "DELETED" {
			continue
		}
		r := Resource{Type: Server, ID: s.ID, Name: s.Name, Status: s.Status, CreatedAt: s.Created, KeyName: s.KeyName, Metadata: s.Metadata}
		if s.Tags != nil {
			r.Tags = *s.Tags
		}
		out = append(out, r)
	}
	return out, err
}

func deleteServer(ctx context.Context, c *clients, r *Resource) error {
	return servers.Delete(ctx, c.compute, r.ID).ExtractErr()
}

func getServer(ctx context.Context, c *clients, r *Resource) (bool, string, error) {
	s, err := servers.Get(ctx, c.compute, r.ID).Extract()
	if err != nil {
		return false, "", err
	}
	return s.Status != "DELETED" && s.Status != "SOFT_DELETED", s.Status, nil
}

func listServerGroups(ctx context.Context, c *clients) ([]Resource, error) {
	pages, err := servergroups.List(c.compute, servergroups.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := servergroups.ExtractServerGroups(pages)
	out := make([]Resource, 0, len(all))
	for _, g := range all {
		out = append(out, Resource{Type: ServerGroup, ID: g.ID, Name: g.Name, Members: g.Members})
	}
	return out, err
}

func deleteServerGroup(ctx context.Context, c *clients, r *Resource) error {
	return servergroups.Delete(ctx, c.compute, r.ID).ExtractErr()
}

func listKeypairs(ctx context.Context, c *clients) ([]Resource, error) {
	pages, err := keypairs.List(c.compute, keypairs.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := keypairs.ExtractKeyPairs(pages)
	out := make([]Resource, 0, len(all))
	for _, k := range all {
		if k.UserID != "" && k.UserID != c.userID {
			continue
		}
		out = append(out, Resource{Type: Keypair, ID: k.Name, Name: k.Name})
	}
	return out, err
}

func deleteKeypair(ctx context.Context, c *clients, r *Resource) error {
	if r.ID == "" {
		return fmt.Errorf("keypair without a name")
	}
	return keypairs.Delete(ctx, c.compute, r.ID, keypairs.DeleteOpts{}).ExtractErr()
}
