// Package naming is capilab's ownership vocabulary: the names, descriptions,
// tags and metadata by which the lab, and the controllers it runs, mark
// what they create in OpenStack. The code that creates a resource and the
// cleanup rules that claim it (internal/cleanup) read the same function
// here, so the two cannot drift apart.
//
// Three owners write names:
//
//   - the lab itself (SCS's names, kept so labs made by either tool are
//     cleaned by the same rules): its credential, keypair and management
//     node, and per workload cluster its server groups, its cilium
//     security group and its credential;
//   - CAPO, for a cluster's infrastructure, from its cluster resource name
//     "<namespace>-<cluster>" (CAPO v0.14's pkg/cloud/services/{networking,
//     loadbalancer,compute} and pkg/utils/names), plus the tags capilab
//     puts on the OpenStackCluster;
//   - OCCM (--cluster-name=<cluster>) and Cinder CSI (--cluster=<cluster>)
//     for what a cluster's Services and volumes need.
//
// Functions take the prefix, cluster and resource name as strings; the
// cleanup rules call them with the placeholders {P}, {C} and {R} to get
// their templates.
package naming

import (
	"strings"
	"time"
)

// --- the lab's own resources ----------------------------------------------

// AppCred is the Keystone name of the lab's application credential
// (cluster "") or of a cluster's: <prefix>-appcred, <prefix>-<cluster>-appcred.
func AppCred(prefix, cluster string) string {
	if cluster == "" {
		return prefix + "-appcred"
	}
	return prefix + "-" + cluster + "-appcred"
}

// CloudEntry is the clouds.yaml entry of the lab's credential (<prefix>) or
// of a cluster's (<prefix>-<cluster>).
func CloudEntry(prefix, cluster string) string {
	if cluster == "" {
		return prefix
	}
	return prefix + "-" + cluster
}

// Keypair is the lab's keypair: <prefix>-keypair.
func Keypair(prefix string) string { return prefix + "-keypair" }

// MgmtServer is the remote management node: <prefix>-mgmtcluster (also its
// port and root volume).
func MgmtServer(prefix string) string { return prefix + "-mgmtcluster" }

// MgmtFloatingIPTag marks the management node's floating IP (floating IPs
// have no name).
func MgmtFloatingIPTag(prefix string) string { return MgmtServer(prefix) }

// MgmtVolume is the management node's data volume: <prefix>-mgmthost.
func MgmtVolume(prefix string) string { return prefix + "-mgmthost" }

// MgmtNetwork, MgmtSubnet and MgmtRouter are the management node's network:
// <prefix>-net, <prefix>-subnet, <prefix>-rtr.
func MgmtNetwork(prefix string) string { return prefix + "-net" }
func MgmtSubnet(prefix string) string  { return prefix + "-subnet" }
func MgmtRouter(prefix string) string  { return prefix + "-rtr" }

// MgmtSecurityGroup is the management node's security group: <prefix>-mgmt.
func MgmtSecurityGroup(prefix string) string { return prefix + "-mgmt" }

// AllowSSH and AllowICMP are the security groups SCS's management node had:
// <prefix>-allow-ssh, <prefix>-allow-icmp.
func AllowSSH(prefix string) string  { return prefix + "-allow-ssh" }
func AllowICMP(prefix string) string { return prefix + "-allow-icmp" }

// KindCluster is the kind management cluster: <prefix>-mgmt (local or on
// the management node).
func KindCluster(prefix string) string { return prefix + "-mgmt" }

// --- what the lab creates per workload cluster ------------------------------

// Server group roles.
const (
	RoleController = "controller"
	RoleWorker     = "worker"
)

// ServerGroup is a cluster's anti-affinity server group of a role:
// <prefix>-<cluster>-controller, <prefix>-<cluster>-worker.
func ServerGroup(prefix, cluster, role string) string { return prefix + "-" + cluster + "-" + role }

// CiliumSecurityGroup is a cluster's security group for cilium's ports:
// <prefix>-<cluster>-cilium.
func CiliumSecurityGroup(prefix, cluster string) string { return prefix + "-" + cluster + "-cilium" }

// LabTag and ClusterTag are the tags capilab puts on a cluster's
// OpenStackCluster (spec.tags), which CAPO copies onto what it creates, and
// on the management node's Neutron resources (LabTag).
func LabTag(prefix string) string      { return labTagKey + "=" + prefix }
func ClusterTag(cluster string) string { return "capilab-cluster=" + cluster }

const labTagKey = "capilab-lab"

// TaggedLab reads the lab of a LabTag ("" and false for other tags).
func TaggedLab(tag string) (string, bool) { return strings.CutPrefix(tag, labTagKey+"=") }

// --- application credential descriptions ----------------------------------

const descriptionTag = "capilab"

// AppCredDescription is the description of every credential capilab
// creates: "capilab lab=<prefix>" or "capilab lab=<prefix> cluster=<cluster>".
// It, not the name, proves a credential is the lab's: prefix "capi" +
// cluster "foo-bar" and prefix "capi-foo" + cluster "bar" give the same name.
func AppCredDescription(prefix, cluster string) string {
	d := descriptionTag + " lab=" + prefix
	if cluster != "" {
		d += " cluster=" + cluster
	}
	return d
}

// CreatedKey is the description field that records when capilab created a
// credential (RFC 3339, UTC): Keystone does not report it, and cleaning up
// by age (older_than) needs it.
const CreatedKey = "created"

// AppCredDescriptionAt is AppCredDescription with the creation time: what a
// create sends.
func AppCredDescriptionAt(prefix, cluster string, created time.Time) string {
	return AppCredDescription(prefix, cluster) + " " + CreatedKey + "=" + created.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// AppCredCreatedAt reads the creation time from a description
// AppCredDescriptionAt wrote; zero when there is none (credentials made
// before it was recorded, SCS's).
func AppCredCreatedAt(desc string) time.Time {
	if _, _, ok := ParseAppCredDescription(desc); !ok {
		return time.Time{}
	}
	for _, f := range strings.Fields(desc)[1:] {
		if v, ok := strings.CutPrefix(f, CreatedKey+"="); ok {
			t, err := time.Parse(time.RFC3339, v)
			if err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// ParseAppCredDescription reads a description AppCredDescription wrote. ok
// is false for anything else: another tool's credential, a hand-made one, a
// malformed or repeated field. Unknown key=value fields after the tag are
// ignored, so that later versions may add some.
func ParseAppCredDescription(desc string) (prefix, cluster string, ok bool) {
	fields := strings.Fields(desc)
	if len(fields) < 2 || fields[0] != descriptionTag {
		return "", "", false
	}
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, found := strings.Cut(f, "=")
		if !found || k == "" || seen[k] {
			return "", "", false
		}
		seen[k] = true
		switch k {
		case "lab":
			if v == "" {
				return "", "", false
			}
			prefix = v
		case "cluster":
			if v == "" {
				return "", "", false
			}
			cluster = v
		}
	}
	if prefix == "" {
		return "", "", false
	}
	return prefix, cluster, true
}

// --- CAPO -----------------------------------------------------------------

// CAPOResourceName is CAPO's name for a cluster's resources:
// "<namespace>-<cluster>" (the namespace is the cluster's own name unless set).
func CAPOResourceName(namespace, cluster string) string {
	if namespace == "" {
		namespace = cluster
	}
	return namespace + "-" + cluster
}

// CAPONetwork is the name of the network, subnet and router CAPO creates
// for a cluster: k8s-clusterapi-cluster-<R>.
func CAPONetwork(rn string) string { return "k8s-clusterapi-cluster-" + rn }

// CAPOKubeAPILoadBalancer is the cluster's API server load balancer:
// k8s-clusterapi-cluster-<R>-kubeapi.
func CAPOKubeAPILoadBalancer(rn string) string { return CAPONetwork(rn) + "-kubeapi" }

// CAPO security group roles.
const (
	CAPORoleControlPlane = "controlplane"
	CAPORoleWorker       = "worker"
	CAPORoleBastion      = "bastion"
)

// CAPOSecurityGroup is a managed security group of the cluster:
// k8s-cluster-<R>-secgroup-<role>.
func CAPOSecurityGroup(rn, role string) string { return "k8s-cluster-" + rn + "-secgroup-" + role }

// CAPODescription is the description CAPO writes on ports, floating IPs,
// subnets, routers and load balancers: "Created by
// cluster-api-provider-openstack cluster <name>", with <name> CAPO's
// resource name (a live CAPO wrote the cluster name alone on machine ports).
func CAPODescription(name string) string {
	return "Created by cluster-api-provider-openstack cluster " + name
}

// --- OCCM (--cluster-name) and Cinder CSI (--cluster) -------------------------

// OCCMLoadBalancerPrefix starts the name of every load balancer OCCM creates
// for a Service of the cluster: kube_service_<cluster>_<namespace>_<service>.
func OCCMLoadBalancerPrefix(cluster string) string { return "kube_service_" + cluster + "_" }

// OCCMFloatingIPDescription is what the description of a Service's floating
// IP starts and ends with: "Floating IP for Kubernetes external service
// <namespace>/<service> from cluster <cluster>".
func OCCMFloatingIPDescription(cluster string) (prefix, suffix string) {
	return "Floating IP for Kubernetes external service ", " from cluster " + cluster
}

// OCCMSecurityGroupDescription is what the description of a Service load
// balancer's security group starts and ends with: "Security Group for
// <namespace>/<service> Service LoadBalancer in cluster <cluster>".
func OCCMSecurityGroupDescription(cluster string) (prefix, suffix string) {
	return "Security Group for ", "Service LoadBalancer in cluster " + cluster
}

// CSIClusterKey is the volume and snapshot metadata key Cinder CSI writes
// the cluster name under.
const CSIClusterKey = "cinder.csi.openstack.org/cluster"

// CAPOVolumeDescriptions are the descriptions CAPO gives a machine's root
// volume and its additional block devices.
func CAPOVolumeDescriptions(server string) []string {
	return []string{"Root volume for " + server, "Additional block device for " + server}
}

// MachinePrefix starts the names of a cluster's machines (servers): CAPI
// names them after the cluster, "<cluster>-<pool>-…".
func MachinePrefix(cluster string) string { return cluster + "-" }

// --- reading names back --------------------------------------------------------

// ClusterOfAppCred reads the cluster from the name of a cluster's
// credential, <prefix>-<cluster>-appcred; ok is false for any other name
// (the lab's own included).
func ClusterOfAppCred(prefix, name string) (cluster string, ok bool) {
	rest, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return "", false
	}
	cluster, ok = strings.CutSuffix(rest, "-appcred")
	return cluster, ok && cluster != ""
}

// LabOfKeypair reads the prefix from a lab keypair's name (Keypair).
func LabOfKeypair(name string) (prefix string, ok bool) { return strings.CutSuffix(name, "-keypair") }

// LabOfMgmtServer reads the prefix from a management node's name (MgmtServer).
func LabOfMgmtServer(name string) (prefix string, ok bool) {
	return strings.CutSuffix(name, "-mgmtcluster")
}
