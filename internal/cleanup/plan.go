package cleanup

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Filter narrows a cleanup.
type Filter struct {
	// Clusters limits the cleanup to these clusters; empty means every
	// cluster of the lab plus the lab's own resources.
	Clusters []string
	// OlderThan keeps resources created less than this long ago (0: any
	// age). Resources whose age the cloud does not report are kept.
	OlderThan time.Duration
	Now       time.Time
}

// Step is one deletion of a plan.
type Step struct {
	Owned
	// After lists the keys of steps that must finish first.
	After []string `json:"after,omitempty"`
}

// Kept is an owned resource the filter leaves alone, and why.
type Kept struct {
	Owned
	Why string `json:"why"`
}

// Plan is what a cleanup will delete, in dependency order.
type Plan struct {
	Steps []*Step `json:"steps"`
	Kept  []Kept  `json:"kept,omitempty"`
}

// Select splits owned resources into those the filter selects and those it
// keeps.
//
// With OlderThan, a resource whose age the cloud does not report (server
// groups, keypairs, credentials made before capilab recorded their creation
// time) follows its owner: it is selected unless a resource of its cluster
// (for the lab's own: of any cluster of the lab, or the lab) is kept for
// being younger than OlderThan. So `fullclean OLDER_THAN=24h` removes a lab
// that is entirely older than a day, ageless parts included, and leaves a
// younger one whole.
func (f Filter) Select(owned []Owned) (selected []Owned, kept []Kept) {
	var ageless []Owned
	young := map[string]bool{} // owners with a resource kept for its youth
	for _, o := range owned {
		why := f.excludes(o)
		switch {
		case why == "-":
			continue
		case why == whyAgeless:
			ageless = append(ageless, o)
			continue
		case why != "":
			kept = append(kept, Kept{Owned: o, Why: why})
			if f.young(o) {
				young[o.Cluster], young[anyOwner] = true, true
				for _, c := range o.Also {
					young[c] = true
				}
			}
			continue
		}
		selected = append(selected, o)
	}
	for _, o := range ageless {
		owner := o.Cluster
		if owner == LabOwner {
			owner = anyOwner
		}
		switch {
		case young[owner]:
			kept = append(kept, Kept{Owned: o, Why: "the cloud does not report its age, and its " + ownerWord(o) + " has resources younger than older_than " + f.OlderThan.String()})
		default:
			selected = append(selected, o)
		}
	}
	return selected, kept
}

// young reports a resource created less than OlderThan ago.
func (f Filter) young(o Owned) bool {
	return f.OlderThan > 0 && !o.CreatedAt.IsZero() && f.Now.Sub(o.CreatedAt) < f.OlderThan
}

// anyOwner marks, in Select, that some resource of the lab is young.
const anyOwner = "\x00any"

func ownerWord(o Owned) string {
	if o.Cluster == LabOwner {
		return "lab"
	}
	return "cluster"
}

// whyAgeless is excludes' answer for a resource without an age when
// OlderThan is set: Select decides by its owner.
const whyAgeless = "\x00ageless"

// excludes returns why the filter keeps o, "-" for resources simply out of
// scope (another cluster), whyAgeless for a resource of unknown age under
// OlderThan, "" when o is selected.
func (f Filter) excludes(o Owned) string {
	if len(f.Clusters) > 0 {
		if o.Cluster == LabOwner || !slices.Contains(f.Clusters, o.Cluster) {
			return "-"
		}
		for _, c := range o.Also {
			if !slices.Contains(f.Clusters, c) {
				return fmt.Sprintf("evidence also points to cluster %s, which is not selected", c)
			}
		}
	}
	if f.OlderThan > 0 {
		if o.CreatedAt.IsZero() {
			return whyAgeless
		}
		if age := f.Now.Sub(o.CreatedAt); age < f.OlderThan {
			return fmt.Sprintf("created %s ago, less than older_than %s", age.Round(time.Second), f.OlderThan)
		}
	}
	return ""
}

// MakePlan orders the selected resources: each step lists the steps that
// must finish before it can succeed (what blocks what in OpenStack).
func MakePlan(owned []Owned, f Filter) *Plan {
	selected, kept := f.Select(owned)
	selected, kept = keepEvidence(selected, kept)
	SortOwned(selected)
	p := &Plan{Kept: kept}
	byType := map[Type][]*Step{}
	for _, o := range selected {
		s := &Step{Owned: o}
		p.Steps = append(p.Steps, s)
		byType[o.Type] = append(byType[o.Type], s)
	}
	after := func(s *Step, blockers ...*Step) {
		for _, b := range blockers {
			if b != s && !slices.Contains(s.After, b.Key()) {
				s.After = append(s.After, b.Key())
			}
		}
	}
	where := func(t Type, pred func(*Step) bool) []*Step {
		var out []*Step
		for _, s := range byType[t] {
			if pred(s) {
				out = append(out, s)
			}
		}
		return out
	}
	portsOf := func(deviceID string) []string {
		var ids []string
		for _, s := range byType[Port] {
			if s.DeviceID == deviceID {
				ids = append(ids, s.ID)
			}
		}
		return ids
	}
	for _, s := range p.Steps {
		switch s.Type {
		case LoadBalancer:
			after(s, where(FloatingIP, func(f *Step) bool { return f.PortID != "" && f.PortID == s.PortID })...)
		case Server:
			ports := portsOf(s.ID)
			after(s, where(FloatingIP, func(f *Step) bool { return slices.Contains(ports, f.PortID) })...)
		case Port:
			after(s, where(FloatingIP, func(f *Step) bool { return f.PortID == s.ID })...)
			after(s, where(Server, func(v *Step) bool { return v.ID == s.DeviceID })...)
			after(s, where(LoadBalancer, func(lb *Step) bool { return lb.PortID == s.ID || "lb-"+lb.ID == s.DeviceID })...)
		case RouterInterface:
			after(s, where(FloatingIP, func(f *Step) bool { return f.RouterID != "" && f.RouterID == s.RouterID })...)
		case Subnet:
			on := func(x *Step) bool { return slices.Contains(x.SubnetIDs, s.ID) }
			after(s, where(RouterInterface, on)...)
			after(s, where(Port, on)...)
			after(s, where(LoadBalancer, on)...)
		case Network:
			on := func(x *Step) bool { return x.NetworkID == s.ID }
			after(s, where(Subnet, on)...)
			after(s, where(Port, on)...)
			after(s, where(RouterInterface, on)...)
			after(s, where(LoadBalancer, on)...)
		case Router:
			on := func(x *Step) bool { return x.RouterID == s.ID }
			after(s, where(RouterInterface, on)...)
			after(s, where(FloatingIP, on)...)
		case SecurityGroup:
			after(s, where(Port, func(x *Step) bool { return slices.Contains(x.SecurityGroupIDs, s.ID) })...)
		case Volume:
			after(s, where(Snapshot, func(x *Step) bool { return x.VolumeID == s.ID })...)
			after(s, where(Server, func(x *Step) bool { return slices.Contains(s.AttachedTo, x.ID) })...)
		case ServerGroup:
			after(s, where(Server, func(x *Step) bool { return slices.Contains(s.Members, x.ID) })...)
		case Keypair:
			after(s, where(Server, func(x *Step) bool { return x.KeyName == s.Name })...)
		case AppCred:
			// The credential is the evidence that the rest is the lab's:
			// it goes last, so an interrupted run can still find the rest.
			for _, x := range p.Steps {
				if x.Type != AppCred && (s.Cluster == LabOwner || x.Cluster == s.Cluster) {
					after(s, x)
				}
			}
			if s.Cluster == LabOwner {
				after(s, where(AppCred, func(x *Step) bool { return x.Cluster != LabOwner })...)
			}
		}
	}
	return p
}

// Counts summarises steps per type.
func (p *Plan) Counts() map[Type]int {
	m := map[Type]int{}
	for _, s := range p.Steps {
		m[s.Type]++
	}
	return m
}

// Summary is "12 resources: 3 port, 1 network, ...".
func (p *Plan) Summary() string {
	counts := p.Counts()
	var parts []string
	for _, t := range Types {
		if n := counts[t]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, t))
		}
	}
	if len(parts) == 0 {
		return "nothing owned to delete"
	}
	return fmt.Sprintf("%d resource(s): %s", len(p.Steps), strings.Join(parts, ", "))
}

// keepEvidence keeps the application credential of a cluster (and the
// lab's) while any resource it is evidence for is kept: deleting it would
// leave those resources without proof of ownership for the next run.
func keepEvidence(selected []Owned, kept []Kept) ([]Owned, []Kept) {
	if len(kept) == 0 {
		return selected, kept
	}
	keptClusters := map[string]bool{}
	for _, k := range kept {
		keptClusters[k.Cluster] = true
		for _, c := range k.Also {
			keptClusters[c] = true
		}
	}
	out := selected[:0:0]
	for _, o := range selected {
		if o.Type == AppCred && (o.Cluster == LabOwner || keptClusters[o.Cluster]) {
			kept = append(kept, Kept{Owned: o, Why: "resources it proves ownership of are kept, so it stays as evidence"})
			continue
		}
		out = append(out, o)
	}
	return out, kept
}
