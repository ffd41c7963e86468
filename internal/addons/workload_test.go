package addons

import (
	"context"
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	addonsv1 "sigs.k8s.io/cluster-api/api/addons/v1beta2"

	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/workload"
)

// The adapter the workload code uses: its ClusterResourceSets select the
// Cluster workload.Spec renders, and no other cluster.
func TestWorkloadObjectsSelectTheCluster(t *testing.T) {
	f := newFixture(t)
	settings := Settings{CNI: "cilium", DeployMetrics: "true", DeployNginxIngress: "false", DeployGatewayAPI: "true",
		DeployCertManager: "false", DeployFlux: "false", DeployOCCM: "true", DeployCinderCSI: "false"}
	f.pins.Cilium = testPins().Cilium
	w := &Workload{Pins: f.pins, Settings: settings, Renderer: f.renderer(t),
		CloudConf: func(c string) ([]byte, error) { return []byte("[Global]\n"), nil }}
	spec := workload.Spec{Name: "alpha", Namespace: "lab", Prefix: "capi", KubernetesVersion: "v1.36.4", PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"}
	_, err := w.Objects(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "no Helm renderer") {
		t.Fatalf("cilium without helm must fail loudly, got %v", err)
	}
	w.Settings.CNI = "calico"
	f.pins.Calico = testPins().Calico
	w.Pins = f.pins
	w.Renderer.Pins = f.pins
	w.Renderer.Sources.Modules = f.modules
	_, err = w.Objects(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "download https://example.com/v3.30.4/calico.yaml") {
		t.Fatalf("want the calico download named, got %v", err)
	}
	w.LocalLab = true
	w.Renderer.CNIAgentManifest = nil
	w.cni = []byte("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: cni-agent, namespace: kube-system}\nspec: {template: {spec: {containers: [{name: a, image: capilab.local/cni-agent:1, args: [\"{{ .PodSubnet }}\"]}]}}}\n")
	_, err = w.Objects(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "no image builder") {
		t.Fatalf("local lab without an image builder: %v", err)
	}
	built := &fakeBuilder{}
	w.Images = built
	objs, err := w.Objects(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(built.images, ",") != "registry.k8s.io/metrics-server/metrics-server:v0.8.0,registry.k8s.io/provider-os/openstack-cloud-controller-manager:v1.36.0" {
		t.Errorf("built %v", built.images)
	}
	cluster := spec.Cluster()
	other := workload.Spec{Name: "alpha2", Namespace: "lab", Prefix: "capi"}.Cluster()
	n := 0
	for _, o := range objs {
		crs, ok := o.(*addonsv1.ClusterResourceSet)
		if !ok {
			continue
		}
		n++
		sel, err := metav1LabelSelector(crs)
		if err != nil {
			t.Fatal(err)
		}
		if !sel.Matches(labels.Set(cluster.Labels)) || sel.Matches(labels.Set(other.Labels)) {
			t.Errorf("%s selects %v: cluster %v, other %v", crs.Name, sel, cluster.Labels, other.Labels)
		}
		if crs.Namespace != cluster.Namespace {
			t.Errorf("%s in namespace %s, the Cluster in %s", crs.Name, crs.Namespace, cluster.Namespace)
		}
	}
	if n != 5 { // cloud-config, cni, occm, metrics-server, gateway-api
		t.Errorf("%d ClusterResourceSets", n)
	}
	if err := w.Validate(); err != nil {
		t.Error(err)
	}
}

type fakeBuilder struct{ images []string }

func (f *fakeBuilder) Build(_ context.Context, p modbuildProgram) (string, error) {
	return "/bin/" + p.Name, nil
}
func (f *fakeBuilder) EnsureImage(_ context.Context, img modbuildImage) (bool, error) {
	if img.Ref == "" {
		return false, errors.New("no ref")
	}
	f.images = append(f.images, img.Ref)
	return true, nil
}

type (
	modbuildProgram = modbuild.Program
	modbuildImage   = modbuild.Image
)

func metav1LabelSelector(crs *addonsv1.ClusterResourceSet) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(&crs.Spec.ClusterSelector)
}
