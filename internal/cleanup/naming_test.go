package cleanup

import (
	"testing"

	"github.com/capilab/capilab/internal/naming"
)

// TestEveryNameTheLabGivesIsClaimed: each resource named the way capilab
// (internal/naming) names it when it creates it is claimed by the cleanup
// rules, for the right owner — the two read the same vocabulary.
func TestEveryNameTheLabGivesIsClaimed(t *testing.T) {
	const p, c, ns = "lab1", "alpha", "team"
	rn := naming.CAPOResourceName(ns, c)
	fipPrefix, fipSuffix := naming.OCCMFloatingIPDescription(c)
	sgPrefix, sgSuffix := naming.OCCMSecurityGroupDescription(c)
	cases := []struct {
		r     Resource
		owner string
	}{
		{Resource{Type: ServerGroup, Name: naming.ServerGroup(p, c, naming.RoleController)}, c},
		{Resource{Type: ServerGroup, Name: naming.ServerGroup(p, c, naming.RoleWorker)}, c},
		{Resource{Type: SecurityGroup, Name: naming.CiliumSecurityGroup(p, c)}, c},
		{Resource{Type: AppCred, Name: naming.AppCred(p, c), Description: naming.AppCredDescription(p, c)}, c},
		{Resource{Type: Server, Name: "x", Tags: []string{naming.LabTag(p), naming.ClusterTag(c)}}, c},
		{Resource{Type: Network, Name: naming.CAPONetwork(rn)}, c},
		{Resource{Type: Subnet, Name: naming.CAPONetwork(rn)}, c},
		{Resource{Type: Router, Name: naming.CAPONetwork(rn)}, c},
		{Resource{Type: LoadBalancer, Name: naming.CAPOKubeAPILoadBalancer(rn)}, c},
		{Resource{Type: SecurityGroup, Name: naming.CAPOSecurityGroup(rn, naming.CAPORoleControlPlane)}, c},
		{Resource{Type: SecurityGroup, Name: naming.CAPOSecurityGroup(rn, naming.CAPORoleWorker)}, c},
		{Resource{Type: SecurityGroup, Name: naming.CAPOSecurityGroup(rn, naming.CAPORoleBastion)}, c},
		{Resource{Type: Port, Name: "p", Description: naming.CAPODescription(rn)}, c},
		{Resource{Type: LoadBalancer, Name: naming.OCCMLoadBalancerPrefix(c) + "default_web"}, c},
		{Resource{Type: FloatingIP, Description: fipPrefix + "default/web" + fipSuffix}, c},
		{Resource{Type: SecurityGroup, Name: "lb-sg", Description: sgPrefix + "default/web " + sgSuffix}, c},
		{Resource{Type: Volume, Name: "pvc-1", Metadata: map[string]string{naming.CSIClusterKey: c}}, c},
		{Resource{Type: Snapshot, Name: "snap-1", Metadata: map[string]string{naming.CSIClusterKey: c}}, c},
		{Resource{Type: AppCred, Name: naming.AppCred(p, ""), Description: naming.AppCredDescription(p, "")}, LabOwner},
		{Resource{Type: Keypair, Name: naming.Keypair(p)}, LabOwner},
		{Resource{Type: Server, Name: naming.MgmtServer(p)}, LabOwner},
		{Resource{Type: Port, Name: naming.MgmtServer(p)}, LabOwner},
		{Resource{Type: Volume, Name: naming.MgmtServer(p)}, LabOwner},
		{Resource{Type: Volume, Name: naming.MgmtVolume(p)}, LabOwner},
		{Resource{Type: FloatingIP, Tags: []string{naming.MgmtFloatingIPTag(p)}}, LabOwner},
		{Resource{Type: Network, Name: naming.MgmtNetwork(p)}, LabOwner},
		{Resource{Type: Subnet, Name: naming.MgmtSubnet(p)}, LabOwner},
		{Resource{Type: Router, Name: naming.MgmtRouter(p)}, LabOwner},
		{Resource{Type: SecurityGroup, Name: naming.MgmtSecurityGroup(p)}, LabOwner},
		{Resource{Type: SecurityGroup, Name: naming.AllowSSH(p)}, LabOwner},
		{Resource{Type: SecurityGroup, Name: naming.AllowICMP(p)}, LabOwner},
	}
	lab := Lab{Prefix: p, Clusters: map[string]Cluster{c: {Name: c, Namespace: ns}}}
	for i, tc := range cases {
		tc.r.ID = "id"
		owned := Classify(lab, []Resource{tc.r})
		if len(owned) != 1 || owned[0].Cluster != tc.owner {
			t.Errorf("case %d: %s %q (%q): claimed %+v, want owner %q", i, tc.r.Type, tc.r.Name, tc.r.Description, owned, tc.owner)
		}
	}
}
