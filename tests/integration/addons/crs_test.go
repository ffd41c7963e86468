//go:build integration

package addons_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/kube-openapi/pkg/validation/strfmt"
	"k8s.io/kube-openapi/pkg/validation/validate"
	addonsv1 "sigs.k8s.io/cluster-api/api/addons/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/capilab/capilab/internal/addons"
	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/tests/devcloudtest"
)

// secretMarker stands for the application credential's secret in a
// cluster's cloud.conf: it may travel only in a Secret.
const secretMarker = "app-cred-secret-7f3c9a"

// What `make create_cluster` applies to the management cluster for a
// cluster's addons, from the real pinned sources (a cloud's full set:
// cilium, OCCM, Cinder CSI with the snapshot controller, metrics-server,
// Gateway API; and the local lab's set): every ClusterResourceSet passes
// the schema of Cluster API's own CRD (from the cluster-api module capilab
// builds its controllers from) and selects only its cluster, strategy
// Reconcile; each references only ConfigMaps/Secrets delivered with it, of
// at most 768 KiB each; the ConfigMaps and Secrets carry exactly the
// rendered objects, in order, CRDs before the objects of their kinds; the
// cloud credential is in no ConfigMap; and a second render of the cloud's
// set from fresh caches gives byte-identical objects — so a re-run of create_cluster
// changes nothing and Cluster API (strategy Reconcile) re-applies nothing.
// No cluster is needed: the workload cluster test delivers them for real.
func TestDeliveryObjects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	log := testLog(t)
	p := pinned(t)
	schema := crsSchema(t)
	// The schema rejects what Cluster API's API server would.
	bad := map[string]any{"apiVersion": addonsv1.GroupVersion.String(), "kind": "ClusterResourceSet", "metadata": map[string]any{"name": "x"},
		"spec": map[string]any{"clusterSelector": map[string]any{}, "strategy": "Sometimes", "resources": []any{map[string]any{"kind": "Pod", "name": "x"}}}}
	if res := schema.Validate(bad); res.IsValid() || len(res.Errors) < 2 {
		t.Fatalf("Cluster API's ClusterResourceSet schema accepts a strategy Sometimes and a Pod resource: %v", res.Errors)
	}

	cloud := addons.Settings{CNI: addons.Cilium, DeployMetrics: "true", DeployOCCM: "true", DeployCinderCSI: "true",
		DeployGatewayAPI: "true", DeployNginxIngress: "false", DeployCertManager: "false", DeployFlux: "false"}
	for _, tc := range []struct {
		name     string
		local    bool
		k8s      string
		settings addons.Settings
	}{
		{"cloud", false, "v1.34.3", cloud},
		// The local lab's set without the CNI: the cni-agent's manifest
		// comes out of the node image (the workload cluster test has it).
		{"local lab", true, p.KindNode.Kubernetes, cloud},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := addons.Select(p.Addons, addons.Request{Settings: tc.settings, KubernetesVersion: tc.k8s, LocalLab: tc.local})
			if err != nil {
				t.Fatal(err)
			}
			var wanted []addons.Addon
			for _, a := range sel.Addons {
				if a.Name != addons.CNI || !tc.local {
					wanted = append(wanted, a)
				}
			}
			info := addons.ClusterInfo{Name: "crs1", Namespace: "team-a", KubernetesVersion: tc.k8s, PodCIDR: "10.8.3.0/24", MTU: 1450,
				CloudConf: []byte("[Global]\nauth-url=\"http://keystone.invalid/v3\"\napplication-credential-id=\"abc\"\napplication-credential-secret=\"" + secretMarker + "\"\n")}
			start := time.Now()
			r1, _ := renderer(t, log)
			b1, err := r1.Render(ctx, info, wanted)
			if err != nil {
				t.Fatal(err)
			}
			objs1, err := b1.Objects()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %v rendered to %d management-cluster objects in %s", tc.name, wanted, len(objs1), time.Since(start).Round(100*time.Millisecond))
			checkDelivery(t, schema, b1, objs1)
			if tc.local {
				return // the local lab's edits are plain code; the cloud's set has the chart that could vary
			}

			r2, _ := renderer(t, log)
			objs2, err := r2.Objects(ctx, info, wanted)
			if err != nil {
				t.Fatal(err)
			}
			sameObjects(t, objs1, objs2)
		})
	}
}

// crsSchema is the v1beta2 schema of Cluster API's ClusterResourceSet CRD,
// read from the cluster-api module in go.mod.
func crsSchema(t *testing.T) *validate.SchemaValidator {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/cluster-api")
	cmd.Dir = devcloudtest.RepoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m sigs.k8s.io/cluster-api: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "core", "config", "crd", "bases", "addons.cluster.x-k8s.io_clusterresourcesets.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name != addonsv1.GroupVersion.Version {
			continue
		}
		// The CRD's schema is OpenAPI v3 JSON: validate with kube-openapi's
		// validator, as the API server's structural validation does (CEL
		// rules aside).
		raw, err := json.Marshal(v.Schema.OpenAPIV3Schema)
		if err != nil {
			t.Fatal(err)
		}
		var s spec.Schema
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		return validate.NewSchemaValidator(&s, nil, "", strfmt.Default)
	}
	t.Fatalf("%s has no version %s", path, addonsv1.GroupVersion.Version)
	return nil
}

func checkDelivery(t *testing.T, schema *validate.SchemaValidator, b *addons.Bundle, objs []client.Object) {
	t.Helper()
	c := b.Cluster
	cms := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	sets := map[string]*addonsv1.ClusterResourceSet{}
	for _, o := range objs {
		if o.GetNamespace() != c.Namespace {
			t.Errorf("%T %s in namespace %q, not the cluster's %q", o, o.GetName(), o.GetNamespace(), c.Namespace)
		}
		if o.GetLabels()[addons.ClusterLabel] != c.Name || o.GetLabels()[addons.PartLabel] == "" {
			t.Errorf("%T %s: labels %v lack %s=%s or %s (Prune finds objects by them)", o, o.GetName(), o.GetLabels(), addons.ClusterLabel, c.Name, addons.PartLabel)
		}
		switch v := o.(type) {
		case *corev1.ConfigMap:
			cms[v.Name] = v
			if strings.Contains(v.Data["objects.yaml"], secretMarker) {
				t.Errorf("ConfigMap %s holds the cloud credential", v.Name)
			}
		case *corev1.Secret:
			secrets[v.Name] = v
			if v.Type != addonsv1.ClusterResourceSetSecretType {
				t.Errorf("Secret %s of type %q: a ClusterResourceSet applies only %q", v.Name, v.Type, addonsv1.ClusterResourceSetSecretType)
			}
		case *addonsv1.ClusterResourceSet:
			sets[v.Name] = v
		default:
			t.Errorf("unexpected %T %s", o, o.GetName())
		}
	}
	if len(sets) != len(b.Parts) {
		t.Errorf("%d ClusterResourceSets for %d parts", len(sets), len(b.Parts))
	}
	for _, part := range b.Parts {
		name := addons.CRSName(c.Name, part.Name)
		crs, ok := sets[name]
		if !ok {
			t.Errorf("part %s: no ClusterResourceSet %s", part.Name, name)
			continue
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(crs)
		if err != nil {
			t.Fatal(err)
		}
		delete(m, "status")
		if res := schema.Validate(m); !res.IsValid() {
			t.Errorf("ClusterResourceSet %s fails Cluster API's CRD schema: %v", name, res.Errors)
		}
		if crs.Spec.Strategy != string(addonsv1.ClusterResourceSetStrategyReconcile) {
			t.Errorf("%s: strategy %q", name, crs.Spec.Strategy)
		}
		if sel := crs.Spec.ClusterSelector; len(sel.MatchExpressions) > 0 || len(sel.MatchLabels) != 1 || sel.MatchLabels[addons.ClusterLabel] != c.Name {
			t.Errorf("%s selects %v, not only the cluster %s", name, sel, c.Name)
		}
		// What the references carry, in order, is the part's objects.
		var delivered []*unstructured.Unstructured
		for _, ref := range crs.Spec.Resources {
			var data []byte
			switch ref.Kind {
			case string(addonsv1.ConfigMapClusterResourceSetResourceKind):
				cm, ok := cms[ref.Name]
				if !ok {
					t.Errorf("%s references ConfigMap %s, which is not delivered with it", name, ref.Name)
					continue
				}
				data = []byte(cm.Data["objects.yaml"])
			case string(addonsv1.SecretClusterResourceSetResourceKind):
				s, ok := secrets[ref.Name]
				if !ok {
					t.Errorf("%s references Secret %s, which is not delivered with it", name, ref.Name)
					continue
				}
				data = s.Data["objects.yaml"]
			default:
				t.Errorf("%s references a %s", name, ref.Kind)
				continue
			}
			if len(data) > 768<<10 {
				t.Errorf("%s %s holds %d bytes (more than 768 KiB)", ref.Kind, ref.Name, len(data))
			}
			objs, err := kube.DecodeYAML(data)
			if err != nil {
				t.Errorf("%s %s: %v", ref.Kind, ref.Name, err)
				continue
			}
			delivered = append(delivered, objs...)
		}
		if len(delivered) != len(part.Objects) {
			t.Errorf("part %s: %d objects delivered, %d rendered", part.Name, len(delivered), len(part.Objects))
			continue
		}
		// Secrets travel in the Secret, before the ConfigMaps: compare as sets
		// of identities, and the order within each kind of carrier.
		want := map[string]bool{}
		for _, o := range part.Objects {
			want[identity(o)] = true
		}
		crdAt := map[string]int{} // group/kind → position of its CRD
		for i, o := range delivered {
			if !want[identity(o)] {
				t.Errorf("part %s delivers %s, which was not rendered", part.Name, identity(o))
			}
			if o.GetKind() == "CustomResourceDefinition" {
				group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
				kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
				crdAt[group+"/"+kind] = i
			}
		}
		for i, o := range delivered {
			gk := o.GroupVersionKind().Group + "/" + o.GetKind()
			if at, ok := crdAt[gk]; ok && at > i {
				t.Errorf("part %s: %s comes before the CRD of its kind", part.Name, identity(o))
			}
		}
		t.Logf("part %s: %d objects in %d ConfigMaps/Secrets", part.Name, len(delivered), len(crs.Spec.Resources))
	}
}

func identity(o *unstructured.Unstructured) string {
	return o.GetAPIVersion() + " " + o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

// sameObjects compares two renders of the same cluster's delivery objects.
func sameObjects(t *testing.T, a, b []client.Object) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("second render: %d objects, first: %d", len(b), len(a))
	}
	for i := range a {
		ya, err := yaml.Marshal(a[i])
		if err != nil {
			t.Fatal(err)
		}
		yb, err := yaml.Marshal(b[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ya, yb) {
			t.Errorf("%T %s differs between two renders of the same cluster (a re-run would re-apply it): %s", a[i], a[i].GetName(), firstDiff(string(ya), string(yb)))
		}
	}
}

func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return "line " + la[i][:min(len(la[i]), 120)] + " / " + lb[i][:min(len(lb[i]), 120)]
		}
	}
	return "lengths differ"
}
