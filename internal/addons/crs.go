package addons

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	addonsv1 "sigs.k8s.io/cluster-api/api/addons/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/internal/logging"
)

// Delivery is Cluster API's own declarative mechanism: one
// ClusterResourceSet per part (addon) in the cluster's namespace on the
// management cluster, selecting the cluster by ClusterLabel, strategy
// Reconcile (a changed manifest is applied again, so a re-run converges).
// The manifests travel in ConfigMaps, anything holding a Secret in a
// Secret of the type ClusterResourceSets accept. Cluster API applies them
// as soon as the cluster's API answers.

// Labels capilab puts on the management cluster objects of addons.
const (
	// ClusterLabel on a Cluster selects it for its addons' ClusterResourceSets
	// (value: the cluster's name); the addon objects carry it too.
	ClusterLabel = "capilab.dev/cluster"
	// PartLabel names the part (addon) an object delivers.
	PartLabel     = "capilab.dev/addon"
	managedBy     = "app.kubernetes.io/managed-by"
	managedByUs   = "capilab"
	maxConfigData = 768 << 10 // bytes of manifests per ConfigMap (the API server takes objects up to 1 MiB)
)

// ClusterLabels are the labels the Cluster object must carry for its
// addons to be delivered.
func ClusterLabels(cluster string) map[string]string {
	return map[string]string{ClusterLabel: cluster}
}

// CRSName is the ClusterResourceSet of a part.
func CRSName(cluster, part string) string { return cluster + "-addon-" + part }

// Objects are the management cluster's objects that deliver the bundle:
// per part a ClusterResourceSet and its ConfigMaps/Secret. Apply them
// server-side with the Cluster (the Cluster must carry ClusterLabels).
func (b *Bundle) Objects() ([]client.Object, error) {
	c := b.Cluster
	if c.Namespace == "" {
		return nil, fmt.Errorf("cluster %s: no namespace for its addon objects", c.Name)
	}
	var out []client.Object
	for _, p := range b.Parts {
		labels := map[string]string{ClusterLabel: c.Name, PartLabel: p.Name, managedBy: managedByUs}
		name := CRSName(c.Name, p.Name)
		var plain, secret []*unstructured.Unstructured
		for _, o := range p.Objects {
			if o.GetKind() == "Secret" && o.GetAPIVersion() == "v1" {
				secret = append(secret, o)
			} else {
				plain = append(plain, o)
			}
		}
		var refs []addonsv1.ResourceRef
		if len(secret) > 0 {
			data, err := marshalAll(secret)
			if err != nil {
				return nil, fmt.Errorf("part %s: %w", p.Name, err)
			}
			out = append(out, &corev1.Secret{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: name, Labels: labels},
				Type:       addonsv1.ClusterResourceSetSecretType,
				Data:       map[string][]byte{"objects.yaml": data},
			})
			refs = append(refs, addonsv1.ResourceRef{Kind: string(addonsv1.SecretClusterResourceSetResourceKind), Name: name})
		}
		chunks, err := chunk(plain, maxConfigData)
		if err != nil {
			return nil, fmt.Errorf("part %s: %w", p.Name, err)
		}
		for i, data := range chunks {
			cm := fmt.Sprintf("%s-%d", name, i)
			out = append(out, &corev1.ConfigMap{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
				ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: cm, Labels: labels},
				Data:       map[string]string{"objects.yaml": string(data)},
			})
			refs = append(refs, addonsv1.ResourceRef{Kind: string(addonsv1.ConfigMapClusterResourceSetResourceKind), Name: cm})
		}
		if len(refs) == 0 {
			return nil, fmt.Errorf("part %s: no objects", p.Name)
		}
		out = append(out, &addonsv1.ClusterResourceSet{
			TypeMeta:   metav1.TypeMeta{APIVersion: addonsv1.GroupVersion.String(), Kind: "ClusterResourceSet"},
			ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: name, Labels: labels},
			Spec: addonsv1.ClusterResourceSetSpec{
				ClusterSelector: metav1.LabelSelector{MatchLabels: ClusterLabels(c.Name)},
				Resources:       refs,
				Strategy:        string(addonsv1.ClusterResourceSetStrategyReconcile),
			},
		})
	}
	return out, nil
}

// Objects renders the selected addons and returns the management cluster's
// objects that deliver them (Render, then Bundle.Objects).
func (r *Renderer) Objects(ctx context.Context, cluster ClusterInfo, selected []Addon) ([]client.Object, error) {
	b, err := r.Render(ctx, cluster, selected)
	if err != nil {
		return nil, err
	}
	return b.Objects()
}

func marshalAll(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.GetKind(), kube.ObjectName(o), err)
		}
		buf.WriteString("---\n")
		buf.Write(data)
	}
	return buf.Bytes(), nil
}

// chunk marshals objects into YAML streams of at most limit bytes each,
// keeping their order (CRDs, which the objects after them may need, stay
// first).
func chunk(objs []*unstructured.Unstructured, limit int) ([][]byte, error) {
	var out [][]byte
	var cur bytes.Buffer
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.GetKind(), kube.ObjectName(o), err)
		}
		doc := append([]byte("---\n"), data...)
		if len(doc) > limit {
			return nil, fmt.Errorf("%s %s is %d bytes, more than a ConfigMap of addon manifests holds (%d)", o.GetKind(), kube.ObjectName(o), len(doc), limit)
		}
		if cur.Len()+len(doc) > limit {
			out = append(out, append([]byte(nil), cur.Bytes()...))
			cur.Reset()
		}
		cur.Write(doc)
	}
	if cur.Len() > 0 {
		out = append(out, cur.Bytes())
	}
	return out, nil
}

// Prune deletes the addon objects of a cluster on the management cluster
// that keep does not hold (an addon turned off, a manifest that needs
// fewer ConfigMaps now). It deletes only objects that carry capilab's
// labels for this cluster. What a ClusterResourceSet delivered stays in the
// workload cluster: Cluster API never removes it; Prune says so.
func Prune(ctx context.Context, c client.Client, cluster ClusterInfo, keep []client.Object, log *slog.Logger) error {
	if log == nil {
		log = logging.Discard()
	}
	kept := map[string]bool{}
	for _, o := range keep {
		kept[fmt.Sprintf("%T/%s", o, o.GetName())] = true
	}
	sel := client.MatchingLabels{ClusterLabel: cluster.Name, managedBy: managedByUs}
	opts := []client.ListOption{client.InNamespace(cluster.Namespace), sel, client.HasLabels{PartLabel}}
	var stale []client.Object
	var crs addonsv1.ClusterResourceSetList
	if err := c.List(ctx, &crs, opts...); err != nil {
		return fmt.Errorf("list ClusterResourceSets of %s: %w", cluster.Name, err)
	}
	for i := range crs.Items {
		stale = append(stale, &crs.Items[i])
	}
	var cms corev1.ConfigMapList
	if err := c.List(ctx, &cms, opts...); err != nil {
		return fmt.Errorf("list ConfigMaps of %s: %w", cluster.Name, err)
	}
	for i := range cms.Items {
		stale = append(stale, &cms.Items[i])
	}
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets, opts...); err != nil {
		return fmt.Errorf("list Secrets of %s: %w", cluster.Name, err)
	}
	for i := range secrets.Items {
		stale = append(stale, &secrets.Items[i])
	}
	sort.SliceStable(stale, func(i, j int) bool { // ClusterResourceSets before what they reference
		_, a := stale[i].(*addonsv1.ClusterResourceSet)
		_, b := stale[j].(*addonsv1.ClusterResourceSet)
		return a && !b
	})
	for _, o := range stale {
		if kept[fmt.Sprintf("%T/%s", o, o.GetName())] {
			continue
		}
		if _, isCRS := o.(*addonsv1.ClusterResourceSet); isCRS {
			log.Info("addon no longer selected: deleting its ClusterResourceSet; what it delivered stays in the workload cluster",
				"cluster", cluster.Name, "addon", o.GetLabels()[PartLabel], "clusterResourceSet", o.GetName())
		}
		if err := c.Delete(ctx, o); kube.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete %T %s/%s: %w", o, o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}
