package cleanup

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// seeder builds a realistic mixture of resources, the way CAPO, OCCM,
// Cinder CSI and the lab create them, and remembers for each resource
// whether it is the lab's (ground truth, independent of the classifier).
type seeder struct {
	rng   *rand.Rand
	n     int
	all   []*Resource
	ours  map[string]bool // key → owned by the lab under test
	owner map[string]string
	now   time.Time
}

func newSeeder(seed uint64) *seeder {
	return &seeder{rng: rand.New(rand.NewPCG(seed, 1)), ours: map[string]bool{}, owner: map[string]string{}, now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
}

func (s *seeder) id(t Type) string {
	s.n++
	return fmt.Sprintf("%s-%04d", t, s.n)
}

// add records r; owner is the cluster (or LabOwner) when it is ours, "-" when foreign.
func (s *seeder) add(r Resource, ours bool, owner string) *Resource {
	if r.ID == "" {
		r.ID = s.id(r.Type)
	}
	if r.CreatedAt.IsZero() && r.Type != Keypair && r.Type != ServerGroup && r.Type != AppCred {
		r.CreatedAt = s.now.Add(-time.Duration(1+s.rng.IntN(72)) * time.Hour)
	}
	p := &r
	s.all = append(s.all, p)
	if ours {
		s.ours[r.Key()] = true
		s.owner[r.Key()] = owner
	}
	return p
}

// resources returns copies of everything seeded.
func (s *seeder) resources() []Resource {
	out := make([]Resource, len(s.all))
	for i, r := range s.all {
		out[i] = *r
	}
	return out
}

func (s *seeder) coin(p float64) bool { return s.rng.Float64() < p }

// cluster seeds one workload cluster's resources. ours says whether they
// are the lab's; withAppCred adds the credential that proves it.
// It returns false when the credential it made has no capilab description
// (made by SCS), so only its name says whose it is.
func (s *seeder) cluster(prefix, name string, ours, withAppCred bool) (described bool) {
	rn := name + "-" + name
	capoLong := "Created by cluster-api-provider-openstack cluster " + rn
	capoShort := "Created by cluster-api-provider-openstack cluster " + name
	add := func(r Resource) *Resource { return s.add(r, ours, name) }

	net := add(Resource{Type: Network, Name: "k8s-clusterapi-cluster-" + rn})
	sub := add(Resource{Type: Subnet, Name: "k8s-clusterapi-cluster-" + rn, Description: capoLong, NetworkID: net.ID})
	rtr := add(Resource{Type: Router, Name: "k8s-clusterapi-cluster-" + rn, Description: capoLong})
	add(Resource{Type: RouterInterface, NetworkID: net.ID, SubnetIDs: []string{sub.ID}, RouterID: rtr.ID, DeviceOwner: "network:router_interface"})
	sgs := []*Resource{
		add(Resource{Type: SecurityGroup, Name: "k8s-cluster-" + rn + "-secgroup-controlplane"}),
		add(Resource{Type: SecurityGroup, Name: "k8s-cluster-" + rn + "-secgroup-worker"}),
	}
	if s.coin(0.3) {
		add(Resource{Type: SecurityGroup, Name: "k8s-cluster-" + rn + "-secgroup-bastion"})
	}
	// API load balancer with its VIP port and floating IP.
	if s.coin(0.9) {
		vip := add(Resource{Type: Port, Name: "octavia-lb-vip", NetworkID: net.ID, SubnetIDs: []string{sub.ID}, DeviceOwner: "Octavia"})
		lb := add(Resource{Type: LoadBalancer, Name: "k8s-clusterapi-cluster-" + rn + "-kubeapi", Description: capoLong, PortID: vip.ID, NetworkID: net.ID, SubnetIDs: []string{sub.ID}})
		vip.DeviceID = "lb-" + lb.ID
		if s.coin(0.8) {
			add(Resource{Type: FloatingIP, Description: capoLong, PortID: vip.ID, RouterID: rtr.ID})
		}
	}
	// Leaked, never associated floating IPs (a live CAPO run left these).
	for range s.rng.IntN(3) {
		add(Resource{Type: FloatingIP, Description: capoLong})
	}
	// Machines: a port (CAPO description, short or long form), a server on it.
	var servers []*Resource
	for i := range 1 + s.rng.IntN(4) {
		desc := capoLong
		if s.coin(0.5) {
			desc = capoShort
		}
		port := add(Resource{Type: Port, Name: fmt.Sprintf("%s-md-0-%d-0", name, i), Description: desc, NetworkID: net.ID, SubnetIDs: []string{sub.ID}, SecurityGroupIDs: []string{sgs[i%2].ID}})
		if s.coin(0.85) {
			srv := add(Resource{Type: Server, Name: fmt.Sprintf("%s-md-0-%d", name, i), KeyName: prefix + "-keypair"})
			port.DeviceID, port.DeviceOwner = srv.ID, "compute:nova"
			servers = append(servers, srv)
			if s.coin(0.3) {
				add(Resource{Type: Volume, Name: srv.Name + "-root", Description: "Root volume for " + srv.Name, AttachedTo: []string{srv.ID}})
			}
		}
	}
	// OCCM: a Service load balancer, its floating IP and security group.
	for i := range s.rng.IntN(3) {
		svc := fmt.Sprintf("svc%d", i)
		vip := add(Resource{Type: Port, NetworkID: net.ID, SubnetIDs: []string{sub.ID}, DeviceOwner: "Octavia"})
		lb := add(Resource{Type: LoadBalancer, Name: fmt.Sprintf("kube_service_%s_default_%s", name, svc), PortID: vip.ID, NetworkID: net.ID})
		vip.DeviceID = "lb-" + lb.ID
		if s.coin(0.7) {
			add(Resource{Type: FloatingIP, Description: fmt.Sprintf("Floating IP for Kubernetes external service default/%s from cluster %s", svc, name), PortID: vip.ID, RouterID: rtr.ID})
		}
		add(Resource{Type: SecurityGroup, Name: "lb-sg-" + lb.ID, Description: fmt.Sprintf("Security Group for default/%s Service LoadBalancer in cluster %s", svc, name)})
	}
	// Cinder CSI volumes, some attached, some with snapshots.
	for range s.rng.IntN(3) {
		v := add(Resource{Type: Volume, Name: "pvc-" + s.id("pvc"), Metadata: map[string]string{"cinder.csi.openstack.org/cluster": name}})
		if len(servers) > 0 && s.coin(0.4) {
			v.AttachedTo = []string{servers[s.rng.IntN(len(servers))].ID}
		}
		if s.coin(0.3) {
			add(Resource{Type: Snapshot, Name: "snapshot-" + s.id("snap"), VolumeID: v.ID, Metadata: map[string]string{"cinder.csi.openstack.org/cluster": name}})
		}
	}
	// What the lab makes per cluster.
	members := make([]string, 0, len(servers))
	for _, srv := range servers {
		members = append(members, srv.ID)
	}
	add(Resource{Type: ServerGroup, Name: prefix + "-" + name + "-controller", Members: members})
	add(Resource{Type: ServerGroup, Name: prefix + "-" + name + "-worker"})
	if s.coin(0.7) {
		add(Resource{Type: SecurityGroup, Name: prefix + "-" + name + "-cilium"})
	}
	if withAppCred {
		desc := fmt.Sprintf("capilab lab=%s cluster=%s", prefix, name)
		if s.coin(0.3) {
			desc = "" // made by SCS: name only
		}
		add(Resource{Type: AppCred, Name: prefix + "-" + name + "-appcred", Description: desc})
		return desc != ""
	}
	return true
}

// labOwn seeds the lab's own resources (management node and credentials).
func (s *seeder) labOwn(prefix string, ours bool) {
	add := func(r Resource) *Resource { return s.add(r, ours, LabOwner) }
	net := add(Resource{Type: Network, Name: prefix + "-net"})
	sub := add(Resource{Type: Subnet, Name: prefix + "-subnet", NetworkID: net.ID})
	rtr := add(Resource{Type: Router, Name: prefix + "-rtr"})
	add(Resource{Type: RouterInterface, NetworkID: net.ID, SubnetIDs: []string{sub.ID}, RouterID: rtr.ID})
	sg := add(Resource{Type: SecurityGroup, Name: prefix + "-mgmt"})
	add(Resource{Type: SecurityGroup, Name: prefix + "-allow-ssh"})
	srv := add(Resource{Type: Server, Name: prefix + "-mgmtcluster", KeyName: prefix + "-keypair"})
	port := add(Resource{Type: Port, NetworkID: net.ID, SubnetIDs: []string{sub.ID}, DeviceID: srv.ID, DeviceOwner: "compute:nova", SecurityGroupIDs: []string{sg.ID}})
	add(Resource{Type: FloatingIP, PortID: port.ID, RouterID: rtr.ID, Tags: []string{prefix + "-mgmtcluster"}})
	add(Resource{Type: Volume, Name: "data", AttachedTo: []string{srv.ID}})
	add(Resource{Type: Keypair, ID: prefix + "-keypair", Name: prefix + "-keypair"})
	add(Resource{Type: AppCred, Name: prefix + "-appcred", Description: "capilab lab=" + prefix})
}

// unrelated seeds things of nobody in particular.
func (s *seeder) unrelated() {
	f := func(r Resource) { s.add(r, false, "-") }
	ext := s.add(Resource{Type: Network, Name: "public"}, false, "-")
	f(Resource{Type: SecurityGroup, Name: "default"})
	f(Resource{Type: FloatingIP, Description: ""})
	f(Resource{Type: FloatingIP, Description: "Created by cluster-api-provider-openstack OpenStackFloatingIPPool pool-1"})
	f(Resource{Type: Server, Name: "my-server"})
	f(Resource{Type: Volume, Name: "pvc-1234", Metadata: map[string]string{"cinder.csi.openstack.org/cluster": "kubernetes"}})
	f(Resource{Type: Port, Name: "gw", NetworkID: ext.ID, DeviceOwner: "network:router_gateway"})
	f(Resource{Type: Keypair, ID: "default", Name: "default"})
	f(Resource{Type: LoadBalancer, Name: "kube_service_kubernetes_default_web"})
}

// byKey finds a seeded resource by its key.
func (s *seeder) byKey(key string) *Resource {
	for _, r := range s.all {
		if r.Key() == key {
			return r
		}
	}
	return nil
}
