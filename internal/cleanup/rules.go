package cleanup

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/capilab/capilab/internal/naming"
)

// Lab is the owner side of classification: the lab's prefix and the
// clusters proven to be the lab's (see DiscoverClusters).
type Lab struct {
	Prefix   string
	Clusters map[string]Cluster
	// Journal holds what earlier runs planned to delete (see Journal).
	Journal map[string]Owned
}

// Cluster is one cluster of the lab.
type Cluster struct {
	Name      string
	Namespace string   // Kubernetes namespace of its CAPI objects; default its name
	Evidence  []string // why it is the lab's ("application credential capi-a-appcred", "state record")
}

// resourceName is CAPO's cluster resource name, "<namespace>-<name>".
func (c Cluster) resourceName() string { return naming.CAPOResourceName(c.Namespace, c.Name) }

// Pattern is the data of a direct ownership rule. Text fields are templates:
// {P} is the lab prefix, {C} the cluster name, {R} CAPO's cluster resource
// name "<namespace>-<cluster>". Every field that is set must match; all
// comparisons are exact (whole name, whole description, exact prefix and
// suffix), which is what keeps cluster "alpha" off "alpha-2" and "myalpha".
type Pattern struct {
	Name        string   // name equals
	NamePrefix  string   // name starts with (only where the rest cannot contain the cluster name: see occm)
	Description []string // description equals one of these
	DescPrefix  string   // description starts with ...
	DescSuffix  string   // ... and ends with
	MetaKey     string   // metadata[MetaKey] equals MetaValue
	MetaValue   string
	Tags        []string // all of these tags are present
}

// Rule is one direct ownership rule.
type Rule struct {
	ID      string // short, stable identifier (reports, tests)
	Types   []Type
	Lab     bool // a rule for the lab's own resources ({C} unused)
	Pattern Pattern
	Reason  string // what it is, e.g. "CAPO network"
	// Guard, when set, must also hold: for facts a pattern cannot express.
	Guard func(r *Resource, prefix, cluster string) bool
}

// Placeholders of rule templates: the lab prefix, the cluster, CAPO's
// cluster resource name. Each template is the naming function that names
// the resource, called with these.
const (
	tP = "{P}"
	tC = "{C}"
	tR = "{R}"
)

var (
	occmFIPDescPrefix, occmFIPDescSuffix = naming.OCCMFloatingIPDescription(tC)
	occmSGDescPrefix, occmSGDescSuffix   = naming.OCCMSecurityGroupDescription(tC)
)

// Rules are the direct ownership rules. Sources: CAPO (at the version pinned in manifests/versions.yaml)
// pkg/cloud/services/{networking,loadbalancer,compute} and
// pkg/utils/names (names and descriptions), OCCM's load balancer code
// (names and descriptions with --cluster-name), Cinder CSI (volume and
// snapshot metadata), and the names the lab itself gives (SCS-compatible):
// all spelled by internal/naming.
var Rules = []Rule{
	// CAPO: one network, subnet and router per cluster, named after the cluster resource name.
	{ID: "capo-network", Types: []Type{Network}, Pattern: Pattern{Name: naming.CAPONetwork(tR)}, Reason: "CAPO cluster network"},
	{ID: "capo-subnet", Types: []Type{Subnet}, Pattern: Pattern{Name: naming.CAPONetwork(tR)}, Reason: "CAPO cluster subnet"},
	{ID: "capo-router", Types: []Type{Router}, Pattern: Pattern{Name: naming.CAPONetwork(tR)}, Reason: "CAPO cluster router"},
	{ID: "capo-secgroup-controlplane", Types: []Type{SecurityGroup}, Pattern: Pattern{Name: naming.CAPOSecurityGroup(tR, naming.CAPORoleControlPlane)}, Reason: "CAPO control-plane security group"},
	{ID: "capo-secgroup-worker", Types: []Type{SecurityGroup}, Pattern: Pattern{Name: naming.CAPOSecurityGroup(tR, naming.CAPORoleWorker)}, Reason: "CAPO worker security group"},
	{ID: "capo-secgroup-bastion", Types: []Type{SecurityGroup}, Pattern: Pattern{Name: naming.CAPOSecurityGroup(tR, naming.CAPORoleBastion)}, Reason: "CAPO bastion security group"},
	{ID: "capo-kubeapi-lb", Types: []Type{LoadBalancer}, Pattern: Pattern{Name: naming.CAPOKubeAPILoadBalancer(tR)}, Reason: "CAPO API server load balancer"},
	// CAPO's description on what it creates (names.GetDescription). A live
	// CAPO run wrote the cluster name alone on machine ports, so both
	// exact forms count.
	{ID: "capo-description", Types: []Type{Port, FloatingIP, Subnet, Router, LoadBalancer}, Pattern: Pattern{Description: []string{naming.CAPODescription(tR), naming.CAPODescription(tC)}}, Reason: "CAPO description names the cluster"},
	// OCCM with --cluster-name=C: load balancers kube_service_<C>_<ns>_<svc>
	// (no part may contain '_', so the prefix is exact), their floating IPs
	// and the security groups it manages.
	{ID: "occm-lb", Types: []Type{LoadBalancer}, Pattern: Pattern{NamePrefix: naming.OCCMLoadBalancerPrefix(tC)}, Reason: "OCCM load balancer of a Service", Guard: occmLBName},
	{ID: "occm-floating-ip", Types: []Type{FloatingIP}, Pattern: Pattern{DescPrefix: occmFIPDescPrefix, DescSuffix: occmFIPDescSuffix}, Reason: "OCCM floating IP of a Service"},
	{ID: "occm-secgroup", Types: []Type{SecurityGroup}, Pattern: Pattern{DescPrefix: occmSGDescPrefix, DescSuffix: occmSGDescSuffix}, Reason: "OCCM security group of a Service load balancer"},
	// Cinder CSI with --cluster=C.
	{ID: "csi-volume", Types: []Type{Volume}, Pattern: Pattern{MetaKey: naming.CSIClusterKey, MetaValue: tC}, Reason: "Cinder CSI volume (metadata)"},
	{ID: "csi-snapshot", Types: []Type{Snapshot}, Pattern: Pattern{MetaKey: naming.CSIClusterKey, MetaValue: tC}, Reason: "Cinder CSI snapshot (metadata)"},
	// Tags capilab puts on the OpenStackCluster (spec.tags), which CAPO copies.
	{ID: "capilab-tags", Types: []Type{Network, Subnet, Router, SecurityGroup, Port, FloatingIP, LoadBalancer, Server}, Pattern: Pattern{Tags: []string{naming.LabTag(tP), naming.ClusterTag(tC)}}, Reason: "capilab tags"},
	// What the lab creates per cluster.
	{ID: "lab-servergroup-controller", Types: []Type{ServerGroup}, Pattern: Pattern{Name: naming.ServerGroup(tP, tC, naming.RoleController)}, Reason: "lab server group (anti-affinity)"},
	{ID: "lab-servergroup-worker", Types: []Type{ServerGroup}, Pattern: Pattern{Name: naming.ServerGroup(tP, tC, naming.RoleWorker)}, Reason: "lab server group (anti-affinity)"},
	{ID: "lab-cilium-secgroup", Types: []Type{SecurityGroup}, Pattern: Pattern{Name: naming.CiliumSecurityGroup(tP, tC)}, Reason: "lab cilium security group"},
	{ID: "lab-cluster-appcred", Types: []Type{AppCred}, Pattern: Pattern{Name: naming.AppCred(tP, tC)}, Reason: "cluster application credential", Guard: appCredDescriptionAgrees},

	// The lab's own resources: management node and lab credentials
	// (SCS names, kept so existing labs are cleaned too). Exact names only:
	// another lab's prefix may start with this one's.
	{ID: "lab-keypair", Lab: true, Types: []Type{Keypair}, Pattern: Pattern{Name: naming.Keypair(tP)}, Reason: "lab keypair"},
	{ID: "lab-appcred", Lab: true, Types: []Type{AppCred}, Pattern: Pattern{Name: naming.AppCred(tP, "")}, Reason: "lab application credential", Guard: appCredDescriptionAgrees},
	{ID: "lab-mgmt-server", Lab: true, Types: []Type{Server}, Pattern: Pattern{Name: naming.MgmtServer(tP)}, Reason: "management node"},
	{ID: "lab-mgmt-volume", Lab: true, Types: []Type{Volume}, Pattern: Pattern{Name: naming.MgmtVolume(tP)}, Reason: "management node volume"},
	// The remote management node capilab builds (terraform/): its root
	// volume and port carry the server's name, as SCS's root volume did.
	{ID: "lab-mgmt-root-volume", Lab: true, Types: []Type{Volume}, Pattern: Pattern{Name: naming.MgmtServer(tP)}, Reason: "management node root volume"},
	{ID: "lab-mgmt-port", Lab: true, Types: []Type{Port}, Pattern: Pattern{Name: naming.MgmtServer(tP)}, Reason: "management node port"},
	{ID: "lab-mgmt-floating-ip", Lab: true, Types: []Type{FloatingIP}, Pattern: Pattern{Tags: []string{naming.MgmtFloatingIPTag(tP)}}, Reason: "management node floating IP (tag)"},
	{ID: "lab-network", Lab: true, Types: []Type{Network}, Pattern: Pattern{Name: naming.MgmtNetwork(tP)}, Reason: "lab network"},
	{ID: "lab-subnet", Lab: true, Types: []Type{Subnet}, Pattern: Pattern{Name: naming.MgmtSubnet(tP)}, Reason: "lab subnet"},
	{ID: "lab-router", Lab: true, Types: []Type{Router}, Pattern: Pattern{Name: naming.MgmtRouter(tP)}, Reason: "lab router"},
	{ID: "lab-secgroup-mgmt", Lab: true, Types: []Type{SecurityGroup}, Pattern: Pattern{Name: naming.MgmtSecurityGroup(tP)}, Reason: "lab security group"},
	{ID: "lab-secgroup-allow-ssh", Lab: true, Types: []Type{SecurityGroup}, Pattern: Pattern{Name: naming.AllowSSH(tP)}, Reason: "lab security group"},
	{ID: "lab-secgroup-allow-icmp", Lab: true, Types: []Type{SecurityGroup}, Pattern: Pattern{Name: naming.AllowICMP(tP)}, Reason: "lab security group"},
}

// taggedForOtherLab reports a resource capilab tagged for another lab
// (OpenStackCluster spec.tags, copied by CAPO): names cannot tell two labs'
// clusters of the same name apart, this tag can.
func taggedForOtherLab(r *Resource, prefix string) bool {
	for _, t := range r.Tags {
		if v, ok := naming.TaggedLab(t); ok && v != prefix {
			return true
		}
	}
	return false
}

// occmLBName requires exactly <ns>_<svc> after the prefix.
func occmLBName(r *Resource, _, cluster string) bool {
	rest := strings.TrimPrefix(r.Name, naming.OCCMLoadBalancerPrefix(cluster))
	ns, svc, ok := strings.Cut(rest, "_")
	return ok && ns != "" && svc != "" && !strings.Contains(svc, "_")
}

// appCredDescriptionAgrees refuses a credential whose capilab description
// names another lab or cluster: name alone cannot tell prefix "capi" +
// cluster "x-a" from prefix "capi-x" + cluster "a".
func appCredDescriptionAgrees(r *Resource, prefix, cluster string) bool {
	p, c, ok := naming.ParseAppCredDescription(r.Description)
	return !ok || (p == prefix && c == cluster)
}

func expand(tmpl, prefix, cluster, resourceName string) string {
	if !strings.Contains(tmpl, "{") {
		return tmpl
	}
	tmpl = strings.ReplaceAll(tmpl, tP, prefix)
	tmpl = strings.ReplaceAll(tmpl, tC, cluster)
	return strings.ReplaceAll(tmpl, tR, resourceName)
}

// compile expands the pattern's templates for one owner.
func (p Pattern) compile(prefix, cluster, rn string) Pattern {
	x := func(t string) string { return expand(t, prefix, cluster, rn) }
	c := Pattern{Name: x(p.Name), NamePrefix: x(p.NamePrefix), DescPrefix: x(p.DescPrefix), DescSuffix: x(p.DescSuffix), MetaKey: p.MetaKey, MetaValue: x(p.MetaValue)}
	for _, d := range p.Description {
		c.Description = append(c.Description, x(d))
	}
	for _, t := range p.Tags {
		c.Tags = append(c.Tags, x(t))
	}
	return c
}

// matches reports whether r matches a compiled pattern.
func (p *Pattern) matches(r *Resource) bool {
	if p.Name != "" && r.Name != p.Name {
		return false
	}
	if p.NamePrefix != "" && !strings.HasPrefix(r.Name, p.NamePrefix) {
		return false
	}
	if len(p.Description) > 0 && !slices.Contains(p.Description, r.Description) {
		return false
	}
	if p.DescPrefix != "" || p.DescSuffix != "" {
		if len(r.Description) < len(p.DescPrefix)+len(p.DescSuffix) || !strings.HasPrefix(r.Description, p.DescPrefix) || !strings.HasSuffix(r.Description, p.DescSuffix) {
			return false
		}
	}
	if p.MetaKey != "" && (r.Metadata == nil || r.Metadata[p.MetaKey] != p.MetaValue) {
		return false
	}
	for _, tag := range p.Tags {
		if !slices.Contains(r.Tags, tag) {
			return false
		}
	}
	return true
}

// Relation is a derived ownership rule: a resource is owned because a
// related resource is (a port on an owned network). Owner returns the
// owning cluster, or ok=false.
type Relation struct {
	ID     string
	Types  []Type
	Reason string
	Owner  func(r *Resource, ix *index) (owner *Owned, ok bool)
}

// Relations, applied until nothing changes.
var Relations = []Relation{
	{ID: "port-on-owned-network", Types: []Type{Port, RouterInterface}, Reason: "port on a network the cluster owns (it blocks deleting that network)",
		Owner: func(r *Resource, ix *index) (*Owned, bool) { return ix.owner(Network, r.NetworkID) }},
	{ID: "subnet-of-owned-network", Types: []Type{Subnet}, Reason: "subnet of an owned network",
		Owner: func(r *Resource, ix *index) (*Owned, bool) { return ix.owner(Network, r.NetworkID) }},
	{ID: "interface-of-owned-router", Types: []Type{RouterInterface}, Reason: "interface of an owned router",
		Owner: func(r *Resource, ix *index) (*Owned, bool) { return ix.owner(Router, r.RouterID) }},
	{ID: "floating-ip-on-owned-port", Types: []Type{FloatingIP}, Reason: "floating IP on an owned port",
		Owner: func(r *Resource, ix *index) (*Owned, bool) { return ix.owner(Port, r.PortID) }},
	{ID: "floating-ip-on-owned-lb-vip", Types: []Type{FloatingIP}, Reason: "floating IP on the VIP of an owned load balancer",
		Owner: func(r *Resource, ix *index) (*Owned, bool) {
			if r.PortID == "" {
				return nil, false
			}
			for _, lb := range ix.byType[LoadBalancer] {
				if lb.PortID == r.PortID {
					return ix.owner(LoadBalancer, lb.ID)
				}
			}
			return nil, false
		}},
	{ID: "server-with-cluster-port", Types: []Type{Server}, Reason: "server of the cluster's machines (owned port, name starts with the cluster name)",
		Owner: func(r *Resource, ix *index) (*Owned, bool) {
			for _, p := range ix.byType[Port] {
				if p.DeviceID != r.ID {
					continue
				}
				if o, ok := ix.owner(Port, p.ID); ok && o.Cluster != LabOwner && strings.HasPrefix(r.Name, naming.MachinePrefix(o.Cluster)) {
					return o, true
				}
			}
			return nil, false
		}},
	{ID: "volume-of-owned-server", Types: []Type{Volume}, Reason: "CAPO volume of an owned server",
		Owner: func(r *Resource, ix *index) (*Owned, bool) {
			for _, s := range ix.byType[Server] {
				if slices.Contains(naming.CAPOVolumeDescriptions(s.Name), r.Description) {
					return ix.owner(Server, s.ID)
				}
			}
			return nil, false
		}},
	{ID: "volume-of-mgmt-server", Types: []Type{Volume}, Reason: "volume attached to the management node",
		Owner: func(r *Resource, ix *index) (*Owned, bool) {
			for _, id := range r.AttachedTo {
				if o, ok := ix.owner(Server, id); ok && o.Cluster == LabOwner {
					return o, true
				}
			}
			return nil, false
		}},
	{ID: "snapshot-of-owned-volume", Types: []Type{Snapshot}, Reason: "snapshot of an owned volume",
		Owner: func(r *Resource, ix *index) (*Owned, bool) { return ix.owner(Volume, r.VolumeID) }},
}

// index holds the discovered resources and the ownership found so far.
type index struct {
	byType map[Type][]*Resource
	owned  map[string]*Owned // by Key
}

func newIndex(resources []Resource) *index {
	ix := &index{byType: map[Type][]*Resource{}, owned: map[string]*Owned{}}
	for i := range resources {
		r := &resources[i]
		ix.byType[r.Type] = append(ix.byType[r.Type], r)
	}
	return ix
}

func (ix *index) owner(t Type, id string) (*Owned, bool) {
	if id == "" {
		return nil, false
	}
	o, ok := ix.owned[string(t)+"/"+id]
	return o, ok
}

// Classify returns the owned resources among resources, each with the rule
// that claimed it, sorted by type order then name. Resources no rule
// matches are not returned: they are never touched.
func Classify(lab Lab, resources []Resource) []Owned {
	ix := newIndex(resources)
	clusters := make([]Cluster, 0, len(lab.Clusters))
	for _, c := range lab.Clusters {
		clusters = append(clusters, c)
	}
	sort.Slice(clusters, func(i, j int) bool { return clusters[i].Name < clusters[j].Name })

	// Direct rules, compiled once per owner.
	type compiled struct {
		rule    *Rule
		cluster string // LabOwner for lab rules
		pattern Pattern
	}
	var rules []compiled
	for ri := range Rules {
		ru := &Rules[ri]
		if ru.Lab {
			rules = append(rules, compiled{ru, LabOwner, ru.Pattern.compile(lab.Prefix, "", "")})
			continue
		}
		for _, c := range clusters {
			rules = append(rules, compiled{ru, c.Name, ru.Pattern.compile(lab.Prefix, c.Name, c.resourceName())})
		}
	}
	for i := range resources {
		r := &resources[i]
		if taggedForOtherLab(r, lab.Prefix) {
			continue
		}
		var candidates []string
		var rule *Rule
		for _, cr := range rules {
			if !slices.Contains(cr.rule.Types, r.Type) || !cr.pattern.matches(r) || (cr.rule.Guard != nil && !cr.rule.Guard(r, lab.Prefix, cr.cluster)) {
				continue
			}
			if cr.rule.Lab {
				candidates, rule = []string{LabOwner}, cr.rule
				break
			}
			if !slices.Contains(candidates, cr.cluster) {
				candidates = append(candidates, cr.cluster)
			}
			if rule == nil {
				rule = cr.rule
			}
		}
		if rule == nil {
			if j, ok := lab.Journal[r.Key()]; ok {
				ix.owned[r.Key()] = &Owned{Resource: *r, Cluster: j.Cluster, Also: j.Also, Rule: "earlier-plan",
					Reason: "planned for deletion by an earlier run of this lab (" + j.Rule + ": " + j.Reason + ")"}
			}
			continue
		}
		o := &Owned{Resource: *r, Rule: rule.ID, Reason: rule.Reason}
		o.Cluster, o.Also = pickCluster(r, candidates, ix)
		ix.owned[r.Key()] = o
	}

	// Relations, to a fixed point: each pass can only add owners.
	for changed := true; changed; {
		changed = false
		for _, rel := range Relations {
			for _, t := range rel.Types {
				for _, r := range ix.byType[t] {
					if _, done := ix.owned[r.Key()]; done {
						continue
					}
					if via, ok := rel.Owner(r, ix); ok {
						ix.owned[r.Key()] = &Owned{Resource: *r, Cluster: via.Cluster, Also: via.Also, Rule: rel.ID, Reason: rel.Reason}
						changed = true
					}
				}
			}
		}
	}

	out := make([]Owned, 0, len(ix.owned))
	for _, o := range ix.owned {
		out = append(out, *o)
	}
	SortOwned(out)
	return out
}

// pickCluster resolves evidence pointing at several clusters: the network
// a resource sits on decides if it can; otherwise the first candidate owns
// it and the others are kept in Also.
func pickCluster(r *Resource, candidates []string, ix *index) (string, []string) {
	if len(candidates) <= 1 {
		return candidates[0], nil
	}
	if net, ok := ix.owner(Network, r.NetworkID); ok && slices.Contains(candidates, net.Cluster) {
		return net.Cluster, nil
	}
	sort.Strings(candidates)
	return candidates[0], candidates[1:]
}

// SortOwned orders by type (plan order), cluster, name, ID.
func SortOwned(owned []Owned) {
	order := map[Type]int{}
	for i, t := range Types {
		order[t] = i
	}
	sort.Slice(owned, func(i, j int) bool {
		a, b := owned[i], owned[j]
		if a.Type != b.Type {
			return order[a.Type] < order[b.Type]
		}
		if a.Cluster != b.Cluster {
			return a.Cluster < b.Cluster
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})
}

// String describes an owned resource in one line.
func (o *Owned) String() string {
	who := "lab"
	if o.Cluster != LabOwner {
		who = "cluster " + o.Cluster
	}
	return fmt.Sprintf("%s of %s: %s", o.Label(), who, o.Reason)
}
