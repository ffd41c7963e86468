package certissuer

import (
	"context"
	"fmt"
	"maps"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// issuerReconciler sets the Ready condition of Issuers or ClusterIssuers,
// so that whatever waits for an issuer to be ready works.
type issuerReconciler struct {
	*env
	gvk schema.GroupVersionKind
}

func (r *issuerReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	obj := newObject(r.gvk)
	if err := r.client.Get(ctx, req.NamespacedName, obj); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	typ, caSecret := issuerType(obj)
	ready, reason, msg := true, ReasonReady, ""
	var result reconcile.Result
	switch typ {
	case "selfSigned":
		msg = "certissuer signs this issuer's Certificates with the lab CA (ca.crt is the lab CA, so CA bundles stay the same across renewals)"
	case "ca":
		ns := req.Namespace
		if r.gvk == ClusterIssuerGVK {
			ns = r.namespace
		}
		key := client.ObjectKey{Namespace: ns, Name: caSecret}
		sec, err := r.getSecret(ctx, key)
		switch {
		case caSecret == "":
			ready, reason, msg = false, ReasonIssuerNotReady, "spec.ca.secretName is empty"
		case apierrors.IsNotFound(err):
			ready, reason, msg = false, ReasonIssuerNotReady, fmt.Sprintf("Secret %s not found", key)
			result.RequeueAfter = issuerRetry
		case err != nil:
			return reconcile.Result{}, fmt.Errorf("read Secret %s: %w", key, err)
		default:
			if _, err := loadSigner(sec.Data, "Secret "+key.String()); err != nil {
				ready, reason, msg = false, ReasonIssuerNotReady, err.Error()
				result.RequeueAfter = issuerRetry
			} else {
				msg = fmt.Sprintf("signing CA in Secret %s verified", key)
			}
		}
	default:
		msg = fmt.Sprintf("certissuer does not implement %q issuers: the lab CA signs their Certificates", typ)
	}
	return result, r.patchStatus(ctx, obj, readyCondition(ready, reason, msg, obj.GetGeneration()), nil)
}

// patchStatus sets one condition and the given fields in obj's status,
// writing only when something changed.
func (e *env) patchStatus(ctx context.Context, obj *unstructured.Unstructured, c map[string]any, fields map[string]any) error {
	orig := obj.DeepCopy()
	status, _, _ := unstructured.NestedMap(obj.Object, "status")
	if status == nil {
		status = map[string]any{}
	}
	maps.Copy(status, fields)
	status["conditions"] = setCondition(status["conditions"], c, e.clock.Now())
	if err := unstructured.SetNestedField(obj.Object, status, "status"); err != nil {
		return err
	}
	if reflect.DeepEqual(normalise(orig.Object["status"]), normalise(obj.Object["status"])) {
		return nil
	}
	if err := e.client.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("update status of %s %s: %w", obj.GetKind(), client.ObjectKeyFromObject(obj), err)
	}
	return nil
}
