package cleanup

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
)

// fakeCloud is an in-memory cloud with OpenStack's refusal rules: a network
// with ports, a subnet with ports or interfaces, a router with interfaces or
// floating IPs, a security group on a port and a volume that is attached or
// has snapshots cannot be deleted. Servers, load balancers, volumes and
// snapshots disappear a few polls after their deletion was accepted, and a
// load balancer takes its VIP port with it, as Octavia does.
type fakeCloud struct {
	mu        sync.Mutex
	res       map[string]*Resource
	deleting  map[string]int // key → polls until gone
	deleted   []string       // keys, in order
	lists     map[Type]int   // List calls per type
	rng       *rand.Rand
	spurious  float64 // chance a delete is refused as "in use" although nothing blocks it
	onDelete  func(key string)
	listError error
}

func newFakeCloud(seed uint64, resources []Resource) *fakeCloud {
	f := &fakeCloud{res: map[string]*Resource{}, deleting: map[string]int{}, lists: map[Type]int{}, rng: rand.New(rand.NewPCG(seed, 7))}
	for i := range resources {
		r := resources[i]
		f.res[r.Key()] = &r
	}
	return f
}

func (f *fakeCloud) List(_ context.Context, t Type) ([]Resource, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listError != nil {
		return nil, f.listError
	}
	f.lists[t]++
	var out []Resource
	for _, r := range f.res {
		if r.Type == t {
			out = append(out, *r)
		}
	}
	return out, nil
}

func (f *fakeCloud) Async(t Type) bool {
	return t == Server || t == LoadBalancer || t == Volume || t == Snapshot
}

func (f *fakeCloud) Exists(_ context.Context, r *Resource) (bool, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := r.Key()
	if _, ok := f.res[k]; !ok {
		return false, "", nil
	}
	if n, ok := f.deleting[k]; ok {
		if n <= 0 {
			f.removeLocked(k)
			return false, "", nil
		}
		f.deleting[k] = n - 1
		return true, "deleting", nil
	}
	return true, "ACTIVE", nil
}

func inUse(format string, args ...any) error {
	return &BlockedError{Err: fmt.Errorf(format, args...)}
}

func (f *fakeCloud) Delete(_ context.Context, r *Resource) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := r.Key()
	cur, ok := f.res[k]
	if !ok {
		return nil // 404 is success
	}
	if _, pending := f.deleting[k]; pending {
		return nil
	}
	if f.spurious > 0 && f.rng.Float64() < f.spurious {
		return inUse("%s: spurious conflict", k)
	}
	if err := f.blockerLocked(cur); err != nil {
		return err
	}
	if f.onDelete != nil {
		f.onDelete(k)
	}
	if f.Async(cur.Type) {
		f.deleting[k] = 1 + f.rng.IntN(3)
		return nil
	}
	f.removeLocked(k)
	return nil
}

func (f *fakeCloud) each(t Type, fn func(*Resource) bool) *Resource {
	for _, r := range f.res {
		if r.Type == t && fn(r) {
			return r
		}
	}
	return nil
}

// blockerLocked is OpenStack's "in use" check.
func (f *fakeCloud) blockerLocked(r *Resource) error {
	switch r.Type {
	case Network:
		for _, t := range []Type{Port, RouterInterface} {
			if p := f.each(t, func(p *Resource) bool { return p.NetworkID == r.ID }); p != nil {
				return inUse("network %s has port %s", r.ID, p.ID)
			}
		}
	case Subnet:
		for _, t := range []Type{Port, RouterInterface} {
			if p := f.each(t, func(p *Resource) bool { return slices.Contains(p.SubnetIDs, r.ID) }); p != nil {
				return inUse("subnet %s has port %s", r.ID, p.ID)
			}
		}
	case Router:
		if p := f.each(RouterInterface, func(p *Resource) bool { return p.RouterID == r.ID }); p != nil {
			return inUse("router %s has interface %s", r.ID, p.ID)
		}
		if p := f.each(FloatingIP, func(p *Resource) bool { return p.RouterID == r.ID }); p != nil {
			return inUse("router %s is used by floating IP %s", r.ID, p.ID)
		}
	case RouterInterface:
		if p := f.each(FloatingIP, func(p *Resource) bool { return p.RouterID == r.RouterID && p.PortID != "" }); p != nil {
			return inUse("router interface %s is required by floating IP %s", r.ID, p.ID)
		}
	case SecurityGroup:
		if p := f.each(Port, func(p *Resource) bool { return slices.Contains(p.SecurityGroupIDs, r.ID) }); p != nil {
			return inUse("security group %s is used by port %s", r.ID, p.ID)
		}
	case Volume:
		if len(r.AttachedTo) > 0 {
			return inUse("volume %s is attached", r.ID)
		}
		if s := f.each(Snapshot, func(s *Resource) bool { return s.VolumeID == r.ID }); s != nil {
			return inUse("volume %s has snapshot %s", r.ID, s.ID)
		}
	}
	return nil
}

// removeLocked deletes a resource and what goes with it.
func (f *fakeCloud) removeLocked(k string) {
	r := f.res[k]
	delete(f.res, k)
	delete(f.deleting, k)
	f.deleted = append(f.deleted, k)
	switch r.Type {
	case Server:
		for _, x := range f.res {
			switch {
			case x.Type == Port && x.DeviceID == r.ID:
				x.DeviceID, x.DeviceOwner = "", ""
			case x.Type == Volume:
				x.AttachedTo = slices.DeleteFunc(x.AttachedTo, func(id string) bool { return id == r.ID })
			case x.Type == ServerGroup:
				x.Members = slices.DeleteFunc(x.Members, func(id string) bool { return id == r.ID })
			}
		}
	case LoadBalancer:
		if r.PortID != "" {
			if _, ok := f.res[string(Port)+"/"+r.PortID]; ok {
				f.removeLocked(string(Port) + "/" + r.PortID)
			}
		}
	case Port:
		for _, x := range f.res {
			if x.Type == FloatingIP && x.PortID == r.ID {
				x.PortID, x.RouterID = "", ""
			}
		}
	}
}

func (f *fakeCloud) has(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.res[key]
	return ok
}

var errListBoom = errors.New("list failed")
