package certissuer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CASecretName is the Secret (in the issuer's namespace) holding the lab CA.
const CASecretName = "certissuer-ca"

// EventRecorder records Kubernetes Events (events.k8s.io); the manager's
// recorder implements it.
type EventRecorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Event reasons and Ready condition reasons.
const (
	ReasonIssued          = "Issued"
	ReasonReady           = "Ready"
	ReasonInvalidSpec     = "InvalidSpec"
	ReasonUnsupported     = "Unsupported"
	ReasonIssuerNotFound  = "IssuerNotFound"
	ReasonIssuerNotReady  = "IssuerNotReady"
	ReasonSecretConflict  = "SecretConflict"
	ReasonInjected        = "Injected"
	ReasonInjectionFailed = "InjectionFailed"
)

// env is what every controller of the issuer shares.
type env struct {
	client    client.Client // cached reads, writes
	apiReader client.Reader // live reads
	namespace string        // the issuer's namespace: lab CA, ClusterIssuer CA secrets
	clock     clock.PassiveClock
	rand      io.Reader
	log       *slog.Logger
	events    EventRecorder

	caMu  sync.Mutex
	caKey string // uid/resourceVersion of the parsed CA Secret
	ca    signer
}

func (e *env) event(obj runtime.Object, eventtype, reason, action, note string, args ...any) {
	if e.events != nil {
		e.events.Eventf(obj, nil, eventtype, reason, action, note, args...)
	}
}

// getSecret reads a Secret from the cache (which holds only the issuer's
// own Secrets) and, when it is not there, from the API server.
func (e *env) getSecret(ctx context.Context, key client.ObjectKey) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := e.client.Get(ctx, key, s)
	if apierrors.IsNotFound(err) {
		err = e.apiReader.Get(ctx, key, s)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// labCA returns the lab CA, creating its Secret the first time and
// replacing it once two thirds of its lifetime have passed.
func (e *env) labCA(ctx context.Context) (signer, error) {
	key := client.ObjectKey{Namespace: e.namespace, Name: CASecretName}
	sec, err := e.getSecret(ctx, key)
	switch {
	case apierrors.IsNotFound(err):
		return e.createCA(ctx, key)
	case err != nil:
		return signer{}, fmt.Errorf("read lab CA Secret %s: %w", key, err)
	}
	if sec.Annotations[AnnotationLabCA] != "true" || sec.Labels[LabelManagedBy] != ManagedBy {
		return signer{}, fmt.Errorf("secret %s exists but is not the lab CA certissuer made (no %s annotation): refusing to use or replace it", key, AnnotationLabCA)
	}
	e.caMu.Lock()
	defer e.caMu.Unlock()
	version := string(sec.UID) + "/" + sec.ResourceVersion
	s, err := e.ca, error(nil)
	if e.caKey != version {
		s, err = loadSigner(sec.Data, "the lab CA")
	}
	now := e.clock.Now()
	if err == nil {
		lifetime := s.Cert.NotAfter.Sub(s.Cert.NotBefore)
		if now.Before(s.Cert.NotBefore.Add(lifetime * 2 / 3)) {
			e.caKey, e.ca = version, s
			return s, nil
		}
		e.log.Warn("lab CA is two thirds through its lifetime: replacing it; every Certificate will be re-issued", "notAfter", s.Cert.NotAfter)
	} else {
		e.log.Error("lab CA Secret does not hold a usable CA: replacing it; every Certificate will be re-issued", "secret", key.String(), "error", err)
	}
	certPEM, keyPEM, err := newCA(e.rand, now)
	if err != nil {
		return signer{}, fmt.Errorf("generate lab CA: %w", err)
	}
	sec.Data = map[string][]byte{KeyTLSCert: certPEM, KeyTLSKey: keyPEM, KeyCACert: certPEM}
	if err := e.client.Update(ctx, sec); err != nil {
		return signer{}, fmt.Errorf("replace lab CA Secret %s: %w", key, err)
	}
	s, err = loadSigner(sec.Data, "the lab CA")
	if err != nil {
		return signer{}, err
	}
	e.caKey, e.ca = string(sec.UID)+"/"+sec.ResourceVersion, s
	return s, nil
}

func (e *env) createCA(ctx context.Context, key client.ObjectKey) (signer, error) {
	certPEM, keyPEM, err := newCA(e.rand, e.clock.Now())
	if err != nil {
		return signer{}, fmt.Errorf("generate lab CA: %w", err)
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   key.Namespace,
			Name:        key.Name,
			Labels:      map[string]string{LabelManagedBy: ManagedBy},
			Annotations: map[string]string{AnnotationLabCA: "true"},
		},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{KeyTLSCert: certPEM, KeyTLSKey: keyPEM, KeyCACert: certPEM},
	}
	err = e.client.Create(ctx, sec)
	if apierrors.IsAlreadyExists(err) {
		// Made meanwhile (another leader before us): use that one.
		return e.labCA(ctx)
	}
	if err != nil {
		return signer{}, fmt.Errorf("create lab CA Secret %s: %w", key, err)
	}
	e.log.Info("created the lab CA", "secret", key.String())
	s, err := loadSigner(sec.Data, "the lab CA")
	if err != nil {
		return signer{}, err
	}
	e.caMu.Lock()
	e.caKey, e.ca = string(sec.UID)+"/"+sec.ResourceVersion, s
	e.caMu.Unlock()
	return s, nil
}
