package dataplane

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// Octavia's view, typed as far as the agent uses it.

// LoadBalancer is an Octavia load balancer.
type LoadBalancer struct {
	ID                 string `json:"id"`
	Name               string `json:"name"`
	ProvisioningStatus string `json:"provisioning_status"`
	AdminStateUp       bool   `json:"admin_state_up"`
	VIPAddress         string `json:"vip_address"`
	VIPNetworkID       string `json:"vip_network_id"`
	VIPPortID          string `json:"vip_port_id"`
	ProjectID          string `json:"project_id"`
	UpdatedAt          string `json:"updated_at"`
}

// Listener is an Octavia listener.
type Listener struct {
	ID            string `json:"id"`
	Protocol      string `json:"protocol"`
	ProtocolPort  int    `json:"protocol_port"`
	DefaultPoolID string `json:"default_pool_id"`
	AdminStateUp  bool   `json:"admin_state_up"`
	LoadBalancers []struct {
		ID string `json:"id"`
	} `json:"loadbalancers"`
}

// Pool is an Octavia pool.
type Pool struct {
	ID              string `json:"id"`
	AdminStateUp    bool   `json:"admin_state_up"`
	HealthMonitorID string `json:"healthmonitor_id"`
	UpdatedAt       string `json:"updated_at"`
	Members         []struct {
		ID string `json:"id"`
	} `json:"members"`
}

// Member is a pool member.
type Member struct {
	ID           string `json:"id"`
	Address      string `json:"address"`
	ProtocolPort int    `json:"protocol_port"`
	AdminStateUp bool   `json:"admin_state_up"`
	Weight       *int   `json:"weight"`
	Backup       bool   `json:"backup"`
}

// HealthMonitor is a pool's health monitor.
type HealthMonitor struct {
	ID             string `json:"id"`
	Type           string `json:"type"`
	Delay          int    `json:"delay"`
	Timeout        int    `json:"timeout"`
	MaxRetries     int    `json:"max_retries"`
	MaxRetriesDown int    `json:"max_retries_down"`
	AdminStateUp   bool   `json:"admin_state_up"`
}

// octavia reads Octavia as admin; members are cached per pool version.
type octavia struct {
	sc *gophercloud.ServiceClient

	mu      sync.Mutex
	members map[string]memberCache
}

type memberCache struct {
	key     string
	fetched time.Time
	members []Member
}

// memberRefresh bounds how long cached members are trusted when their pool
// looks unchanged (a member's weight or admin state can change without the
// member list changing).
const memberRefresh = 10 * time.Second

func (o *octavia) get(ctx context.Context, path string, out any) error {
	if _, err := o.sc.Get(ctx, o.sc.ServiceURL(path), out, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return fmt.Errorf("octavia GET %s: %w", path, err)
	}
	return nil
}

// lbView is everything the agent needs about load balancers, in one read.
type lbView struct {
	lbs       []LoadBalancer
	listeners map[string][]Listener // by load balancer
	pools     map[string]Pool
	monitors  map[string]HealthMonitor
	members   map[string][]Member // by pool
}

func (o *octavia) view(ctx context.Context) (*lbView, error) {
	v := &lbView{listeners: map[string][]Listener{}, pools: map[string]Pool{}, monitors: map[string]HealthMonitor{}, members: map[string][]Member{}}
	var lbs struct {
		LoadBalancers []LoadBalancer `json:"loadbalancers"`
	}
	if err := o.get(ctx, "lbaas/loadbalancers", &lbs); err != nil {
		return nil, err
	}
	v.lbs = lbs.LoadBalancers
	active := false
	for _, lb := range v.lbs {
		if lb.ProvisioningStatus == "ACTIVE" {
			active = true
		}
	}
	if !active {
		return v, nil
	}
	var ls struct {
		Listeners []Listener `json:"listeners"`
	}
	if err := o.get(ctx, "lbaas/listeners", &ls); err != nil {
		return nil, err
	}
	for _, l := range ls.Listeners {
		for _, lb := range l.LoadBalancers {
			v.listeners[lb.ID] = append(v.listeners[lb.ID], l)
		}
	}
	var ps struct {
		Pools []Pool `json:"pools"`
	}
	if err := o.get(ctx, "lbaas/pools", &ps); err != nil {
		return nil, err
	}
	var hms struct {
		HealthMonitors []HealthMonitor `json:"healthmonitors"`
	}
	if err := o.get(ctx, "lbaas/healthmonitors", &hms); err != nil {
		return nil, err
	}
	for _, hm := range hms.HealthMonitors {
		v.monitors[hm.ID] = hm
	}
	o.mu.Lock()
	if o.members == nil {
		o.members = map[string]memberCache{}
	}
	o.mu.Unlock()
	for _, p := range ps.Pools {
		v.pools[p.ID] = p
		ids := make([]string, 0, len(p.Members))
		for _, m := range p.Members {
			ids = append(ids, m.ID)
		}
		key := p.UpdatedAt + "|" + strings.Join(ids, ",")
		o.mu.Lock()
		c, ok := o.members[p.ID]
		o.mu.Unlock()
		if ok && c.key == key && time.Since(c.fetched) < memberRefresh {
			v.members[p.ID] = c.members
			continue
		}
		if len(ids) == 0 {
			v.members[p.ID] = nil
			continue
		}
		var ms struct {
			Members []Member `json:"members"`
		}
		if err := o.get(ctx, "lbaas/pools/"+p.ID+"/members", &ms); err != nil {
			return nil, err
		}
		v.members[p.ID] = ms.Members
		o.mu.Lock()
		o.members[p.ID] = memberCache{key: key, fetched: time.Now(), members: ms.Members}
		o.mu.Unlock()
	}
	o.mu.Lock()
	for id := range o.members {
		if _, ok := v.pools[id]; !ok {
			delete(o.members, id)
		}
	}
	o.mu.Unlock()
	return v, nil
}
