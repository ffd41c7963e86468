package addons

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	addonsv1 "sigs.k8s.io/cluster-api/api/addons/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/capilab/capilab/internal/kube"
)

func renderAll(t *testing.T) *Bundle {
	t.Helper()
	f := newFixture(t)
	b, err := f.renderer(t).Render(context.Background(), testCluster, []Addon{
		{Name: OCCM, Version: "v1.36.0"}, {Name: CinderCSI, Version: "v1.36.0"}, {Name: MetricsServer, Version: "v0.8.0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestObjectsAreClusterResourceSets(t *testing.T) {
	b := renderAll(t)
	objs, err := b.Objects()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]client.Object{}
	for _, o := range objs {
		if o.GetNamespace() != "alpha" {
			t.Errorf("%T %s in namespace %q", o, o.GetName(), o.GetNamespace())
		}
		if l := o.GetLabels(); l[ClusterLabel] != "alpha" || l[PartLabel] == "" || l[managedBy] != managedByUs {
			t.Errorf("%T %s labels %v", o, o.GetName(), l)
		}
		byName[fmt.Sprintf("%T/%s", o, o.GetName())] = o
	}
	for _, p := range b.Parts {
		crs, ok := byName["*v1beta2.ClusterResourceSet/"+CRSName("alpha", p.Name)].(*addonsv1.ClusterResourceSet)
		if !ok {
			t.Fatalf("no ClusterResourceSet for %s", p.Name)
		}
		if crs.Spec.Strategy != "Reconcile" || crs.Spec.ClusterSelector.MatchLabels[ClusterLabel] != "alpha" || len(crs.Spec.ClusterSelector.MatchLabels) != 1 {
			t.Errorf("%s: strategy %q selector %v", crs.Name, crs.Spec.Strategy, crs.Spec.ClusterSelector)
		}
		if crs.APIVersion != "addons.cluster.x-k8s.io/v1beta2" || crs.Kind != "ClusterResourceSet" {
			t.Errorf("%s: %s %s", crs.Name, crs.APIVersion, crs.Kind)
		}
		// Reassemble what the ClusterResourceSet delivers, as Cluster API reads it.
		var delivered []*unstructured.Unstructured
		for _, ref := range crs.Spec.Resources {
			var data string
			switch ref.Kind {
			case "ConfigMap":
				cm := byName["*v1.ConfigMap/"+ref.Name].(*corev1.ConfigMap)
				data = cm.Data["objects.yaml"]
			case "Secret":
				s := byName["*v1.Secret/"+ref.Name].(*corev1.Secret)
				if s.Type != addonsv1.ClusterResourceSetSecretType {
					t.Errorf("Secret %s has type %q; ClusterResourceSets accept only %q", s.Name, s.Type, addonsv1.ClusterResourceSetSecretType)
				}
				data = string(s.Data["objects.yaml"])
			default:
				t.Fatalf("resource kind %q", ref.Kind)
			}
			got, err := kube.DecodeYAML([]byte(data))
			if err != nil {
				t.Fatal(err)
			}
			delivered = append(delivered, got...)
		}
		if len(delivered) != len(p.Objects) {
			t.Fatalf("%s: delivers %d objects, rendered %d", p.Name, len(delivered), len(p.Objects))
		}
		for _, d := range delivered {
			if d.GetKind() == "Secret" && p.Name != CloudConfigPart {
				t.Errorf("%s: a Secret in part %s", d.GetName(), p.Name)
			}
		}
	}
	// The cloud.conf travels only in a Secret.
	for _, o := range objs {
		if cm, ok := o.(*corev1.ConfigMap); ok && strings.Contains(cm.Data["objects.yaml"], "s3cr3t") {
			t.Errorf("ConfigMap %s holds the credential", cm.Name)
		}
	}
	if _, ok := byName["*v1.Secret/alpha-addon-cloud-config"]; !ok {
		t.Error("no cloud-config Secret")
	}
	if labels := ClusterLabels("alpha"); labels[ClusterLabel] != "alpha" {
		t.Errorf("ClusterLabels %v", labels)
	}
}

func TestChunkSplitsAtDocuments(t *testing.T) {
	var objs []*unstructured.Unstructured
	for i := range 10 {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("ConfigMap")
		u.SetName(fmt.Sprintf("cm-%d", i))
		_ = unstructured.SetNestedField(u.Object, strings.Repeat("x", 300), "data", "x")
		objs = append(objs, u)
	}
	chunks, err := chunk(objs, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) < 4 {
		t.Fatalf("%d chunks", len(chunks))
	}
	var names []string
	for _, c := range chunks {
		if len(c) > 1000 {
			t.Errorf("chunk of %d bytes", len(c))
		}
		got, err := kube.DecodeYAML(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range got {
			names = append(names, o.GetName())
		}
	}
	if strings.Join(names, ",") != "cm-0,cm-1,cm-2,cm-3,cm-4,cm-5,cm-6,cm-7,cm-8,cm-9" {
		t.Errorf("order %v", names)
	}
	if _, err := chunk(objs[:1], 100); err == nil || !strings.Contains(err.Error(), "more than a ConfigMap") {
		t.Errorf("oversized document: %v", err)
	}
}

func TestPruneDeletesOnlyWhatIsNoLongerSelected(t *testing.T) {
	all, err := renderAll(t).Objects()
	if err != nil {
		t.Fatal(err)
	}
	// Not ours: another cluster's addon, and a look-alike without our labels.
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "alpha2-addon-occm-0",
		Labels: map[string]string{ClusterLabel: "alpha2", PartLabel: "occm", managedBy: managedByUs}}}
	lookalike := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "alpha", Name: "alpha-addon-occm-9"}}
	c := fake.NewClientBuilder().WithScheme(kube.Scheme()).WithObjects(append(append([]client.Object{}, all...), other, lookalike)...).Build()

	var keep []client.Object // metrics-server turned off
	for _, o := range all {
		if o.GetLabels()[PartLabel] != string(MetricsServer) {
			keep = append(keep, o)
		}
	}
	if err := Prune(context.Background(), c, testCluster, keep, nil); err != nil {
		t.Fatal(err)
	}
	for _, o := range all {
		err := c.Get(context.Background(), client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object))
		gone := kube.IgnoreNotFound(err) == nil && err != nil
		if want := o.GetLabels()[PartLabel] == string(MetricsServer); gone != want {
			t.Errorf("%T %s: gone=%t", o, o.GetName(), gone)
		}
	}
	for _, o := range []client.Object{other, lookalike} {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(o), &corev1.ConfigMap{}); err != nil {
			t.Errorf("%s was touched: %v", o.GetName(), err)
		}
	}
}
