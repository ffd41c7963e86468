// Package cleanup finds every OpenStack resource a lab owns and deletes it,
// in dependency order and in parallel, then proves by looking again that
// nothing owned is left — and never touches anything no ownership rule
// matches.
//
// The flow is discover → classify → plan → execute → verify:
//
//   - Discover lists each resource type once (not once per cluster) through
//     a Backend: the OpenStack one (openstack.go, one file per type) or an
//     in-memory fake in tests.
//   - Classify applies the ownership rules (rules.go): a table of exact
//     name, description, metadata and tag patterns per cluster, then
//     relations (a port on an owned network, a floating IP on an owned
//     port). Every owned resource carries the rule that claimed it.
//   - Plan filters (clusters, age) and orders deletions by what blocks
//     what (graph.go).
//   - Execute runs independent deletions on a bounded worker pool, waits for
//     asynchronous ones, retries conflicts while their blockers go away.
//   - Verify discovers again: success only if nothing owned remains.
package cleanup

import "time"

// Type is an OpenStack resource type the cleanup knows.
type Type string

// The resource types, in the order a plan lists them.
const (
	FloatingIP      Type = "floating_ip"
	LoadBalancer    Type = "load_balancer"
	Server          Type = "server"
	RouterInterface Type = "router_interface"
	Port            Type = "port"
	Subnet          Type = "subnet"
	Network         Type = "network"
	Router          Type = "router"
	SecurityGroup   Type = "security_group"
	Snapshot        Type = "snapshot"
	Volume          Type = "volume"
	ServerGroup     Type = "server_group"
	Keypair         Type = "keypair"
	AppCred         Type = "application_credential"
)

// Types lists every type, in plan order.
var Types = []Type{FloatingIP, LoadBalancer, Server, RouterInterface, Port, Subnet, Network, Router, SecurityGroup, Snapshot, Volume, ServerGroup, Keypair, AppCred}

// Resource is what the cleanup needs to know of any resource: identity,
// the fields ownership rules read, and the relations that order deletion.
type Resource struct {
	Type        Type              `json:"type"`
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Status      string            `json:"status,omitempty"`
	CreatedAt   time.Time         `json:"created_at,omitzero"`
	Tags        []string          `json:"tags,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`

	NetworkID        string   `json:"network_id,omitempty"`         // port, subnet, load balancer VIP
	SubnetIDs        []string `json:"subnet_ids,omitempty"`         // port fixed IPs, load balancer VIP, router interface
	DeviceID         string   `json:"device_id,omitempty"`          // port
	DeviceOwner      string   `json:"device_owner,omitempty"`       // port
	PortID           string   `json:"port_id,omitempty"`            // floating IP target, load balancer VIP, router interface port
	RouterID         string   `json:"router_id,omitempty"`          // floating IP, router interface
	SecurityGroupIDs []string `json:"security_group_ids,omitempty"` // port
	AttachedTo       []string `json:"attached_to,omitempty"`        // volume: server IDs
	VolumeID         string   `json:"volume_id,omitempty"`          // snapshot
	Members          []string `json:"members,omitempty"`            // server group: server IDs
	KeyName          string   `json:"key_name,omitempty"`           // server
}

// Key identifies a resource across types.
func (r *Resource) Key() string { return string(r.Type) + "/" + r.ID }

// Label names a resource for humans: "port capi-x (3f2a…)".
func (r *Resource) Label() string {
	name := r.Name
	if name == "" {
		name = "-"
	}
	return string(r.Type) + " " + name + " (" + r.ID + ")"
}

// LabOwner is the Cluster of resources that belong to the lab itself
// (management node, lab keypair and credential), not to one cluster.
const LabOwner = ""

// Owned is a resource an ownership rule matched.
type Owned struct {
	Resource
	// Cluster that owns it; LabOwner for the lab's own resources.
	Cluster string `json:"cluster"`
	// Also lists further clusters the same evidence points to (CAPO's
	// short description "cluster <name>" can be read two ways); the resource
	// is only deleted when every candidate cluster is selected.
	Also []string `json:"also,omitempty"`
	// Rule and Reason say why it is owned.
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}
