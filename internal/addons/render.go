package addons

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/versions"
)

// ClusterInfo is what the addon manifests need to know of a cluster.
type ClusterInfo struct {
	// Name is the Cluster API cluster's name: OCCM's --cluster-name and
	// Cinder CSI's --cluster, the ownership markers of what they create.
	Name string
	// Namespace holds the Cluster on the management cluster (and the
	// ClusterResourceSets).
	Namespace         string
	KubernetesVersion string
	PodCIDR           string
	// MTU of the cluster network (0: the CNI's own default).
	MTU int
	// CloudConf is the cluster's cloud.conf (OCCM and Cinder CSI); it holds
	// the application credential's secret: it only ever goes into Secrets.
	CloudConf []byte
	// ControlPlaneEndpoint (host:port) is given to the cni-agent when known;
	// without it the agent reaches the API through the kubernetes Service.
	ControlPlaneEndpoint string
}

// Renderer turns selected addons into the objects a workload cluster gets.
type Renderer struct {
	Pins    versions.Addons
	Sources *Sources
	// CNIAgentManifest is the cni-agent's manifest from the local node
	// image (LocalCNIManifest); needed only when the cni-agent is selected.
	CNIAgentManifest []byte
	// Helm renders the cilium chart (needed only for cilium).
	Helm ChartRenderer
	Log  *slog.Logger
}

func (r *Renderer) log() *slog.Logger {
	if r.Log == nil {
		return logging.Discard()
	}
	return r.Log
}

// Part is one unit of delivery: the objects of one addon (or the cloud
// credentials OCCM and Cinder CSI share) that one ClusterResourceSet
// carries into the workload cluster.
type Part struct {
	// Name names the part: an addon's name or "cloud-config".
	Name  string
	Addon Addon
	// Objects are the workload cluster's objects, in apply order.
	Objects []*unstructured.Unstructured
	// Notes say what the local lab changed and why (one line each).
	Notes []string
}

// Bundle is everything rendered for one cluster.
type Bundle struct {
	Cluster ClusterInfo
	Parts   []Part
}

// Images lists every image the workload manifests name (the local lab must
// have each of them built and in its registry mirror).
func (b *Bundle) Images() []string {
	var all []*unstructured.Unstructured
	for _, p := range b.Parts {
		all = append(all, p.Objects...)
	}
	return images(all)
}

// Notes are the parts' notes, each prefixed with its part.
func (b *Bundle) Notes() []string {
	var out []string
	for _, p := range b.Parts {
		for _, n := range p.Notes {
			out = append(out, p.Name+": "+n)
		}
	}
	return out
}

// CloudConfigPart names the part holding the cloud-config Secret.
const CloudConfigPart = "cloud-config"

// CloudConfigSecret is the Secret (kube-system) OCCM and Cinder CSI read
// their cloud.conf from, the name both upstream manifests mount.
const CloudConfigSecret = "cloud-config"

// Render renders the selected addons for a cluster.
func (r *Renderer) Render(ctx context.Context, cluster ClusterInfo, selected []Addon) (*Bundle, error) {
	if err := validName(cluster.Name); err != nil {
		return nil, err
	}
	b := &Bundle{Cluster: cluster}
	needsCloud := false
	for _, a := range selected {
		if a.Name == OCCM || a.Name == CinderCSI {
			needsCloud = true
		}
	}
	if needsCloud {
		if len(cluster.CloudConf) == 0 {
			return nil, fmt.Errorf("cluster %s: OCCM and Cinder CSI need the cluster's cloud.conf, and it is empty", cluster.Name)
		}
		b.Parts = append(b.Parts, Part{Name: CloudConfigPart, Objects: []*unstructured.Unstructured{cloudConfigSecret(cluster.CloudConf)}})
	}
	for _, a := range selected {
		p := Part{Name: string(a.Name), Addon: a}
		var err error
		switch a.Name {
		case CNI:
			p.Objects, err = r.cni(ctx, cluster, a)
		case OCCM:
			p.Objects, err = r.occm(ctx, cluster, a)
		case CinderCSI:
			p.Objects, p.Notes, err = r.cinderCSI(ctx, cluster, a)
		case MetricsServer:
			p.Objects, err = r.metricsServer(ctx, a)
		case GatewayAPI:
			p.Objects, err = r.gatewayAPI(ctx, a)
		case IngressNginx:
			p.Objects, err = r.download(ctx, r.Pins.IngressNginx, a)
		case CertManager:
			p.Objects, err = r.download(ctx, r.Pins.CertManager, a)
		case Flux:
			p.Objects, err = r.download(ctx, r.Pins.Flux, a)
		default:
			err = fmt.Errorf("unknown addon %q", a.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("addon %s: %w", a, err)
		}
		if a.LocalLab {
			p.Objects = withLocalImages(p.Objects, r.Pins.LocalImages, &p.Notes)
		}
		for _, n := range p.Notes {
			r.log().Info(p.Name+": "+n, "cluster", cluster.Name)
		}
		b.Parts = append(b.Parts, p)
	}
	return b, nil
}

func validName(name string) error {
	if name == "" || strings.ContainsAny(name, "_/ ") {
		return fmt.Errorf("cluster name %q cannot mark OpenStack resources (OCCM and Cinder CSI write it into names and metadata)", name)
	}
	return nil
}

func cloudConfigSecret(conf []byte) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Secret")
	u.SetNamespace("kube-system")
	u.SetName(CloudConfigSecret)
	u.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "capilab"})
	_ = unstructured.SetNestedField(u.Object, "Opaque", "type")
	_ = unstructured.SetNestedStringMap(u.Object, map[string]string{"cloud.conf": string(conf)}, "stringData")
	return u
}

// release returns the pinned release of a version (selection only yields
// known ones).
func release(src versions.AddonSource, v string) (versions.AddonRelease, error) {
	rel, ok := src.Release(v)
	if !ok {
		return rel, fmt.Errorf("%s is not pinned in manifests/versions.yaml", v)
	}
	return rel, nil
}

// --- CNI ---------------------------------------------------------------

func (r *Renderer) cni(ctx context.Context, cluster ClusterInfo, a Addon) ([]*unstructured.Unstructured, error) {
	switch a.Variant {
	case CNIAgent:
		return cniAgent(r.CNIAgentManifest, cluster)
	case Calico:
		return r.calico(ctx, cluster, a)
	case Cilium:
		return r.cilium(ctx, cluster, a)
	}
	return nil, fmt.Errorf("unknown CNI %q", a.Variant)
}

// cniAgent fills the node image's cni-agent manifest the way kind does:
// {{ .PodSubnet }} from the cluster's pod network, and CONTROL_PLANE_ENDPOINT
// on the agent container when the endpoint is known.
func cniAgent(manifest []byte, cluster ClusterInfo) ([]*unstructured.Unstructured, error) {
	if len(manifest) == 0 {
		return nil, fmt.Errorf("no cni-agent manifest (read it from the node image with LocalCNIManifest)")
	}
	if cluster.PodCIDR == "" {
		return nil, fmt.Errorf("cluster %s: no pod CIDR for the cni-agent", cluster.Name)
	}
	t, err := template.New("cni-agent").Option("missingkey=error").Parse(string(manifest))
	if err != nil {
		return nil, fmt.Errorf("cni-agent manifest: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, struct{ PodSubnet string }{cluster.PodCIDR}); err != nil {
		return nil, fmt.Errorf("cni-agent manifest: %w", err)
	}
	objs, err := kube.DecodeYAML(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("cni-agent manifest: %w", err)
	}
	ds, err := mustFind(objs, "DaemonSet", "kube-system", "cni-agent", "cni-agent manifest")
	if err != nil {
		return nil, err
	}
	if cluster.ControlPlaneEndpoint != "" {
		cs, err := containers(ds, false)
		if err != nil || len(cs) == 0 {
			return nil, fmt.Errorf("cni-agent manifest: DaemonSet without containers")
		}
		setEnv(cs[0], "CONTROL_PLANE_ENDPOINT", cluster.ControlPlaneEndpoint)
		if err := setContainers(ds, cs, false); err != nil {
			return nil, err
		}
	}
	return objs, nil
}

// calico is the release manifest with the cluster's pod network as the
// IP pool and, when set, its MTU (SCS patched both the same way).
func (r *Renderer) calico(ctx context.Context, cluster ClusterInfo, a Addon) ([]*unstructured.Unstructured, error) {
	objs, err := r.download(ctx, r.Pins.Calico, a)
	if err != nil {
		return nil, err
	}
	ds, err := mustFind(objs, "DaemonSet", "kube-system", "calico-node", "calico manifest")
	if err != nil {
		return nil, err
	}
	if err := editContainer(ds, "calico-node", func(c map[string]any) error {
		setEnv(c, "CALICO_IPV4POOL_CIDR", cluster.PodCIDR)
		return nil
	}); err != nil {
		return nil, err
	}
	if cluster.MTU > 0 {
		cm, err := mustFind(objs, "ConfigMap", "kube-system", "calico-config", "calico manifest")
		if err != nil {
			return nil, err
		}
		if _, ok, _ := unstructured.NestedString(cm.Object, "data", "veth_mtu"); !ok {
			return nil, fmt.Errorf("calico manifest: ConfigMap calico-config has no veth_mtu (did the manifest change?)")
		}
		_ = unstructured.SetNestedField(cm.Object, strconv.Itoa(cluster.MTU), "data", "veth_mtu")
	}
	return objs, nil
}

// --- downloads ------------------------------------------------------------

// download reads a download source's manifest for the addon's version.
func (r *Renderer) download(ctx context.Context, src versions.AddonSource, a Addon) ([]*unstructured.Unstructured, error) {
	rel, err := release(src, a.Version)
	if err != nil {
		return nil, err
	}
	url := URL(src, a.Version)
	data, err := r.Sources.Download(ctx, url, rel.SHA256)
	if err != nil {
		return nil, err
	}
	objs, err := kube.DecodeYAML(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return objs, nil
}

// --- modules ---------------------------------------------------------------

// module returns the verified directory of an addon's module at a version.
func (r *Renderer) module(ctx context.Context, src versions.AddonSource, version string) (string, error) {
	rel, err := release(src, version)
	if err != nil {
		return "", err
	}
	return r.Sources.Module(ctx, src.Module, version, rel.Sum)
}

// metricsServer is the module's release overlay (the image its release
// names) with --kubelet-insecure-tls: kubeadm's kubelets serve
// self-signed certificates, which metrics-server otherwise refuses (SCS
// deployed it the same way).
func (r *Renderer) metricsServer(ctx context.Context, a Addon) ([]*unstructured.Unstructured, error) {
	dir, err := r.module(ctx, r.Pins.MetricsServer, a.Version)
	if err != nil {
		return nil, err
	}
	objs, err := kustomizeBuild(filepath.Join(dir, "manifests", "overlays", "release"), nil)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s@%s manifests/overlays/release: %w", r.Pins.MetricsServer.Module, a.Version, err)
	}
	d, err := mustFind(objs, "Deployment", "kube-system", "metrics-server", "metrics-server manifests")
	if err != nil {
		return nil, err
	}
	if err := editContainer(d, "metrics-server", func(c map[string]any) error {
		args := stringList(c, "args")
		for _, a := range args {
			if a == "--kubelet-insecure-tls" {
				return nil
			}
		}
		setStringList(c, "args", append(args, "--kubelet-insecure-tls"))
		return nil
	}); err != nil {
		return nil, err
	}
	return objs, nil
}

// gatewayAPI is the module's standard-channel CRDs (config/crd).
func (r *Renderer) gatewayAPI(ctx context.Context, a Addon) ([]*unstructured.Unstructured, error) {
	dir, err := r.module(ctx, r.Pins.GatewayAPI, a.Version)
	if err != nil {
		return nil, err
	}
	objs, err := kustomizeBuild(filepath.Join(dir, "config", "crd"), nil)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s@%s config/crd: %w", r.Pins.GatewayAPI.Module, a.Version, err)
	}
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			return nil, fmt.Errorf("%s@%s config/crd: unexpected %s %s", r.Pins.GatewayAPI.Module, a.Version, o.GetKind(), o.GetName())
		}
	}
	return objs, nil
}

// The manifests of k8s.io/cloud-provider-openstack this package deploys.
var (
	occmFiles = []string{
		"manifests/controller-manager/cloud-controller-manager-roles.yaml",
		"manifests/controller-manager/cloud-controller-manager-role-bindings.yaml",
		"manifests/controller-manager/openstack-cloud-controller-manager-ds.yaml",
	}
	// The sample csi-secret-cinderplugin.yaml is left out: the cluster's
	// cloud-config Secret replaces it.
	cinderFiles = []string{
		"manifests/cinder-csi-plugin/cinder-csi-controllerplugin-rbac.yaml",
		"manifests/cinder-csi-plugin/cinder-csi-controllerplugin.yaml",
		"manifests/cinder-csi-plugin/cinder-csi-nodeplugin-rbac.yaml",
		"manifests/cinder-csi-plugin/cinder-csi-nodeplugin.yaml",
		"manifests/cinder-csi-plugin/csi-cinder-driver.yaml",
	}
)

// OCCM names in the upstream manifests.
const (
	OCCMDaemonSet      = "openstack-cloud-controller-manager"
	occmContainer      = "openstack-cloud-controller-manager"
	CinderController   = "csi-cinder-controllerplugin"
	CinderNodePlugin   = "csi-cinder-nodeplugin"
	cinderContainer    = "cinder-csi-plugin"
	CinderDriver       = "cinder.csi.openstack.org"
	SnapshotController = "snapshot-controller"
)

// occm is the release's controller-manager manifests with --cluster-name
// set to the cluster's name.
func (r *Renderer) occm(ctx context.Context, cluster ClusterInfo, a Addon) ([]*unstructured.Unstructured, error) {
	dir, err := r.module(ctx, r.Pins.CloudProviderOpenStack, a.Version)
	if err != nil {
		return nil, err
	}
	objs, err := readManifests(dir, occmFiles...)
	if err != nil {
		return nil, fmt.Errorf("%s@%s: %w", r.Pins.CloudProviderOpenStack.Module, a.Version, err)
	}
	ds, err := mustFind(objs, "DaemonSet", "kube-system", OCCMDaemonSet, "OCCM manifests")
	if err != nil {
		return nil, err
	}
	if err := editContainer(ds, occmContainer, func(c map[string]any) error {
		return setClusterName(c, "--cluster-name", cluster.Name)
	}); err != nil {
		return nil, err
	}
	return objs, nil
}

// cinderCSI is the release's Cinder CSI manifests with --cluster set to
// the cluster's name, the snapshot controller and its CRDs, and capilab's
// storage and snapshot classes.
func (r *Renderer) cinderCSI(ctx context.Context, cluster ClusterInfo, a Addon) ([]*unstructured.Unstructured, []string, error) {
	dir, err := r.module(ctx, r.Pins.CloudProviderOpenStack, a.Version)
	if err != nil {
		return nil, nil, err
	}
	objs, err := readManifests(dir, cinderFiles...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s@%s: %w", r.Pins.CloudProviderOpenStack.Module, a.Version, err)
	}
	ctrl, err := mustFind(objs, "Deployment", "kube-system", CinderController, "Cinder CSI manifests")
	if err != nil {
		return nil, nil, err
	}
	if err := editContainer(ctrl, cinderContainer, func(c map[string]any) error {
		return setClusterName(c, "--cluster", cluster.Name)
	}); err != nil {
		return nil, nil, err
	}
	snap, err := r.snapshotController(ctx)
	if err != nil {
		return nil, nil, err
	}
	objs = append(snap, objs...)
	objs = append(objs, storageClasses()...)
	var notes []string
	if a.LocalLab {
		objs, notes = cinderForLocalLab(objs)
	}
	return objs, notes, nil
}

// snapshotController is the VolumeSnapshot CRDs and the snapshot
// controller at the pinned external-snapshotter release, its image set to
// that release (the module's deploy manifest names an older tag).
func (r *Renderer) snapshotController(ctx context.Context) ([]*unstructured.Unstructured, error) {
	src := r.Pins.SnapshotController
	rel, err := release(src, src.Pin)
	if err != nil {
		return nil, err
	}
	crdDir, err := r.Sources.Module(ctx, src.CRDModule, src.Pin, rel.CRDSum)
	if err != nil {
		return nil, err
	}
	crds, err := kustomizeBuild(filepath.Join(crdDir, "config", "crd"), nil)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s@%s config/crd: %w", src.CRDModule, src.Pin, err)
	}
	dir, err := r.Sources.Module(ctx, src.Module, src.Pin, rel.Sum)
	if err != nil {
		return nil, err
	}
	image := SnapshotControllerImage + ":" + src.Pin
	ctrl, err := kustomizeBuild(filepath.Join(dir, "deploy", "kubernetes", "snapshot-controller"), map[string]string{SnapshotControllerImage: image})
	if err != nil {
		return nil, fmt.Errorf("kustomize %s@%s deploy/kubernetes/snapshot-controller: %w", src.Module, src.Pin, err)
	}
	if _, err := mustFind(ctrl, "Deployment", "kube-system", SnapshotController, "snapshot controller manifests"); err != nil {
		return nil, err
	}
	if got := images(ctrl); len(got) != 1 || got[0] != image {
		return nil, fmt.Errorf("snapshot controller manifests name images %v, want %s", got, image)
	}
	return append(crds, ctrl...), nil
}

// SnapshotControllerImage is the snapshot controller's image repository.
const SnapshotControllerImage = "registry.k8s.io/sig-storage/snapshot-controller"

// Storage and snapshot classes capilab adds (SCS's names). Binding is
// Immediate: the volume is created when the claim is, which needs no
// scheduling decision.
const (
	StorageClassDelete  = "csi-cinder-sc-delete" // the default class
	StorageClassRetain  = "csi-cinder-sc-retain"
	VolumeSnapshotClass = "csi-cinder-snapclass"
)

func storageClasses() []*unstructured.Unstructured {
	sc := func(name, reclaim string, isDefault bool) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
			"metadata":    map[string]any{"name": name, "labels": map[string]any{"app.kubernetes.io/managed-by": "capilab"}},
			"provisioner": CinderDriver, "reclaimPolicy": reclaim, "allowVolumeExpansion": true, "volumeBindingMode": "Immediate",
		}}
		if isDefault {
			u.SetAnnotations(map[string]string{"storageclass.kubernetes.io/is-default-class": "true"})
		}
		return u
	}
	vsc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
		"metadata": map[string]any{"name": VolumeSnapshotClass, "labels": map[string]any{"app.kubernetes.io/managed-by": "capilab"}},
		"driver":   CinderDriver, "deletionPolicy": "Delete",
	}}
	return []*unstructured.Unstructured{sc(StorageClassDelete, "Delete", true), sc(StorageClassRetain, "Retain", false), vsc}
}
