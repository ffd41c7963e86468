package certissuer

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// issuerRetry is how long a Certificate whose CA issuer is not usable waits
// before it looks again (a CA Secret not made by certissuer is not watched).
const issuerRetry = time.Minute

// certificateReconciler issues Certificates into their Secrets.
type certificateReconciler struct{ *env }

// issuerError says why a Certificate's issuer cannot sign now.
type issuerError struct {
	reason string
	msg    string
	retry  time.Duration // 0: wait for a watch event
}

func (e *issuerError) Error() string { return e.msg }

func newObject(gvk schema.GroupVersionKind) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u
}

// Reconcile makes the Certificate's Secret hold a valid certificate for its
// spec, signed by its issuer, and sets its status.
func (r *certificateReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	cert := newObject(CertificateGVK)
	if err := r.client.Get(ctx, req.NamespacedName, cert); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if cert.GetDeletionTimestamp() != nil {
		return reconcile.Result{}, nil
	}
	log := r.log.With("certificate", req.String())

	spec, err := parseCertificate(cert)
	if err != nil {
		var se *specError
		if errors.As(err, &se) {
			log.Warn("certificate not issued", "reason", se.Reason, "problem", se.Msg)
			return reconcile.Result{}, r.setNotReady(ctx, cert, se.Reason, se.Msg)
		}
		return reconcile.Result{}, err
	}
	s, note, err := r.signerFor(ctx, cert.GetNamespace(), spec.Issuer)
	if err != nil {
		var ie *issuerError
		var se *specError
		switch {
		case errors.As(err, &ie):
			log.Info("certificate waits for its issuer", "reason", ie.reason, "problem", ie.msg)
			return reconcile.Result{RequeueAfter: ie.retry}, r.setNotReady(ctx, cert, ie.reason, ie.msg)
		case errors.As(err, &se):
			return reconcile.Result{}, r.setNotReady(ctx, cert, se.Reason, se.Msg)
		}
		return reconcile.Result{}, err
	}

	key := client.ObjectKey{Namespace: cert.GetNamespace(), Name: spec.SecretName}
	sec, err := r.getSecret(ctx, key)
	if apierrors.IsNotFound(err) {
		sec, err = nil, nil
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("read Secret %s: %w", key, err)
	}
	now := r.clock.Now()
	why, got := "the Secret does not exist", issued{}
	if sec != nil {
		why, got = check(sec.Data, spec, s, now)
		if why != "" {
			// Decide on a live read: the cache may not show our last write yet.
			live := &corev1.Secret{}
			switch err := r.apiReader.Get(ctx, key, live); {
			case apierrors.IsNotFound(err):
				sec, why, got = nil, "the Secret does not exist", issued{}
			case err != nil:
				return reconcile.Result{}, fmt.Errorf("read Secret %s: %w", key, err)
			default:
				sec = live
				why, got = check(sec.Data, spec, s, now)
			}
		}
	}
	if sec != nil {
		if msg := ownershipConflict(sec, cert); msg != "" {
			log.Warn("certificate not issued", "reason", ReasonSecretConflict, "problem", msg)
			return reconcile.Result{}, r.setNotReady(ctx, cert, ReasonSecretConflict, msg)
		}
	}

	revision := revisionOf(sec)
	leaf := got.Leaf
	if why != "" {
		revision++
		leaf, err = r.write(ctx, cert, spec, s, sec, got, revision)
		if err != nil {
			return reconcile.Result{}, err
		}
		log.Info("issued certificate", "secret", key.String(), "why", why, "signer", s.Desc, "revision", revision,
			"notAfter", leaf.NotAfter.UTC().Format(time.RFC3339), "renewal", renewalTime(leaf.NotAfter, spec).UTC().Format(time.RFC3339))
		r.event(cert, corev1.EventTypeNormal, ReasonIssued, "Issue", "Issued into Secret %s (revision %d): %s", spec.SecretName, revision, why)
	} else {
		want := sec.DeepCopy()
		setSecretMeta(want, cert, spec, revision)
		if !reflect.DeepEqual(want.ObjectMeta, sec.ObjectMeta) {
			if err := r.client.Patch(ctx, want, client.MergeFrom(sec)); err != nil {
				return reconcile.Result{}, fmt.Errorf("update metadata of Secret %s: %w", key, err)
			}
		}
	}

	renewal := renewalTime(leaf.NotAfter, spec)
	msg := fmt.Sprintf("Certificate is up to date: signed by %s, valid until %s, renewal at %s", s.Desc, leaf.NotAfter.UTC().Format(time.RFC3339), renewal.UTC().Format(time.RFC3339))
	if note != "" {
		msg += " (" + note + ")"
	}
	if err := r.setStatus(ctx, cert, true, ReasonReady, msg, leaf, revision, renewal); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: max(renewal.Sub(r.clock.Now()), time.Second)}, nil
}

// signerFor resolves a Certificate's issuer to the key pair that signs for
// it, plus a note for the status message when certissuer serves the issuer
// differently from cert-manager.
func (r *certificateReconciler) signerFor(ctx context.Context, namespace string, ref issuerRef) (signer, string, error) {
	if ref.Group != Group {
		s, err := r.labCA(ctx)
		return s, fmt.Sprintf("issuers of group %s are not served by certissuer: the lab CA signs instead", ref.Group), err
	}
	var (
		obj           *unstructured.Unstructured
		key           client.ObjectKey
		caSecretSpace string
	)
	switch ref.Kind {
	case IssuerGVK.Kind:
		obj, key, caSecretSpace = newObject(IssuerGVK), client.ObjectKey{Namespace: namespace, Name: ref.Name}, namespace
	case ClusterIssuerGVK.Kind:
		obj, key, caSecretSpace = newObject(ClusterIssuerGVK), client.ObjectKey{Name: ref.Name}, r.namespace
	default:
		return signer{}, "", invalid("spec.issuerRef.kind %q: use Issuer or ClusterIssuer", ref.Kind)
	}
	if err := r.client.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return signer{}, "", &issuerError{reason: ReasonIssuerNotFound, msg: fmt.Sprintf("%s %s not found", ref.Kind, keyString(key))}
		}
		return signer{}, "", fmt.Errorf("read %s %s: %w", ref.Kind, keyString(key), err)
	}
	typ, caSecret := issuerType(obj)
	switch typ {
	case "ca":
		s, err := r.caIssuerSigner(ctx, ref.Kind, key, client.ObjectKey{Namespace: caSecretSpace, Name: caSecret})
		return s, "", err
	case "selfSigned":
		s, err := r.labCA(ctx)
		return s, "", err
	default:
		s, err := r.labCA(ctx)
		return s, fmt.Sprintf("%s %s is of type %q, which certissuer does not implement: the lab CA signs instead", ref.Kind, keyString(key), typ), err
	}
}

// keyString is ns/name, or name for cluster-scoped objects.
func keyString(k client.ObjectKey) string {
	if k.Namespace == "" {
		return k.Name
	}
	return k.String()
}

// issuerType is the issuer's type (the one key of its spec among
// cert-manager's issuer types) and, for a CA issuer, its Secret's name.
func issuerType(obj *unstructured.Unstructured) (typ, caSecret string) {
	spec, _, _ := unstructured.NestedMap(obj.Object, "spec")
	for _, t := range []string{"ca", "selfSigned", "acme", "vault", "venafi"} {
		if _, ok := spec[t]; ok {
			typ = t
			break
		}
	}
	if typ == "" {
		typ = "unknown"
	}
	caSecret, _, _ = unstructured.NestedString(obj.Object, "spec", "ca", "secretName")
	return typ, caSecret
}

func (r *certificateReconciler) caIssuerSigner(ctx context.Context, kind string, issuer, secret client.ObjectKey) (signer, error) {
	desc := fmt.Sprintf("CA issuer %s %s", kind, keyString(issuer))
	if secret.Name == "" {
		return signer{}, &issuerError{reason: ReasonIssuerNotReady, msg: desc + " has no spec.ca.secretName"}
	}
	sec, err := r.getSecret(ctx, secret)
	if apierrors.IsNotFound(err) {
		return signer{}, &issuerError{reason: ReasonIssuerNotReady, msg: fmt.Sprintf("%s: Secret %s not found", desc, secret), retry: issuerRetry}
	}
	if err != nil {
		return signer{}, fmt.Errorf("read Secret %s of %s: %w", secret, desc, err)
	}
	s, err := loadSigner(sec.Data, desc)
	if err != nil {
		return signer{}, &issuerError{reason: ReasonIssuerNotReady, msg: fmt.Sprintf("Secret %s: %v", secret, err), retry: issuerRetry}
	}
	return s, nil
}

// ownershipConflict says why the Secret is not this Certificate's to write,
// or "". A Secret named by a Certificate's spec.secretName is the
// Certificate's output, unless it provably belongs to something else: the
// lab CA, another Certificate, another controlling owner, or a type the
// Certificate's output cannot have.
func ownershipConflict(sec *corev1.Secret, cert *unstructured.Unstructured) string {
	name := "Secret " + sec.Namespace + "/" + sec.Name
	if sec.Annotations[AnnotationLabCA] == "true" {
		return name + " holds the lab CA"
	}
	if n, ok := sec.Annotations[AnnotationCertificateName]; ok && n != cert.GetName() {
		return fmt.Sprintf("%s is the output of Certificate %s", name, n)
	}
	if ref := metav1.GetControllerOf(sec); ref != nil && !isCertificateRef(*ref, cert.GetName()) {
		return fmt.Sprintf("%s is controlled by %s %s", name, ref.Kind, ref.Name)
	}
	if sec.Type != corev1.SecretTypeTLS {
		return fmt.Sprintf("%s is of type %s, not %s (a type cannot change; delete the Secret to let certissuer write it)", name, sec.Type, corev1.SecretTypeTLS)
	}
	return ""
}

func isCertificateRef(ref metav1.OwnerReference, name string) bool {
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	return gv.Group == Group && ref.Kind == CertificateGVK.Kind && ref.Name == name
}

func revisionOf(sec *corev1.Secret) int64 {
	if sec == nil {
		return 0
	}
	n, _ := strconv.ParseInt(sec.Annotations[AnnotationRevision], 10, 64)
	return n
}

// write issues a certificate into the Secret (creating it when existing is
// nil) and returns the new leaf.
func (r *certificateReconciler) write(ctx context.Context, cert *unstructured.Unstructured, spec request, s signer, existing *corev1.Secret, got issued, revision int64) (*x509.Certificate, error) {
	var key crypto.Signer
	if !spec.Key.Rotate && got.Key != nil && keyMatches(got.Key, spec.Key) {
		key = got.Key
	} else {
		var err error
		if key, err = generateKey(r.rand, spec.Key); err != nil {
			return nil, fmt.Errorf("generate %s key: %w", describeKey(spec.Key), err)
		}
	}
	certPEM, leaf, err := issue(r.rand, spec, key, s, r.clock.Now())
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key, spec.Key.Encoding)
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{KeyTLSCert: certPEM, KeyTLSKey: keyPEM, KeyCACert: s.Bundle}
	if existing == nil {
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: cert.GetNamespace(), Name: spec.SecretName},
			Type:       corev1.SecretTypeTLS,
			Data:       data,
		}
		setSecretMeta(sec, cert, spec, revision)
		if err := r.client.Create(ctx, sec); err != nil {
			return nil, fmt.Errorf("create Secret %s/%s: %w", sec.Namespace, sec.Name, err)
		}
		return leaf, nil
	}
	sec := existing.DeepCopy()
	sec.Data = data
	setSecretMeta(sec, cert, spec, revision)
	if err := r.client.Update(ctx, sec); err != nil {
		return nil, fmt.Errorf("update Secret %s/%s: %w", sec.Namespace, sec.Name, err)
	}
	return leaf, nil
}

// setSecretMeta puts the issuer's labels, annotations and owner reference on
// a Certificate's Secret (secretTemplate's first; the issuer's own win).
func setSecretMeta(sec *corev1.Secret, cert *unstructured.Unstructured, spec request, revision int64) {
	labels := maps.Clone(sec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, spec.TemplateLabels)
	labels[LabelManagedBy] = ManagedBy
	sec.Labels = labels

	annos := maps.Clone(sec.Annotations)
	if annos == nil {
		annos = map[string]string{}
	}
	maps.Copy(annos, spec.TemplateAnnos)
	annos[AnnotationCertificateName] = cert.GetName()
	annos[AnnotationIssuerName] = spec.Issuer.Name
	annos[AnnotationIssuerKind] = spec.Issuer.Kind
	annos[AnnotationIssuerGroup] = spec.Issuer.Group
	annos[AnnotationCommonName] = spec.CommonName
	annos[AnnotationAltNames] = strings.Join(spec.DNSNames, ",")
	annos[AnnotationIPSANs] = strings.Join(ipStrings(spec.IPs), ",")
	annos[AnnotationURISANs] = strings.Join(uriStrings(spec.URIs), ",")
	annos[AnnotationRevision] = strconv.FormatInt(revision, 10)
	sec.Annotations = annos

	owner := metav1.OwnerReference{
		APIVersion: CertificateGVK.GroupVersion().String(),
		Kind:       CertificateGVK.Kind,
		Name:       cert.GetName(),
		UID:        cert.GetUID(),
		Controller: ptr.To(true),
	}
	refs := make([]metav1.OwnerReference, 0, len(sec.OwnerReferences)+1)
	for _, ref := range sec.OwnerReferences {
		if !isCertificateRef(ref, cert.GetName()) {
			refs = append(refs, ref)
		}
	}
	sec.OwnerReferences = append(refs, owner)
}

// setNotReady records why the Certificate is not issued.
func (r *certificateReconciler) setNotReady(ctx context.Context, cert *unstructured.Unstructured, reason, msg string) error {
	return r.setStatus(ctx, cert, false, reason, msg, nil, 0, time.Time{})
}

// setStatus writes the Ready condition and, with a leaf, notBefore,
// notAfter, renewalTime and revision. Nothing is written when nothing
// changed.
func (r *certificateReconciler) setStatus(ctx context.Context, cert *unstructured.Unstructured, ready bool, reason, msg string, leaf *x509.Certificate, revision int64, renewal time.Time) error {
	var fields map[string]any
	if leaf != nil {
		fields = map[string]any{
			"notBefore":   leaf.NotBefore.UTC().Format(time.RFC3339),
			"notAfter":    leaf.NotAfter.UTC().Format(time.RFC3339),
			"renewalTime": renewal.UTC().Format(time.RFC3339),
			"revision":    revision,
		}
	}
	return r.patchStatus(ctx, cert, readyCondition(ready, reason, msg, cert.GetGeneration()), fields)
}
