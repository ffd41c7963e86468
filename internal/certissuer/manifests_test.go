package certissuer

import (
	"bytes"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

const testImage = "capilab.local/certissuer:0123456789ab"

func TestManifests(t *testing.T) {
	objs := Manifests(testImage)
	kinds := map[string]int{}
	var dep *appsv1.Deployment
	var ns *corev1.Namespace
	var role *rbacv1.ClusterRole
	for i, o := range objs {
		gvk := o.GetObjectKind().GroupVersionKind()
		if gvk.Kind == "" || gvk.Version == "" {
			t.Errorf("object %d (%s) has no apiVersion/kind", i, o.GetName())
		}
		kinds[gvk.Kind]++
		// clusterctl treats cert-manager as its own (and would upgrade or
		// delete it) only when objects carry its core label: ours never do.
		for k := range o.GetLabels() {
			if strings.HasPrefix(k, "clusterctl.cluster.x-k8s.io") {
				t.Errorf("%s %s carries clusterctl label %s", gvk.Kind, o.GetName(), k)
			}
		}
		switch v := o.(type) {
		case *appsv1.Deployment:
			dep = v
		case *corev1.Namespace:
			ns = v
		case *rbacv1.ClusterRole:
			role = v
		}
	}
	for kind, n := range map[string]int{"CustomResourceDefinition": 3, "Namespace": 1, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 1, "Deployment": 1} {
		if kinds[kind] != n {
			t.Errorf("%d %s, want %d", kinds[kind], kind, n)
		}
	}
	// CRDs first, so the cert-manager.io API exists when anything uses it.
	if objs[0].GetObjectKind().GroupVersionKind().Kind != "CustomResourceDefinition" {
		t.Error("CRDs do not come first")
	}
	if ns.Name != Namespace || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace %s labels %v", ns.Name, ns.Labels)
	}

	// Pod Security "restricted": non-root, no privilege escalation, no
	// capabilities, RuntimeDefault seccomp.
	pod := dep.Spec.Template.Spec
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 || sc.Privileged != nil {
		t.Errorf("container security context %+v", sc)
	}
	if c.Image != testImage || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %s pull %s", c.Image, c.ImagePullPolicy)
	}
	if !strings.Contains(strings.Join(c.Args, " "), "--leader-elect=true") {
		t.Errorf("args %v: leader election off", c.Args)
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Error("no memory limit")
	}

	// RBAC covers what the controllers write.
	need := map[string]string{
		"certificates/status": "patch", "issuers/status": "patch", "clusterissuers/status": "patch",
		"secrets": "update", "validatingwebhookconfigurations": "update", "mutatingwebhookconfigurations": "update",
		"customresourcedefinitions": "update", "apiservices": "update", "events": "create",
	}
	for res, verb := range need {
		found := false
		for _, r := range role.Rules {
			if contains(r.Resources, res) && contains(r.Verbs, verb) {
				found = true
			}
		}
		if !found {
			t.Errorf("ClusterRole lacks %s on %s", verb, res)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestCRDs(t *testing.T) {
	want := map[string]apiextensionsv1.ResourceScope{
		"certificates.cert-manager.io":   apiextensionsv1.NamespaceScoped,
		"issuers.cert-manager.io":        apiextensionsv1.NamespaceScoped,
		"clusterissuers.cert-manager.io": apiextensionsv1.ClusterScoped,
	}
	for _, crd := range CRDs() {
		scope, ok := want[crd.Name]
		if !ok {
			t.Errorf("unexpected CRD %s", crd.Name)
			continue
		}
		delete(want, crd.Name)
		if crd.Spec.Scope != scope || crd.Spec.Names.Plural+"."+crd.Spec.Group != crd.Name {
			t.Errorf("%s: scope %s names %+v", crd.Name, crd.Spec.Scope, crd.Spec.Names)
		}
		if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1" || !crd.Spec.Versions[0].Served || !crd.Spec.Versions[0].Storage {
			t.Errorf("%s: versions %+v", crd.Name, crd.Spec.Versions)
		}
		v := crd.Spec.Versions[0]
		if v.Subresources == nil || v.Subresources.Status == nil {
			t.Errorf("%s: no status subresource", crd.Name)
		}
		spec := v.Schema.OpenAPIV3Schema.Properties["spec"]
		if spec.XPreserveUnknownFields == nil || !*spec.XPreserveUnknownFields {
			t.Errorf("%s: spec drops unknown fields", crd.Name)
		}
	}
	if len(want) != 0 {
		t.Errorf("missing CRDs %v", want)
	}
}

func TestYAML(t *testing.T) {
	data, err := YAML(testImage)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	n := 0
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			break
		}
		if u.GetKind() == "" {
			t.Errorf("document %d has no kind", n)
		}
		n++
	}
	if n != len(Manifests(testImage)) {
		t.Errorf("%d YAML documents, want %d", n, len(Manifests(testImage)))
	}
	if !bytes.Contains(data, []byte(testImage)) {
		t.Error("image missing from YAML")
	}
}

func TestObjects(t *testing.T) {
	objs, err := Objects(testImage)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != len(Manifests(testImage)) {
		t.Fatalf("%d objects", len(objs))
	}
	for _, u := range objs {
		if u.GetAPIVersion() == "" || u.GetKind() == "" {
			t.Errorf("%s: no apiVersion/kind", u.GetName())
		}
		if _, ok := u.Object["status"]; ok {
			t.Errorf("%s %s carries a status", u.GetKind(), u.GetName())
		}
		if u.GetKind() == "Deployment" {
			img, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
			if img[0].(map[string]any)["image"] != testImage {
				t.Errorf("image %v", img[0])
			}
		}
	}
}

func TestImageName(t *testing.T) {
	if got := ImageName("0123456789abcdef0123"); got != "capilab.local/certissuer:0123456789ab" {
		t.Errorf("ImageName %s", got)
	}
}
