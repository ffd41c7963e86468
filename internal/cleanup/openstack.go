package cleanup

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/capilab/capilab/internal/cloud"
)

// OpenStack is the Backend for a real cloud. What it knows of each type
// lives in one file per type (os_<type>.go) with the same three functions:
// list, delete and, for asynchronous deletions, get.
type OpenStack struct {
	c     *clients
	kinds map[Type]kind
}

type clients struct {
	cloud     string
	projectID string
	userID    string
	network   *gophercloud.ServiceClient
	compute   *gophercloud.ServiceClient
	lb        *gophercloud.ServiceClient
	volume    *gophercloud.ServiceClient
	identity  *gophercloud.ServiceClient
}

// kind is one resource type's knowledge.
type kind struct {
	service string // the API service: requests to one service share its token cache
	list    func(ctx context.Context, c *clients) ([]Resource, error)
	delete  func(ctx context.Context, c *clients, r *Resource) error
	// get reports whether r exists and its status; nil for types whose
	// deletion is complete when the API call returns.
	get func(ctx context.Context, c *clients, r *Resource) (bool, string, error)
}

// Service names the API service that lists type t (see Discover).
func (o *OpenStack) Service(t Type) string { return o.kinds[t].service }

// NewOpenStack builds the backend from a connected cloud. Every list is
// scoped to the credentials' project (an admin sees all projects
// otherwise), keypairs and application credentials to the user.
func NewOpenStack(cl *cloud.Cloud) (*OpenStack, error) {
	if cl.ProjectID == "" || cl.UserID == "" {
		return nil, fmt.Errorf("cloud %s: the token names no project or user; fullclean needs a project-scoped credential", cl.Name)
	}
	c := &clients{cloud: cl.Name, projectID: cl.ProjectID, userID: cl.UserID}
	var err error
	if c.network, err = cl.Network(); err != nil {
		return nil, err
	}
	if c.compute, err = cl.Compute(); err != nil {
		return nil, err
	}
	c.compute.Microversion = "2.26" // server tags in listings
	if c.lb, err = cl.LoadBalancer(); err != nil {
		return nil, err
	}
	if c.volume, err = cl.BlockStorage(); err != nil {
		return nil, err
	}
	if c.identity, err = cl.Identity(); err != nil {
		return nil, err
	}
	return &OpenStack{c: c, kinds: map[Type]kind{
		FloatingIP:      {"network", listFloatingIPs, deleteFloatingIP, nil},
		LoadBalancer:    {"load-balancer", listLoadBalancers, deleteLoadBalancer, getLoadBalancer},
		Server:          {"compute", listServers, deleteServer, getServer},
		Port:            {"network", listPorts, deletePort, nil}, // lists router interfaces too
		RouterInterface: {"network", func(context.Context, *clients) ([]Resource, error) { return nil, nil }, removeRouterInterface, nil},
		Subnet:          {"network", listSubnets, deleteSubnet, nil},
		Network:         {"network", listNetworks, deleteNetwork, nil},
		Router:          {"network", listRouters, deleteRouter, nil},
		SecurityGroup:   {"network", listSecurityGroups, deleteSecurityGroup, nil},
		Snapshot:        {"volume", listSnapshots, deleteSnapshot, getSnapshot},
		Volume:          {"volume", listVolumes, deleteVolume, getVolume},
		ServerGroup:     {"compute", listServerGroups, deleteServerGroup, nil},
		Keypair:         {"compute", listKeypairs, deleteKeypair, nil},
		AppCred:         {"identity", listAppCreds, deleteAppCred, nil},
	}}, nil
}

func (o *OpenStack) List(ctx context.Context, t Type) ([]Resource, error) {
	rs, err := o.kinds[t].list(ctx, o.c)
	if err != nil {
		return nil, fmt.Errorf("cloud %s: %w", o.c.cloud, err)
	}
	return rs, nil
}

func (o *OpenStack) Delete(ctx context.Context, r *Resource) error {
	err := o.kinds[r.Type].delete(ctx, o.c, r)
	switch {
	case err == nil, cloud.IsNotFound(err):
		return nil
	case cloud.IsConflict(err):
		return &BlockedError{Err: fmt.Errorf("cloud %s: deleting %s: %w", o.c.cloud, r.Label(), err)}
	}
	return fmt.Errorf("cloud %s: deleting %s: %w", o.c.cloud, r.Label(), err)
}

func (o *OpenStack) Exists(ctx context.Context, r *Resource) (bool, string, error) {
	get := o.kinds[r.Type].get
	if get == nil {
		return false, "", nil
	}
	exists, status, err := get(ctx, o.c, r)
	if cloud.IsNotFound(err) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("cloud %s: looking at %s: %w", o.c.cloud, r.Label(), err)
	}
	return exists, status, nil
}

func (o *OpenStack) Async(t Type) bool { return o.kinds[t].get != nil }

// inUse400 turns Cinder's "400 Invalid volume: ... must be available" and
// similar refusals into a BlockedError, so the engine waits them out.
func inUse400(err error) error {
	if gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		msg := strings.ToLower(err.Error())
		for _, s := range []string{"in-use", "in use", "must be available", "attached", "dependent snapshots", "has snapshots", "status must be"} {
			if strings.Contains(msg, s) {
				return &BlockedError{Err: err}
			}
		}
	}
	return err
}
