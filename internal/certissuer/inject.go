package certissuer

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// injectable is a kind of object that carries CA bundles.
type injectable struct {
	GVK schema.GroupVersionKind
	// set writes bundle (base64) into every caBundle field of obj and
	// reports whether anything changed; "" in where means the object has
	// no field to inject into (a CRD without a conversion webhook).
	set func(obj *unstructured.Unstructured, bundle string) (changed bool, where string, err error)
}

// Injectables are the kinds the issuer injects CA bundles into.
var injectables = []injectable{
	{GVK: schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"}, set: setWebhooks},
	{GVK: schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration"}, set: setWebhooks},
	{GVK: schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, set: setCRDConversion},
	{GVK: schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"}, set: setAPIService},
}

func setWebhooks(obj *unstructured.Unstructured, bundle string) (bool, string, error) {
	hooks, _, err := unstructured.NestedSlice(obj.Object, "webhooks")
	if err != nil {
		return false, "", err
	}
	changed := false
	for i, h := range hooks {
		m, ok := h.(map[string]any)
		if !ok {
			return false, "", fmt.Errorf("webhooks[%d] is not an object", i)
		}
		if cur, _, _ := unstructured.NestedString(m, "clientConfig", "caBundle"); cur != bundle {
			if err := unstructured.SetNestedField(m, bundle, "clientConfig", "caBundle"); err != nil {
				return false, "", err
			}
			changed = true
		}
		hooks[i] = m
	}
	if len(hooks) == 0 {
		return false, "", nil
	}
	if changed {
		if err := unstructured.SetNestedSlice(obj.Object, hooks, "webhooks"); err != nil {
			return false, "", err
		}
	}
	return changed, fmt.Sprintf("%d webhooks", len(hooks)), nil
}

func setCRDConversion(obj *unstructured.Unstructured, bundle string) (bool, string, error) {
	strategy, _, _ := unstructured.NestedString(obj.Object, "spec", "conversion", "strategy")
	if _, ok, _ := unstructured.NestedMap(obj.Object, "spec", "conversion", "webhook", "clientConfig"); strategy != "Webhook" || !ok {
		return false, "", nil
	}
	return setField(obj, bundle, "conversion webhook", "spec", "conversion", "webhook", "clientConfig", "caBundle")
}

func setAPIService(obj *unstructured.Unstructured, bundle string) (bool, string, error) {
	if _, ok, _ := unstructured.NestedMap(obj.Object, "spec", "service"); !ok {
		return false, "", nil // served by the API server itself
	}
	return setField(obj, bundle, "spec.caBundle", "spec", "caBundle")
}

func setField(obj *unstructured.Unstructured, bundle, where string, path ...string) (bool, string, error) {
	if cur, _, _ := unstructured.NestedString(obj.Object, path...); cur == bundle {
		return false, where, nil
	}
	return true, where, unstructured.SetNestedField(obj.Object, bundle, path...)
}

// injectReconciler keeps the CA bundles of one kind of object in line with
// the Certificates their inject-ca-from annotation names.
type injectReconciler struct {
	*env
	kind injectable
}

// certificateRef parses an inject-ca-from value "<namespace>/<name>".
func certificateRef(v string) (client.ObjectKey, bool) {
	ns, name, ok := strings.Cut(v, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return client.ObjectKey{}, false
	}
	return client.ObjectKey{Namespace: ns, Name: name}, true
}

func (r *injectReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(r.kind.GVK)
	if err := r.client.Get(ctx, req.NamespacedName, meta); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	kind := r.kind.GVK.Kind
	log := r.log.With(strings.ToLower(kind), req.Name)
	annos := meta.GetAnnotations()
	for _, a := range []string{AnnotationInjectCAFromSecret, AnnotationInjectAPIServerCA} {
		if _, ok := annos[a]; ok {
			log.Error("annotation not supported by capilab's certissuer: no CA bundle injected for it (use "+AnnotationInjectCAFrom+")", "annotation", a)
			r.event(meta, corev1.EventTypeWarning, ReasonInjectionFailed, "Inject", "annotation %s is not supported by capilab's certissuer; use %s", a, AnnotationInjectCAFrom)
		}
	}
	from, ok := annos[AnnotationInjectCAFrom]
	if !ok {
		return reconcile.Result{}, nil
	}
	ref, ok := certificateRef(from)
	if !ok {
		log.Error("malformed annotation: want <namespace>/<certificate>", "annotation", AnnotationInjectCAFrom, "value", from)
		r.event(meta, corev1.EventTypeWarning, ReasonInjectionFailed, "Inject", "%s=%q: want <namespace>/<certificate>", AnnotationInjectCAFrom, from)
		return reconcile.Result{}, nil
	}
	bundle, why, err := r.bundleOf(ctx, ref)
	if err != nil {
		return reconcile.Result{}, err
	}
	if bundle == nil {
		// The Certificate or its Secret will appear; their events bring us back.
		log.Debug("no CA bundle to inject yet", "from", ref.String(), "why", why)
		return reconcile.Result{}, nil
	}

	// The full object, live: only its metadata is cached.
	obj := newObject(r.kind.GVK)
	if err := r.apiReader.Get(ctx, req.NamespacedName, obj); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	changed, where, err := r.kind.set(obj, base64.StdEncoding.EncodeToString(bundle))
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("%s %s: %w", kind, req.Name, err)
	}
	if where == "" {
		log.Warn("nothing to inject into: the object has no webhook client configuration", "from", ref.String())
		return reconcile.Result{}, nil
	}
	if !changed {
		return reconcile.Result{}, nil
	}
	// Update carries the resourceVersion just read: a concurrent change
	// fails with a conflict and the request is retried on fresh data.
	if err := r.client.Update(ctx, obj); err != nil {
		return reconcile.Result{}, fmt.Errorf("inject CA bundle into %s %s: %w", kind, req.Name, err)
	}
	log.Info("injected CA bundle", "into", where, "from", ref.String())
	r.event(meta, corev1.EventTypeNormal, ReasonInjected, "Inject", "Injected the CA bundle of Certificate %s into %s", ref, where)
	return reconcile.Result{}, nil
}

// bundleOf returns the ca.crt of the Secret the Certificate ref issued
// into, or nil and why there is none yet.
func (r *injectReconciler) bundleOf(ctx context.Context, ref client.ObjectKey) ([]byte, string, error) {
	cert := newObject(CertificateGVK)
	if err := r.client.Get(ctx, ref, cert); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "Certificate not found", nil
		}
		return nil, "", fmt.Errorf("read Certificate %s: %w", ref, err)
	}
	secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	if secretName == "" {
		return nil, "Certificate has no spec.secretName", nil
	}
	sec := &corev1.Secret{}
	// Only the issuer's own Secrets are cached, and only those count.
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: secretName}, sec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "Secret " + secretName + " not issued yet", nil
		}
		return nil, "", fmt.Errorf("read Secret %s/%s: %w", ref.Namespace, secretName, err)
	}
	if sec.Annotations[AnnotationCertificateName] != ref.Name || len(sec.Data[KeyCACert]) == 0 {
		return nil, "Secret " + secretName + " not issued for this Certificate yet", nil
	}
	return sec.Data[KeyCACert], "", nil
}
