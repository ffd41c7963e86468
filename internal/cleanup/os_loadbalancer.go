package cleanup

import (
	"context"

	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
)

// Octavia load balancers. Deletion cascades to listeners, pools, members
// and monitors, and is asynchronous (PENDING_DELETE, then gone). Octavia
// removes the VIP port itself.

func listLoadBalancers(ctx context.Context, c *clients) ([]Resource, error) {
	pages, err := loadbalancers.List(c.lb, loadbalancers.ListOpts{ProjectID: c.projectID}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := loadbalancers.ExtractLoadBalancers(pages)
	out := make([]Resource, 0, len(all))
	for _, lb := range all {
		r := Resource{Type: LoadBalancer, ID: lb.ID, Name: lb.Name, Description: lb.Description, Status: lb.ProvisioningStatus, CreatedAt: lb.CreatedAt, Tags: lb.Tags,
			PortID: lb.VipPortID, NetworkID: lb.VipNetworkID}
		if lb.VipSubnetID != "" {
			r.SubnetIDs = []string{lb.VipSubnetID}
		}
		out = append(out, r)
	}
	return out, err
}

func deleteLoadBalancer(ctx context.Context, c *clients, r *Resource) error {
	return loadbalancers.Delete(ctx, c.lb, r.ID, loadbalancers.DeleteOpts{Cascade: true}).ExtractErr()
}

func getLoadBalancer(ctx context.Context, c *clients, r *Resource) (bool, string, error) {
	lb, err := loadbalancers.Get(ctx, c.lb, r.ID).Extract()
	if err != nil {
		return false, "", err
	}
	if lb.ProvisioningStatus == "DELETED" {
		return false, lb.ProvisioningStatus, nil
	}
	return true, lb.ProvisioningStatus, nil
}
