package remote

import "github.com/capilab/capilab/internal/naming"

// Names of the management node's resources, as SCS's management VM named
// them, spelled by internal/naming (which the cleanup rules read too, so
// labs made by either tool are recognised by the same rules). terraform/
// spells the same names; a unit test keeps the two in step.
type Names struct{ Prefix string }

// Server is the management node: "<prefix>-mgmtcluster" (also its port and
// its root volume).
func (n Names) Server() string { return naming.MgmtServer(n.Prefix) }

// Network of the management node: "<prefix>-net".
func (n Names) Network() string { return naming.MgmtNetwork(n.Prefix) }

// Subnet of the management node: "<prefix>-subnet".
func (n Names) Subnet() string { return naming.MgmtSubnet(n.Prefix) }

// Router to the external network: "<prefix>-rtr".
func (n Names) Router() string { return naming.MgmtRouter(n.Prefix) }

// SecurityGroup of the management node: "<prefix>-mgmt".
func (n Names) SecurityGroup() string { return naming.MgmtSecurityGroup(n.Prefix) }

// Keypair of the lab: "<prefix>-keypair".
func (n Names) Keypair() string { return naming.Keypair(n.Prefix) }

// FloatingIPTag marks the node's floating IP (floating IPs have no name).
func (n Names) FloatingIPTag() string { return naming.MgmtFloatingIPTag(n.Prefix) }

// LabTag is on every Neutron resource of the node: "capilab-lab=<prefix>".
func (n Names) LabTag() string { return naming.LabTag(n.Prefix) }

// KindCluster is the management cluster on the node: "<prefix>-mgmt", and
// its control-plane container "<prefix>-mgmt-control-plane".
func (n Names) KindCluster() string { return naming.KindCluster(n.Prefix) }

// KindControlPlane is the kind node container of the management cluster.
func (n Names) KindControlPlane() string { return n.KindCluster() + "-control-plane" }

// Workspace is the OpenTofu workspace of the lab.
func (n Names) Workspace() string { return n.Prefix }
