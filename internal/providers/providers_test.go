package providers

import (
	"strings"
	"testing"

	clusterctlv1 "sigs.k8s.io/cluster-api/cmd/clusterctl/api/v1alpha3"
	"sigs.k8s.io/yaml"

	"github.com/capilab/capilab/internal/versions"
)

func pinned(t *testing.T) []Provider {
	t.Helper()
	v, err := versions.Load()
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Pinned(v.Management)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestPinnedSetAndOrder(t *testing.T) {
	ps := pinned(t)
	var labels []string
	for _, p := range ps {
		labels = append(labels, p.Label())
		if len(p.Images) != 1 || p.Images[0].Ref == "" || p.Images[0].Program.Module == "" {
			t.Errorf("%s: image and program must be set: %+v", p.Label(), p.Images)
		}
	}
	want := "runtime-extension-openstack-resource-controller,cluster-api,bootstrap-kubeadm,control-plane-kubeadm,infrastructure-openstack"
	if got := strings.Join(labels, ","); got != want {
		t.Errorf("labels %s, want %s (ORC before CAPO)", got, want)
	}
	if ps[4].Type != clusterctlv1.InfrastructureProviderType {
		t.Error("CAPO is not the infrastructure provider")
	}
}

func TestPinnedRefusesUnpinnedVersions(t *testing.T) {
	for _, m := range []versions.Management{
		{ClusterAPI: "v1.14", CAPO: "v0.14.7", ORC: "v2.4.0"},
		{ClusterAPI: "v1.14.2", CAPO: "latest", ORC: "v2.4.0"},
		{ClusterAPI: "v1.14.2", CAPO: "v0.14.7", ORC: ""},
	} {
		if _, err := Pinned(m); err == nil {
			t.Errorf("%+v accepted", m)
		}
	}
}

func TestKustomizationSetsReleasedImageAndPullPolicy(t *testing.T) {
	ps := pinned(t)
	core := ps[1]
	data, err := Kustomization(core, "../base")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string
		Images    []map[string]string
		Patches   []map[string]any
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	if len(k.Resources) != 1 || k.Resources[0] != "../base" {
		t.Errorf("resources %v", k.Resources)
	}
	img := core.Images[0]
	if len(k.Images) != 1 || k.Images[0]["name"] != img.Placeholder || k.Images[0]["newName"]+":"+k.Images[0]["newTag"] != img.Ref {
		t.Errorf("images %v, want %s -> %s", k.Images, img.Placeholder, img.Ref)
	}
	if len(k.Patches) != 1 || !strings.Contains(k.Patches[0]["patch"].(string), "IfNotPresent") {
		t.Errorf("patches %v", k.Patches)
	}
	orc, err := Kustomization(ps[0], "manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(orc), "cluster.x-k8s.io/provider: runtime-extension-openstack-resource-controller") {
		t.Errorf("ORC kustomization lacks the provider label:\n%s", orc)
	}
}

func TestCompare(t *testing.T) {
	ps := pinned(t)
	installed := []Installed{
		{Label: "cluster-api", Version: ps[1].Version},
		{Label: "bootstrap-kubeadm", Version: "v1.13.0"},
		{Label: "addon-helm", Version: "v0.3.0"},
	}
	d := Compare(ps, installed)
	if len(d.Missing) != 3 || len(d.Changed) != 1 || len(d.Extra) != 1 {
		t.Fatalf("diff %+v", d)
	}
	if d.Empty() {
		t.Error("a diff with missing providers is empty")
	}
	if s := d.String(); !strings.Contains(s, "bootstrap-kubeadm is v1.13.0, pinned "+ps[2].Version) || !strings.Contains(s, "infrastructure-openstack "+ps[4].Version+" is not installed") {
		t.Errorf("String() = %s", s)
	}
	var all []Installed
	for _, p := range ps {
		all = append(all, Installed{Label: p.Label(), Version: p.Version})
	}
	if d := Compare(ps, all); !d.Empty() || d.String() != "every provider is at its pinned version" {
		t.Errorf("full inventory: %+v", d)
	}
}

func TestComponentsURLLayout(t *testing.T) {
	ps := pinned(t)
	r := Repository{Dir: "/cache/repo"}
	got := r.ComponentsURL(ps[4])
	want := "file:///cache/repo/infrastructure-openstack/" + ps[4].Version + "/components.yaml"
	if got != want {
		t.Errorf("%s, want %s", got, want)
	}
}
