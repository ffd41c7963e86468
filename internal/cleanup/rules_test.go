package cleanup

import (
	"slices"
	"strings"
	"testing"
)

func labWith(prefix string, clusters ...string) Lab {
	l := Lab{Prefix: prefix, Clusters: map[string]Cluster{}}
	for _, c := range clusters {
		l.Clusters[c] = Cluster{Name: c}
	}
	return l
}

// TestRules proves each direct rule on its own: the resource it is meant
// for is claimed for the right owner by exactly that rule, and look-alikes
// (other clusters sharing a prefix, another lab) are not.
func TestRules(t *testing.T) {
	const capo = "Created by cluster-api-provider-openstack cluster "
	meta := func(c string) map[string]string { return map[string]string{"cinder.csi.openstack.org/cluster": c} }
	tests := []struct {
		rule    string
		owned   Resource
		owner   string
		foreign []Resource
	}{
		{"capo-network", Resource{Type: Network, Name: "k8s-clusterapi-cluster-alpha-alpha"}, "alpha",
			[]Resource{{Type: Network, Name: "k8s-clusterapi-cluster-alpha-2-alpha-2"}, {Type: Network, Name: "k8s-clusterapi-cluster-myalpha-myalpha"}, {Type: Network, Name: "k8s-clusterapi-cluster-alpha"}, {Type: Subnet, Name: "k8s-clusterapi-cluster-alpha-20-alpha-20"}}},
		{"capo-subnet", Resource{Type: Subnet, Name: "k8s-clusterapi-cluster-alpha-alpha"}, "alpha", nil},
		{"capo-router", Resource{Type: Router, Name: "k8s-clusterapi-cluster-alpha-alpha"}, "alpha", []Resource{{Type: Router, Name: "k8s-clusterapi-cluster-alpha-alpha-2"}}},
		{"capo-secgroup-controlplane", Resource{Type: SecurityGroup, Name: "k8s-cluster-alpha-alpha-secgroup-controlplane"}, "alpha", []Resource{{Type: SecurityGroup, Name: "k8s-cluster-alpha-2-alpha-2-secgroup-controlplane"}}},
		{"capo-secgroup-worker", Resource{Type: SecurityGroup, Name: "k8s-cluster-alpha-alpha-secgroup-worker"}, "alpha", []Resource{{Type: SecurityGroup, Name: "k8s-cluster-myalpha-myalpha-secgroup-worker"}}},
		{"capo-secgroup-bastion", Resource{Type: SecurityGroup, Name: "k8s-cluster-alpha-alpha-secgroup-bastion"}, "alpha", nil},
		{"capo-kubeapi-lb", Resource{Type: LoadBalancer, Name: "k8s-clusterapi-cluster-alpha-alpha-kubeapi"}, "alpha",
			[]Resource{{Type: LoadBalancer, Name: "k8s-clusterapi-cluster-alpha-2-alpha-2-kubeapi"}, {Type: LoadBalancer, Name: "k8s-clusterapi-cluster-alpha-20-alpha-20-kubeapi"}}},
		{"capo-description", Resource{Type: Port, Description: capo + "alpha-alpha"}, "alpha",
			[]Resource{{Type: Port, Description: capo + "alpha-2-alpha-2"}, {Type: Port, Description: capo + "alpha-2"}, {Type: FloatingIP, Description: capo + "myalpha"}, {Type: Port, Description: capo + "alpha-alpha "}, {Type: Network, Description: capo + "alpha"}}},
		{"capo-description", Resource{Type: Port, Description: capo + "alpha"}, "alpha", nil}, // short form on machine ports
		{"capo-description", Resource{Type: FloatingIP, Description: capo + "alpha-alpha"}, "alpha", []Resource{{Type: FloatingIP, Description: "Created by cluster-api-provider-openstack OpenStackFloatingIPPool alpha"}}},
		{"occm-lb", Resource{Type: LoadBalancer, Name: "kube_service_alpha_ingress-nginx_ingress-nginx-controller"}, "alpha",
			[]Resource{{Type: LoadBalancer, Name: "kube_service_alpha-2_default_web"}, {Type: LoadBalancer, Name: "kube_service_myalpha_default_web"}, {Type: LoadBalancer, Name: "kube_service_alpha_default"}, {Type: LoadBalancer, Name: "kube_service_alpha_a_b_c"}}},
		{"occm-floating-ip", Resource{Type: FloatingIP, Description: "Floating IP for Kubernetes external service default/web from cluster alpha"}, "alpha",
			[]Resource{{Type: FloatingIP, Description: "Floating IP for Kubernetes external service default/web from cluster alpha-2"}, {Type: FloatingIP, Description: "Floating IP for Kubernetes external service default/web from cluster myalpha"}}},
		{"occm-secgroup", Resource{Type: SecurityGroup, Name: "lb-sg-1", Description: "Security Group for default/web Service LoadBalancer in cluster alpha"}, "alpha",
			[]Resource{{Type: SecurityGroup, Description: "Security Group for default/web Service LoadBalancer in cluster alpha-2"}, {Type: SecurityGroup, Description: "Security Group for default/web Service LoadBalancer in cluster myalpha"}, {Type: SecurityGroup, Description: "Group for default/web Service LoadBalancer in cluster alpha"}}},
		{"occm-secgroup", Resource{Type: SecurityGroup, Description: "Security Group for Service LoadBalancer in cluster alpha"}, "alpha", nil}, // older OCCM
		{"csi-volume", Resource{Type: Volume, Name: "pvc-1", Metadata: meta("alpha")}, "alpha",
			[]Resource{{Type: Volume, Name: "pvc-2", Metadata: meta("alpha-2")}, {Type: Volume, Name: "pvc-3"}, {Type: Volume, Name: "pvc-4", Metadata: meta("kubernetes")}}},
		{"csi-snapshot", Resource{Type: Snapshot, Metadata: meta("alpha")}, "alpha", []Resource{{Type: Snapshot, Metadata: meta("myalpha")}}},
		{"capilab-tags", Resource{Type: Server, Name: "x", Tags: []string{"capilab-lab=capi", "capilab-cluster=alpha"}}, "alpha",
			[]Resource{{Type: Server, Tags: []string{"capilab-lab=capi-x", "capilab-cluster=alpha"}}, {Type: Server, Tags: []string{"capilab-cluster=alpha"}}}},
		{"lab-servergroup-controller", Resource{Type: ServerGroup, Name: "capi-alpha-controller"}, "alpha", []Resource{{Type: ServerGroup, Name: "capi-alpha-2-controller"}, {Type: ServerGroup, Name: "capi-x-alpha-controller"}}},
		{"lab-servergroup-worker", Resource{Type: ServerGroup, Name: "capi-alpha-worker"}, "alpha", nil},
		{"lab-cilium-secgroup", Resource{Type: SecurityGroup, Name: "capi-alpha-cilium"}, "alpha", []Resource{{Type: SecurityGroup, Name: "capi-myalpha-cilium"}}},
		{"lab-cluster-appcred", Resource{Type: AppCred, Name: "capi-alpha-appcred", Description: "capilab lab=capi cluster=alpha"}, "alpha",
			[]Resource{{Type: AppCred, Name: "capi-alpha-2-appcred"}}},
		{"lab-keypair", Resource{Type: Keypair, Name: "capi-keypair"}, LabOwner, []Resource{{Type: Keypair, Name: "capi-x-keypair"}, {Type: Keypair, Name: "mycapi-keypair"}}},
		{"lab-appcred", Resource{Type: AppCred, Name: "capi-appcred", Description: "capilab lab=capi"}, LabOwner, []Resource{{Type: AppCred, Name: "capi-x-appcred", Description: "capilab lab=capi-x"}}},
		{"lab-mgmt-server", Resource{Type: Server, Name: "capi-mgmtcluster"}, LabOwner, []Resource{{Type: Server, Name: "capi-x-mgmtcluster"}, {Type: Server, Name: "capi-mgmtcluster-2"}}},
		{"lab-mgmt-volume", Resource{Type: Volume, Name: "capi-mgmthost"}, LabOwner, nil},
		{"lab-mgmt-root-volume", Resource{Type: Volume, Name: "capi-mgmtcluster"}, LabOwner,
			[]Resource{{Type: Volume, Name: "capi-x-mgmtcluster"}, {Type: Volume, Name: "capi-mgmtcluster-2"}, {Type: Volume, Name: "mycapi-mgmtcluster"}}},
		{"lab-mgmt-port", Resource{Type: Port, Name: "capi-mgmtcluster"}, LabOwner,
			[]Resource{{Type: Port, Name: "capi-x-mgmtcluster"}, {Type: Port, Name: "capi-mgmtcluster-port"}, {Type: Volume, Name: "mycapi-mgmtcluster"}}},
		{"lab-mgmt-floating-ip", Resource{Type: FloatingIP, Tags: []string{"capi-mgmtcluster"}}, LabOwner, []Resource{{Type: FloatingIP, Tags: []string{"capi-x-mgmtcluster"}}}},
		{"lab-network", Resource{Type: Network, Name: "capi-net"}, LabOwner, []Resource{{Type: Network, Name: "capi-x-net"}, {Type: Network, Name: "capi-net-2"}}},
		{"lab-subnet", Resource{Type: Subnet, Name: "capi-subnet"}, LabOwner, nil},
		{"lab-router", Resource{Type: Router, Name: "capi-rtr"}, LabOwner, nil},
		{"lab-secgroup-mgmt", Resource{Type: SecurityGroup, Name: "capi-mgmt"}, LabOwner, []Resource{{Type: SecurityGroup, Name: "capi-x-mgmt"}}},
		{"lab-secgroup-allow-ssh", Resource{Type: SecurityGroup, Name: "capi-allow-ssh"}, LabOwner, []Resource{{Type: SecurityGroup, Name: "capi-allow-http"}}},
		{"lab-secgroup-allow-icmp", Resource{Type: SecurityGroup, Name: "capi-allow-icmp"}, LabOwner, nil},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.rule+"/"+tt.owned.Name+tt.owned.Description, func(t *testing.T) {
			// Lab "capi" owns alpha; alpha-2, alpha-20 and myalpha are
			// clusters of nobody the lab knows.
			owned := tt.owned
			owned.ID = "owned-1"
			resources := []Resource{owned}
			for i, f := range tt.foreign {
				f.ID = "foreign-" + string(rune('a'+i))
				resources = append(resources, f)
			}
			got := Classify(labWith("capi", "alpha"), resources)
			if len(got) != 1 || got[0].ID != "owned-1" {
				t.Fatalf("want exactly the owned resource claimed, got %+v", got)
			}
			if got[0].Rule != tt.rule || got[0].Cluster != tt.owner || got[0].Reason == "" {
				t.Fatalf("claimed by rule %q for %q, want rule %q for %q", got[0].Rule, got[0].Cluster, tt.rule, tt.owner)
			}
			covered[tt.rule] = true
		})
	}
	for _, r := range Rules {
		if !covered[r.ID] {
			t.Errorf("rule %s has no test case", r.ID)
		}
	}
}

// TestRelations proves each derived rule on its own.
func TestRelations(t *testing.T) {
	net := Resource{Type: Network, ID: "n1", Name: "k8s-clusterapi-cluster-alpha-alpha"}
	foreignNet := Resource{Type: Network, ID: "n2", Name: "k8s-clusterapi-cluster-alpha-2-alpha-2"}
	lb := Resource{Type: LoadBalancer, ID: "lb1", Name: "kube_service_alpha_default_web", PortID: "vip-elsewhere"}
	server := Resource{Type: Server, ID: "s1", Name: "alpha-md-0-abcde"}
	tests := []struct {
		relation string
		target   Resource
		context  []Resource
		owner    string
	}{
		{"port-on-owned-network", Resource{Type: Port, ID: "p1", NetworkID: "n1", DeviceOwner: "Octavia"}, []Resource{net}, "alpha"},
		{"port-on-owned-network", Resource{Type: RouterInterface, ID: "ri1", NetworkID: "n1", RouterID: "foreign-router"}, []Resource{net}, "alpha"},
		{"subnet-of-owned-network", Resource{Type: Subnet, ID: "sn1", Name: "extra", NetworkID: "n1"}, []Resource{net}, "alpha"},
		{"interface-of-owned-router", Resource{Type: RouterInterface, ID: "ri2", RouterID: "r1", NetworkID: "other"}, []Resource{{Type: Router, ID: "r1", Name: "k8s-clusterapi-cluster-alpha-alpha"}}, "alpha"},
		{"floating-ip-on-owned-port", Resource{Type: FloatingIP, ID: "f1", PortID: "p9"}, []Resource{net, {Type: Port, ID: "p9", NetworkID: "n1"}}, "alpha"},
		{"floating-ip-on-owned-lb-vip", Resource{Type: FloatingIP, ID: "f2", PortID: "vip-elsewhere"}, []Resource{lb}, "alpha"},
		{"server-with-cluster-port", server, []Resource{net, {Type: Port, ID: "p3", NetworkID: "n1", DeviceID: "s1"}}, "alpha"},
		{"volume-of-owned-server", Resource{Type: Volume, ID: "v1", Description: "Root volume for alpha-md-0-abcde"}, []Resource{net, server, {Type: Port, ID: "p3", NetworkID: "n1", DeviceID: "s1"}}, "alpha"},
		{"volume-of-mgmt-server", Resource{Type: Volume, ID: "v2", Name: "data", AttachedTo: []string{"m1"}}, []Resource{{Type: Server, ID: "m1", Name: "capi-mgmtcluster"}}, LabOwner},
		{"snapshot-of-owned-volume", Resource{Type: Snapshot, ID: "sn9", VolumeID: "v3"}, []Resource{{Type: Volume, ID: "v3", Metadata: map[string]string{"cinder.csi.openstack.org/cluster": "alpha"}}}, "alpha"},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.relation, func(t *testing.T) {
			all := append([]Resource{tt.target}, tt.context...)
			all = append(all, foreignNet, Resource{Type: Port, ID: "fp", NetworkID: "n2", DeviceID: "s-foreign"}, Resource{Type: Server, ID: "s-foreign", Name: "alpha-2-md-0"})
			var got *Owned
			for _, o := range Classify(labWith("capi", "alpha"), all) {
				if o.Key() == tt.target.Key() {
					got = &o
				}
				if strings.HasPrefix(o.ID, "fp") || o.ID == "s-foreign" || o.ID == "n2" {
					t.Fatalf("foreign %s claimed by %s", o.Label(), o.Rule)
				}
			}
			if got == nil || got.Rule != tt.relation || got.Cluster != tt.owner {
				t.Fatalf("got %+v, want relation %s for %q", got, tt.relation, tt.owner)
			}
			covered[tt.relation] = true
		})
	}
	for _, r := range Relations {
		if !covered[r.ID] {
			t.Errorf("relation %s has no test case", r.ID)
		}
	}
}

func TestServerNeedsClusterNamePrefix(t *testing.T) {
	// The management node attached to a cluster network keeps its server:
	// its port there is the cluster's, the server is not.
	res := []Resource{
		{Type: Network, ID: "n1", Name: "k8s-clusterapi-cluster-alpha-alpha"},
		{Type: Port, ID: "p1", NetworkID: "n1", DeviceID: "s1"},
		{Type: Server, ID: "s1", Name: "other-lab-mgmtcluster"},
	}
	for _, o := range Classify(labWith("capi", "alpha"), res) {
		if o.Type == Server {
			t.Fatalf("server claimed: %+v", o)
		}
	}
}

func TestAmbiguousShortDescription(t *testing.T) {
	// "cluster a-a" is CAPO's long form for cluster a and its short form for
	// cluster a-a. The network decides when it can.
	desc := "Created by cluster-api-provider-openstack cluster a-a"
	res := []Resource{
		{Type: Network, ID: "n1", Name: "k8s-clusterapi-cluster-a-a-a-a"},
		{Type: Port, ID: "p1", NetworkID: "n1", Description: desc},
		{Type: FloatingIP, ID: "f1", Description: desc},
	}
	got := map[string]Owned{}
	for _, o := range Classify(labWith("capi", "a", "a-a"), res) {
		got[o.ID] = o
	}
	if got["p1"].Cluster != "a-a" || len(got["p1"].Also) != 0 {
		t.Fatalf("port on a-a's network: %+v", got["p1"])
	}
	if got["f1"].Cluster != "a" || !slices.Equal(got["f1"].Also, []string{"a-a"}) {
		t.Fatalf("floating IP: %+v", got["f1"])
	}
	// Selecting only one of them keeps the ambiguous resource, and says why.
	sel, kept := Filter{Clusters: []string{"a"}}.Select([]Owned{got["f1"]})
	if len(sel) != 0 || len(kept) != 1 || !strings.Contains(kept[0].Why, "a-a") {
		t.Fatalf("selected %v kept %v", sel, kept)
	}
}

func TestDiscoverClusters(t *testing.T) {
	res := []Resource{
		{Type: AppCred, Name: "capi-alpha-appcred", Description: "capilab lab=capi cluster=alpha"},
		{Type: AppCred, Name: "capi-alpha-2-appcred"},                                              // SCS-made: name only
		{Type: AppCred, Name: "capi-x-foo-appcred", Description: "capilab lab=capi-x cluster=foo"}, // another lab
		{Type: AppCred, Name: "capi-appcred", Description: "capilab lab=capi"},                     // the lab's own
		{Type: AppCred, Name: "capi-Bad_Name-appcred"},
		{Type: AppCred, Name: "other-beta-appcred"},
		{Type: AppCred, Name: "capi-y-bar-appcred"}, // could be lab capi-y, which exists
		{Type: Keypair, Name: "capi-y-keypair"},
	}
	got, notes := DiscoverClusters("capi", res, ClusterSources{Recorded: []string{"gamma"}, Management: []string{"alpha"}, Namespaces: map[string]string{"gamma": "ns1"}})
	var names []string
	for n := range got {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"alpha", "alpha-2", "gamma"}) {
		t.Fatalf("clusters = %v (notes %v)", names, notes)
	}
	if len(got["alpha"].Evidence) != 2 || got["gamma"].Namespace != "ns1" || got["gamma"].resourceName() != "ns1-gamma" {
		t.Fatalf("alpha %+v gamma %+v", got["alpha"], got["gamma"])
	}
	joined := strings.Join(notes, "\n")
	for _, want := range []string{`belongs to lab "capi-x"`, `may be cluster "bar" of lab "capi-y"`} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes lack %q:\n%s", want, joined)
		}
	}
}

func TestOtherLabsTagWins(t *testing.T) {
	res := []Resource{
		{Type: Network, ID: "n1", Name: "k8s-clusterapi-cluster-alpha-alpha", Tags: []string{"capilab-lab=other", "capilab-cluster=alpha"}},
		{Type: Network, ID: "n2", Name: "k8s-clusterapi-cluster-alpha-alpha", Tags: []string{"capilab-lab=capi", "capilab-cluster=alpha"}},
	}
	got := Classify(labWith("capi", "alpha"), res)
	if len(got) != 1 || got[0].ID != "n2" {
		t.Fatalf("got %+v", got)
	}
}
