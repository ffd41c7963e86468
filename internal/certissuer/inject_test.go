package certissuer

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func kindOf(name string) injectable {
	for _, k := range injectables {
		if k.GVK.Kind == name {
			return k
		}
	}
	panic(name)
}

func webhookConfig(kind, name string, annos map[string]string, hooks int) *unstructured.Unstructured {
	u := newObject(kindOf(kind).GVK)
	u.SetName(name)
	u.SetAnnotations(annos)
	var list []any
	for i := range hooks {
		list = append(list, map[string]any{
			"name":                    string(rune('a'+i)) + ".webhook.example.com",
			"admissionReviewVersions": anySlice("v1"),
			"sideEffects":             "None",
			"clientConfig":            map[string]any{"service": map[string]any{"namespace": "ns", "name": "svc", "path": "/x"}},
		})
	}
	u.Object["webhooks"] = list
	return u
}

func crd(name string, annos map[string]string, conversion bool) *unstructured.Unstructured {
	u := newObject(kindOf("CustomResourceDefinition").GVK)
	u.SetName(name)
	u.SetAnnotations(annos)
	spec := map[string]any{"group": "example.com", "scope": "Namespaced"}
	if conversion {
		spec["conversion"] = map[string]any{"strategy": "Webhook", "webhook": map[string]any{
			"conversionReviewVersions": anySlice("v1"),
			"clientConfig":             map[string]any{"service": map[string]any{"namespace": "ns", "name": "svc", "path": "/convert"}},
		}}
	} else {
		spec["conversion"] = map[string]any{"strategy": "None"}
	}
	u.Object["spec"] = spec
	return u
}

func apiService(name string, annos map[string]string, service bool) *unstructured.Unstructured {
	u := newObject(kindOf("APIService").GVK)
	u.SetName(name)
	u.SetAnnotations(annos)
	spec := map[string]any{"group": "example.com", "version": "v1", "groupPriorityMinimum": int64(100), "versionPriority": int64(10)}
	if service {
		spec["service"] = map[string]any{"namespace": "ns", "name": "svc"}
	}
	u.Object["spec"] = spec
	return u
}

// bundles returns every caBundle of obj, in order.
func bundles(t *testing.T, c client.Client, gvk schema.GroupVersionKind, name string) []string {
	t.Helper()
	u := newObject(gvk)
	if err := c.Get(context.Background(), client.ObjectKey{Name: name}, u); err != nil {
		t.Fatal(err)
	}
	var out []string
	switch gvk.Kind {
	case "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
		hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		for _, h := range hooks {
			b, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "caBundle")
			out = append(out, b)
		}
	case "CustomResourceDefinition":
		b, _, _ := unstructured.NestedString(u.Object, "spec", "conversion", "webhook", "clientConfig", "caBundle")
		out = append(out, b)
	case "APIService":
		b, _, _ := unstructured.NestedString(u.Object, "spec", "caBundle")
		out = append(out, b)
	}
	return out
}

func TestInjection(t *testing.T) {
	from := map[string]string{AnnotationInjectCAFrom: "capi-system/serving-cert"}
	tests := []struct {
		name       string
		obj        *unstructured.Unstructured
		wantInject int      // caBundle fields that must hold the bundle
		wantEvent  string   // substring of an expected event
		wantNone   []string // fields that must stay empty (count)
	}{
		{name: "validating webhook configuration, two webhooks", obj: webhookConfig("ValidatingWebhookConfiguration", "v", from, 2), wantInject: 2},
		{name: "mutating webhook configuration", obj: webhookConfig("MutatingWebhookConfiguration", "m", from, 1), wantInject: 1},
		{name: "CRD conversion webhook", obj: crd("things.example.com", from, true), wantInject: 1},
		{name: "APIService", obj: apiService("v1.example.com", from, true), wantInject: 1},
		{name: "no annotation", obj: webhookConfig("ValidatingWebhookConfiguration", "plain", nil, 1)},
		{name: "other annotation", obj: webhookConfig("MutatingWebhookConfiguration", "other", map[string]string{"example.com/x": "y"}, 1)},
		{name: "CRD without conversion webhook", obj: crd("plain.example.com", from, false)},
		{name: "local APIService", obj: apiService("v1.apps", from, false)},
		{name: "Certificate missing", obj: webhookConfig("ValidatingWebhookConfiguration", "missing", map[string]string{AnnotationInjectCAFrom: "capi-system/nope"}, 1)},
		{name: "malformed annotation", obj: webhookConfig("ValidatingWebhookConfiguration", "bad", map[string]string{AnnotationInjectCAFrom: "no-slash"}, 1), wantEvent: "want <namespace>/<certificate>"},
		{name: "inject-ca-from-secret is reported, not ignored", obj: webhookConfig("ValidatingWebhookConfiguration", "sec", map[string]string{AnnotationInjectCAFromSecret: "ns/s"}, 1), wantEvent: "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, selfSignedIssuer("capi-system", "selfsigned-issuer"), webhookCert("capi-system", "serving-cert", "capi-webhook-service-cert"), tc.obj)
			f.reconcileCert("capi-system", "serving-cert")
			want := base64.StdEncoding.EncodeToString(f.secret("capi-system", "capi-webhook-service-cert").Data[KeyCACert])
			gvk := tc.obj.GroupVersionKind()
			r := &injectReconciler{env: f.env, kind: kindOf(gvk.Kind)}
			f.takeWrites()
			if _, err := r.Reconcile(ctx, reqFor("", tc.obj.GetName())); err != nil {
				t.Fatal(err)
			}
			got := bundles(t, f.c, gvk, tc.obj.GetName())
			injected := 0
			for _, b := range got {
				switch b {
				case want:
					injected++
				case "":
				default:
					t.Errorf("caBundle %q is neither empty nor the Certificate's ca.crt", b)
				}
			}
			if injected != tc.wantInject {
				t.Errorf("%d of %d caBundle fields injected, want %d", injected, len(got), tc.wantInject)
			}
			writes := f.takeWrites()
			if (len(writes) > 0) != (tc.wantInject > 0) {
				t.Errorf("writes %v", writes)
			}
			if tc.wantEvent != "" && !slices.ContainsFunc(f.events.all(), func(e string) bool { return strings.Contains(e, tc.wantEvent) }) {
				t.Errorf("events %v, want one containing %q", f.events.all(), tc.wantEvent)
			}
			// Idempotent: a second pass writes nothing.
			if _, err := r.Reconcile(ctx, reqFor("", tc.obj.GetName())); err != nil {
				t.Fatal(err)
			}
			if w := f.takeWrites(); len(w) != 0 {
				t.Errorf("second pass wrote %v", w)
			}
		})
	}
}

// TestInjectionFollowsTheCA: a caBundle tracks the Certificate's ca.crt
// (lab CA rotation), and a caBundle wiped by a re-apply comes back.
func TestInjectionFollowsTheCA(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, selfSignedIssuer("ns", "selfsigned-issuer"), webhookCert("ns", "c", "c-tls"),
		webhookConfig("ValidatingWebhookConfiguration", "v", map[string]string{AnnotationInjectCAFrom: "ns/c"}, 1))
	r := &injectReconciler{env: f.env, kind: kindOf("ValidatingWebhookConfiguration")}
	gvk := r.kind.GVK

	// Before the Certificate is issued there is nothing to inject.
	if _, err := r.Reconcile(ctx, reqFor("", "v")); err != nil {
		t.Fatal(err)
	}
	if b := bundles(t, f.c, gvk, "v"); b[0] != "" {
		t.Fatalf("injected before issuance: %q", b[0])
	}
	f.reconcileCert("ns", "c")
	// The issued Secret's event maps to the object.
	sec := f.secret("ns", "c-tls")
	if reqs := r.objectsForSecret(ctx, sec); len(reqs) != 1 || reqs[0].Name != "v" {
		t.Fatalf("Secret maps to %v", reqs)
	}
	if reqs := r.objectsForCertificate(ctx, f.getCert("ns", "c")); len(reqs) != 1 || reqs[0].Name != "v" {
		t.Fatalf("Certificate maps to %v", reqs)
	}
	if _, err := r.Reconcile(ctx, reqFor("", "v")); err != nil {
		t.Fatal(err)
	}
	first := bundles(t, f.c, gvk, "v")[0]
	if first != base64.StdEncoding.EncodeToString(sec.Data[KeyCACert]) {
		t.Fatal("not injected")
	}

	// Rotate the lab CA: the Certificate is re-issued, the bundle follows.
	if err := f.c.Delete(ctx, f.secret(testNS, CASecretName)); err != nil {
		t.Fatal(err)
	}
	f.reconcileCert("ns", "c")
	if _, err := r.Reconcile(ctx, reqFor("", "v")); err != nil {
		t.Fatal(err)
	}
	second := bundles(t, f.c, gvk, "v")[0]
	if second == first || second != base64.StdEncoding.EncodeToString(f.secret("ns", "c-tls").Data[KeyCACert]) {
		t.Fatal("caBundle did not follow the new CA")
	}

	// A re-apply wipes the bundle: it is injected again.
	u := newObject(gvk)
	if err := f.c.Get(ctx, client.ObjectKey{Name: "v"}, u); err != nil {
		t.Fatal(err)
	}
	hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
	delete(hooks[0].(map[string]any)["clientConfig"].(map[string]any), "caBundle")
	_ = unstructured.SetNestedSlice(u.Object, hooks, "webhooks")
	if err := f.c.Update(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, reqFor("", "v")); err != nil {
		t.Fatal(err)
	}
	if b := bundles(t, f.c, gvk, "v")[0]; b != second {
		t.Fatal("wiped caBundle not restored")
	}
}

func TestWantsInjection(t *testing.T) {
	for annos, want := range map[string]bool{
		AnnotationInjectCAFrom:       true,
		AnnotationInjectCAFromSecret: true,
		AnnotationInjectAPIServerCA:  true,
		"example.com/other":          false,
	} {
		o := metaOf(kindOf("APIService").GVK, "x")
		o.SetAnnotations(map[string]string{annos: "a/b"})
		if got := wantsInjection(o); got != want {
			t.Errorf("%s: %t", annos, got)
		}
	}
}

func TestCertificateRef(t *testing.T) {
	for v, ok := range map[string]bool{"ns/c": true, "ns/": false, "/c": false, "c": false, "a/b/c": false} {
		if _, got := certificateRef(v); got != ok {
			t.Errorf("%q: %t", v, got)
		}
	}
}
