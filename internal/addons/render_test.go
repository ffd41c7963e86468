package addons

import (
	"context"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func part(t *testing.T, b *Bundle, name string) Part {
	t.Helper()
	for _, p := range b.Parts {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no part %s in %v", name, partNames(b))
	return Part{}
}

func partNames(b *Bundle) []string {
	var out []string
	for _, p := range b.Parts {
		out = append(out, p.Name)
	}
	return out
}

func container(t *testing.T, o *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	cs, err := containers(o, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c["name"] == name {
			return c
		}
	}
	t.Fatalf("%s %s has no container %s", o.GetKind(), o.GetName(), name)
	return nil
}

func containerNames(t *testing.T, o *unstructured.Unstructured) []string {
	cs, err := containers(o, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, c["name"].(string))
	}
	return out
}

func TestRenderClusterNameEverywhere(t *testing.T) {
	for _, local := range []bool{false, true} {
		f := newFixture(t)
		sel := []Addon{
			{Name: OCCM, Version: "v1.36.0", LocalLab: local},
			{Name: CinderCSI, Version: "v1.36.0", LocalLab: local},
		}
		b, err := f.renderer(t).Render(context.Background(), testCluster, sel)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(partNames(b), ","); got != "cloud-config,occm,cinder-csi" {
			t.Fatalf("parts %s", got)
		}
		ds := find(part(t, b, "occm").Objects, "DaemonSet", "kube-system", OCCMDaemonSet)
		if v, _ := flagValue(container(t, ds, occmContainer), "--cluster-name"); v != "alpha" {
			t.Errorf("local=%t: OCCM --cluster-name resolves to %q", local, v)
		}
		ctrl := find(part(t, b, "cinder-csi").Objects, "Deployment", "kube-system", CinderController)
		if v, _ := flagValue(container(t, ctrl, cinderContainer), "--cluster"); v != "alpha" {
			t.Errorf("local=%t: Cinder CSI --cluster resolves to %q", local, v)
		}
		// Nothing anywhere still says "kubernetes" as a cluster name.
		for _, p := range b.Parts {
			for _, o := range p.Objects {
				if !podKinds[o.GetKind()] {
					continue
				}
				cs, _ := containers(o, false)
				for _, c := range cs {
					if v, ok := envValue(c, "CLUSTER_NAME"); ok && v != "alpha" {
						t.Errorf("%s %s container %s: CLUSTER_NAME=%q", o.GetKind(), o.GetName(), c["name"], v)
					}
				}
			}
		}
		secret := part(t, b, CloudConfigPart).Objects[0]
		if conf, _, _ := unstructured.NestedString(secret.Object, "stringData", "cloud.conf"); conf != string(testCluster.CloudConf) {
			t.Errorf("cloud-config Secret holds %q", conf)
		}
		csi := part(t, b, "cinder-csi")
		for _, want := range []struct{ kind, name string }{
			{"CustomResourceDefinition", "volumesnapshots.snapshot.storage.k8s.io"}, {"Deployment", SnapshotController},
			{"StorageClass", StorageClassDelete}, {"StorageClass", StorageClassRetain}, {"VolumeSnapshotClass", VolumeSnapshotClass},
			{"CSIDriver", CinderDriver},
		} {
			if find(csi.Objects, want.kind, "", want.name) == nil {
				t.Errorf("cinder-csi has no %s %s", want.kind, want.name)
			}
		}
		if find(csi.Objects, "Secret", "", "cloud-config") != nil {
			t.Error("the upstream sample cloud-config Secret was deployed")
		}
		snap := find(csi.Objects, "Deployment", "kube-system", SnapshotController)
		if img := container(t, snap, "snapshot-controller")["image"]; img != SnapshotControllerImage+":v8.4.0" {
			t.Errorf("snapshot controller image %v, want the pinned release", img)
		}
		node := find(csi.Objects, "DaemonSet", "kube-system", CinderNodePlugin)
		if local {
			if node != nil {
				t.Error("local lab: the node plugin (no node-driver-registrar) was kept")
			}
			if got := strings.Join(containerNames(t, ctrl), ","); got != "csi-attacher,csi-provisioner,cinder-csi-plugin" {
				t.Errorf("local lab controller containers: %s", got)
			}
			if _, ok := container(t, ctrl, cinderContainer)["livenessProbe"]; ok {
				t.Error("local lab: liveness probe kept without its sidecar")
			}
			if img := container(t, ctrl, "csi-attacher")["image"]; img != "registry.k8s.io/sig-storage/csi-attacher:v4.12.0" {
				t.Errorf("local lab attacher image %v", img)
			}
			notes := strings.Join(csi.Notes, "\n")
			for _, want := range []string{"DaemonSet kube-system/csi-cinder-nodeplugin is left out", "runs without liveness-probe", "csi-attacher:v4.10.0 runs v4.12.0 instead"} {
				if !strings.Contains(notes, want) {
					t.Errorf("local lab notes lack %q:\n%s", want, notes)
				}
			}
			for _, img := range b.Images() {
				if !Buildable(img) {
					t.Errorf("local lab manifests name %s, which the lab cannot build", img)
				}
			}
		} else {
			if node == nil || len(csi.Notes) != 0 {
				t.Errorf("cloud: node plugin %v, notes %q", node != nil, csi.Notes)
			}
			if img := container(t, ctrl, "csi-attacher")["image"]; img != "registry.k8s.io/sig-storage/csi-attacher:v4.10.0" {
				t.Errorf("cloud attacher image %v: upstream manifests must stay as they are", img)
			}
		}
	}
}

func TestRenderMetricsServerAndGatewayAPI(t *testing.T) {
	f := newFixture(t)
	b, err := f.renderer(t).Render(context.Background(), testCluster, []Addon{{Name: MetricsServer, Version: "v0.8.0"}, {Name: GatewayAPI, Version: "v1.4.0"}})
	if err != nil {
		t.Fatal(err)
	}
	d := find(part(t, b, "metrics-server").Objects, "Deployment", "kube-system", "metrics-server")
	c := container(t, d, "metrics-server")
	if c["image"] != "registry.k8s.io/metrics-server/metrics-server:v0.8.0" {
		t.Errorf("image %v: the release overlay was not used", c["image"])
	}
	if args := strings.Join(stringList(c, "args"), " "); args != "--secure-port=10250 --kubelet-insecure-tls" {
		t.Errorf("args %q", args)
	}
	gw := part(t, b, "gateway-api").Objects
	if len(gw) != 1 || gw[0].GetName() != "gateways.gateway.networking.k8s.io" {
		t.Errorf("gateway API objects %v", gw)
	}
	checks := readyChecks(part(t, b, "metrics-server"))
	if describe(checks) != "Deployment kube-system/metrics-server Available, APIService v1beta1.metrics.k8s.io Available" {
		t.Errorf("metrics-server checks: %s", describe(checks))
	}
}

func TestRenderRefusesAModuleThatDoesNotMatchItsPin(t *testing.T) {
	f := newFixture(t)
	f.pins.MetricsServer.Releases[0].Sum = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	_, err := f.renderer(t).Render(context.Background(), testCluster, []Addon{{Name: MetricsServer, Version: "v0.8.0"}})
	var ce *ChecksumError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "module example.com/ms@v0.8.0: checksum h1:") || !strings.Contains(err.Error(), "refusing it") {
		t.Fatalf("want a checksum error, got %v", err)
	}
}

func TestRenderCNIAgent(t *testing.T) {
	manifest := []byte(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: cni-agent, namespace: kube-system}
spec:
  template:
    spec:
      containers:
        - name: cni-agent
          image: capilab.local/cni-agent:0123456789abcdef
          args: [--pod-subnet={{ .PodSubnet }}]
`)
	r := &Renderer{CNIAgentManifest: manifest}
	for _, endpoint := range []string{"", "172.24.4.10:6443"} {
		c := testCluster
		c.ControlPlaneEndpoint = endpoint
		b, err := r.Render(context.Background(), c, []Addon{{Name: CNI, Variant: CNIAgent, LocalLab: true}})
		if err != nil {
			t.Fatal(err)
		}
		ds := part(t, b, "cni").Objects[0]
		ct := container(t, ds, "cni-agent")
		if got := stringList(ct, "args"); len(got) != 1 || got[0] != "--pod-subnet=10.244.0.0/16" {
			t.Errorf("args %q", got)
		}
		if v, ok := envValue(ct, "CONTROL_PLANE_ENDPOINT"); ok != (endpoint != "") || v != endpoint {
			t.Errorf("endpoint %q: CONTROL_PLANE_ENDPOINT=%q (%t)", endpoint, v, ok)
		}
		if imgs, err := BuildLocalImages(context.Background(), nil, b.Images()); err != nil || len(imgs) != 0 {
			t.Errorf("the preloaded agent image needs no build: %v %v", imgs, err)
		}
	}
	if _, err := (&Renderer{}).Render(context.Background(), testCluster, []Addon{{Name: CNI, Variant: CNIAgent}}); err == nil ||
		!strings.Contains(err.Error(), "no cni-agent manifest") {
		t.Errorf("no manifest: %v", err)
	}
}

func TestSetClusterName(t *testing.T) {
	tests := []struct {
		name      string
		container map[string]any
		wantArgs  string
	}{
		{"through the env var", map[string]any{"args": []any{"--cluster-name=$(CLUSTER_NAME)"}, "env": []any{map[string]any{"name": "CLUSTER_NAME", "value": "kubernetes"}}},
			"--cluster-name=$(CLUSTER_NAME)"},
		{"env var from a ConfigMap is replaced", map[string]any{"args": []any{"--cluster-name=$(CLUSTER_NAME)"},
			"env": []any{map[string]any{"name": "CLUSTER_NAME", "valueFrom": map[string]any{"configMapKeyRef": map[string]any{"name": "x", "key": "y"}}}}},
			"--cluster-name=$(CLUSTER_NAME)"},
		{"env var missing", map[string]any{"args": []any{"--cluster-name=$(CLUSTER_NAME)"}}, "--cluster-name=$(CLUSTER_NAME)"},
		{"literal", map[string]any{"command": []any{"/bin/occm", "--cluster-name=kubernetes"}}, ""},
		{"absent", map[string]any{"args": []any{"--v=1"}}, "--v=1 --cluster-name=alpha"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := setClusterName(tt.container, "--cluster-name", "alpha"); err != nil {
				t.Fatal(err)
			}
			if v, _ := flagValue(tt.container, "--cluster-name"); v != "alpha" {
				t.Errorf("resolves to %q", v)
			}
			if got := strings.Join(stringList(tt.container, "args"), " "); got != tt.wantArgs {
				t.Errorf("args %q, want %q", got, tt.wantArgs)
			}
		})
	}
}

func TestRenderRefusesChangedManifests(t *testing.T) {
	f := newFixture(t)
	changed := map[string]string{}
	for k, v := range fakeCPO {
		changed[k] = strings.ReplaceAll(v, "name: openstack-cloud-controller-manager\n", "name: occm\n")
	}
	dir, sum := writeModule(t, "example.com/cpo", "v1.36.0", changed)
	f.modules.dirs["example.com/cpo@v1.36.0"] = dir
	f.pins.CloudProviderOpenStack.Releases[0].Sum = sum
	_, err := f.renderer(t).Render(context.Background(), testCluster, []Addon{{Name: OCCM, Version: "v1.36.0"}})
	if err == nil || !strings.Contains(err.Error(), "has no container \"openstack-cloud-controller-manager\"") {
		t.Fatalf("want a loud failure on the changed manifest, got %v", err)
	}
	_, err = f.renderer(t).Render(context.Background(), ClusterInfo{Name: "alpha", Namespace: "alpha"}, []Addon{{Name: OCCM, Version: "v1.36.0"}})
	if err == nil || !strings.Contains(err.Error(), "cloud.conf, and it is empty") {
		t.Fatalf("no cloud.conf: %v", err)
	}
}

func TestLocalImageFor(t *testing.T) {
	tests := []struct {
		ref, module, pkg, entry, err string
	}{
		{ref: "registry.k8s.io/provider-os/openstack-cloud-controller-manager:v1.36.0", module: "k8s.io/cloud-provider-openstack@v1.36.0", pkg: "./cmd/openstack-cloud-controller-manager"},
		{ref: "registry.k8s.io/provider-os/cinder-csi-plugin:v1.36.0", module: "k8s.io/cloud-provider-openstack@v1.36.0", pkg: "./cmd/cinder-csi-plugin"},
		{ref: "registry.k8s.io/sig-storage/csi-provisioner:v5.3.0", module: "github.com/kubernetes-csi/external-provisioner/v5@v5.3.0", pkg: "./cmd/csi-provisioner", entry: "/csi-provisioner"},
		{ref: "registry.k8s.io/sig-storage/csi-resizer:v1.14.0", module: "github.com/kubernetes-csi/external-resizer@v1.14.0", pkg: "./cmd/csi-resizer", entry: "/csi-resizer"},
		{ref: "registry.k8s.io/sig-storage/csi-snapshotter:v8.4.0", module: "github.com/kubernetes-csi/external-snapshotter/v8@v8.4.0", pkg: "./cmd/csi-snapshotter", entry: "/csi-snapshotter"},
		{ref: "registry.k8s.io/metrics-server/metrics-server:v0.8.0", module: "sigs.k8s.io/metrics-server@v0.8.0", pkg: "./cmd/metrics-server", entry: "/metrics-server"},
		{ref: "registry.k8s.io/sig-storage/livenessprobe:v2.17.0", err: "livenessprobe is served by the Go module proxy at no version"},
		{ref: "quay.io/cilium/cilium:v1.18.4", err: "no recipe"},
		{ref: "registry.k8s.io/sig-storage/csi-resizer@sha256:00", err: "not repository:tag"},
	}
	for _, tt := range tests {
		li, err := LocalImageFor(tt.ref)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: want error %q, got %v", tt.ref, tt.err, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.ref, err)
		}
		if got := li.Program.Module + "@" + li.Program.Version; got != tt.module || li.Program.Package != tt.pkg {
			t.Errorf("%s: builds %s %s", tt.ref, got, li.Program.Package)
		}
		img := li.Image("/tmp/bin")
		if img.Ref != tt.ref || (tt.entry != "") != (len(img.Entrypoint) == 1) || (tt.entry != "" && img.Entrypoint[0] != tt.entry) {
			t.Errorf("%s: image %s entrypoint %q cmd %q", tt.ref, img.Ref, img.Entrypoint, img.Cmd)
		}
	}
	snap, _ := LocalImageFor("registry.k8s.io/sig-storage/snapshot-controller:v8.4.0")
	if len(snap.Program.Edits) != 1 {
		t.Errorf("snapshot controller: the client module must be nested: %v", snap.Program.Edits)
	}
}
