package remote

// Names of the management node's resources, as SCS's management VM named
// them (so labs made by either tool are recognised by the same cleanup
// rules, internal/cleanup). terraform/ spells the same names; a unit test
// keeps the two in step.
type Names struct{ Prefix string }

// Server is the management node: "<prefix>-mgmtcluster" (also its port and
// its root volume).
func (n Names) Server() string { return n.Prefix + "-mgmtcluster" }

// Network of the management node: "<prefix>-net".
func (n Names) Network() string { return n.Prefix + "-net" }

// Subnet of the management node: "<prefix>-subnet".
func (n Names) Subnet() string { return n.Prefix + "-subnet" }

// Router to the external network: "<prefix>-rtr".
func (n Names) Router() string { return n.Prefix + "-rtr" }

// SecurityGroup of the management node: "<prefix>-mgmt".
func (n Names) SecurityGroup() string { return n.Prefix + "-mgmt" }

// Keypair of the lab: "<prefix>-keypair".
func (n Names) Keypair() string { return n.Prefix + "-keypair" }

// FloatingIPTag marks the node's floating IP (floating IPs have no name).
func (n Names) FloatingIPTag() string { return n.Prefix + "-mgmtcluster" }

// LabTag is on every Neutron resource of the node: "capilab-lab=<prefix>".
func (n Names) LabTag() string { return "capilab-lab=" + n.Prefix }

// KindCluster is the management cluster on the node: "<prefix>-mgmt", and
// its control-plane container "<prefix>-mgmt-control-plane".
func (n Names) KindCluster() string { return n.Prefix + "-mgmt" }

// KindControlPlane is the kind node container of the management cluster.
func (n Names) KindControlPlane() string { return n.KindCluster() + "-control-plane" }

// Workspace is the OpenTofu workspace of the lab.
func (n Names) Workspace() string { return n.Prefix }
