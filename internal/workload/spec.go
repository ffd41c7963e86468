package workload

import (
	"math"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/capilab/capilab/internal/naming"
)

// Spec is one workload cluster as the effective settings describe it.
type Spec struct {
	Name, Namespace string
	Prefix          string

	KubernetesVersion  string
	ControlPlaneCount  int
	WorkerCount        int
	ControlPlaneFlavor string
	WorkerFlavor       string
	ImageName          string

	NodeCIDR, PodCIDR, ServiceCIDR string
	DNSNameservers                 []string
	MTU                            int
	ExternalNetwork                string
	// RestrictKubeAPI: empty = everyone; ["none"] = no floating IP for the
	// API; else the CIDRs allowed.
	RestrictKubeAPI  []string
	OVNLoadBalancer  bool
	AvailabilityZone string

	ControlPlaneServerGroupID, WorkerServerGroupID string
	ControlPlaneRootVolumeGiB, WorkerRootVolumeGiB int
	ControlPlaneMetadata, WorkerMetadata           map[string]string
	ExtraSecurityGroups                            []string

	EtcdUnsafeNoFsync bool
	HTTPProxy         string
	NoProxy           string
	// RegistryMirrorFiles are containerd's host files of the registry
	// mirrors (path, content), rendered from registry_mirrors.
	RegistryMirrorFiles []MirrorFile
	LocalLab            bool

	// IdentitySecret is the Secret (in Namespace) with the cluster's
	// clouds.yaml; CloudName the cloud in it.
	IdentitySecret, CloudName string
}

// MirrorFile is one containerd host file.
type MirrorFile struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

// Tags are the tags capilab asks CAPO to put on the cluster's OpenStack
// resources: they tell two labs' clusters of the same name apart.
func (s Spec) Tags() []string {
	return []string{naming.LabTag(s.Prefix), naming.ClusterTag(s.Name)}
}

// Variables renders the ClusterClass variables of the spec.
func (s Spec) Variables() []clusterv1.ClusterVariable {
	vars := map[string]any{
		VarIdentityRef:             map[string]string{"name": s.IdentitySecret, "cloudName": s.CloudName},
		VarNodeCIDR:                s.NodeCIDR,
		VarNetworkMTU:              s.MTU,
		VarExternalNetwork:         s.ExternalNetwork,
		VarControlPlaneFlavor:      s.ControlPlaneFlavor,
		VarWorkerFlavor:            s.WorkerFlavor,
		VarImageName:               s.ImageName,
		VarControlPlaneServerGroup: s.ControlPlaneServerGroupID,
		VarWorkerServerGroup:       s.WorkerServerGroupID,
		VarControlPlaneRootVolume:  s.ControlPlaneRootVolumeGiB,
		VarWorkerRootVolume:        s.WorkerRootVolumeGiB,
		VarEtcdUnsafeNoFsync:       s.EtcdUnsafeNoFsync,
		VarHTTPProxy:               s.HTTPProxy,
		VarNoProxy:                 s.NoProxy,
		VarTags:                    s.Tags(),
		VarLocalLab:                s.LocalLab,
		VarAvailabilityZone:        s.AvailabilityZone,
		VarDisableAPIServerFIP:     len(s.RestrictKubeAPI) == 1 && s.RestrictKubeAPI[0] == "none",
	}
	if len(s.DNSNameservers) > 0 {
		vars[VarDNSNameservers] = s.DNSNameservers
	}
	if len(s.RestrictKubeAPI) > 0 && !(len(s.RestrictKubeAPI) == 1 && s.RestrictKubeAPI[0] == "none") {
		vars[VarAPIServerAllowedCIDRs] = s.RestrictKubeAPI
	}
	if s.OVNLoadBalancer {
		vars[VarAPIServerLBProvider] = "ovn"
	}
	if len(s.ControlPlaneMetadata) > 0 {
		vars[VarControlPlaneMetadata] = s.ControlPlaneMetadata
	}
	if len(s.WorkerMetadata) > 0 {
		vars[VarWorkerMetadata] = s.WorkerMetadata
	}
	if len(s.ExtraSecurityGroups) > 0 {
		vars[VarExtraSecurityGroups] = s.ExtraSecurityGroups
	}
	if len(s.RegistryMirrorFiles) > 0 {
		vars[VarRegistryMirrorFiles] = s.RegistryMirrorFiles
	}
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]clusterv1.ClusterVariable, 0, len(names))
	for _, n := range names {
		out = append(out, clusterv1.ClusterVariable{Name: n, Value: *rawJSON(vars[n])})
	}
	return out
}

// Cluster renders the Cluster object with its topology.
func (s Spec) Cluster() *clusterv1.Cluster {
	return &clusterv1.Cluster{
		TypeMeta: metav1.TypeMeta{APIVersion: clusterv1.GroupVersion.String(), Kind: "Cluster"},
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, Labels: map[string]string{
			"app.kubernetes.io/managed-by": "capilab", "capilab.dev/lab": s.Prefix,
			// selects the cluster for its addons' ClusterResourceSets (internal/addons.ClusterLabels)
			"capilab.dev/cluster": s.Name}},
		Spec: clusterv1.ClusterSpec{
			ClusterNetwork: clusterv1.ClusterNetwork{
				Pods:          clusterv1.NetworkRanges{CIDRBlocks: []string{s.PodCIDR}},
				Services:      clusterv1.NetworkRanges{CIDRBlocks: []string{s.ServiceCIDR}},
				ServiceDomain: "cluster.local",
			},
			Topology: clusterv1.Topology{
				ClassRef:     clusterv1.ClusterClassRef{Name: ClassName},
				Version:      s.KubernetesVersion,
				ControlPlane: clusterv1.ControlPlaneTopology{Replicas: ptr.To(int32(s.ControlPlaneCount))},
				Workers: clusterv1.WorkersTopology{MachineDeployments: []clusterv1.MachineDeploymentTopology{{
					Class: WorkerClass, Name: "md-0", Replicas: ptr.To(int32(s.WorkerCount)),
				}}},
				Variables: s.Variables(),
			},
		},
	}
}

// Namespace is the cluster's namespace object.
func (s Spec) NamespaceObject() *corev1.Namespace {
	return &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: s.Namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "capilab"}}}
}

// RootVolumeGiB is the root volume a server of a flavor without a disk
// gets (SCS's rule): the image's size plus half the RAM, rounded up to a
// multiple of 5 GiB, at most 125 GiB. A flavor with a disk gets none (0).
func RootVolumeGiB(flavorDiskGiB int, imageSizeBytes int64, ramMiB int) int {
	if flavorDiskGiB > 0 {
		return 0
	}
	gib := float64(imageSizeBytes)/(1<<30) + float64(ramMiB)/1024/2
	size := int(math.Ceil(gib/5)) * 5
	if size < 5 {
		size = 5
	}
	return min(size, 125)
}
