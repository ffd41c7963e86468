package certissuer

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// LeaderElectionID names the Lease replicas of the issuer elect a leader with.
const LeaderElectionID = "certissuer.capilab.local"

// Options configure the issuer process.
type Options struct {
	// Namespace is where the lab CA Secret and the leader Lease live, and
	// where ClusterIssuers' CA Secrets are looked up (required).
	Namespace string
	// LeaderElection: only the elected replica reconciles.
	LeaderElection bool
	// HealthProbeAddr serves /healthz and /readyz ("0": off).
	HealthProbeAddr string
	// MetricsAddr serves controller-runtime's Prometheus metrics ("0": off).
	MetricsAddr string
	Log         *slog.Logger       // nil: discard
	Clock       clock.PassiveClock // nil: the real clock
	Rand        io.Reader          // nil: crypto/rand
}

// Run starts the issuer's controllers against the cluster of cfg and blocks
// until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	mgr, err := NewManager(cfg, opts)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// NewManager builds a controller-runtime manager running the issuer's
// controllers: Certificates, Issuers, ClusterIssuers, and CA injection into
// validating and mutating webhook configurations, CRDs and APIServices.
func NewManager(cfg *rest.Config, opts Options) (manager.Manager, error) {
	if opts.Namespace == "" {
		return nil, errors.New("certissuer: Options.Namespace is required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.HealthProbeAddr == "" {
		opts.HealthProbeAddr = "0"
	}
	if opts.MetricsAddr == "" {
		opts.MetricsAddr = "0"
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        logr.FromSlogHandler(opts.Log.Handler()),
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       opts.Namespace,
		LeaderElectionReleaseOnCancel: true,
		HealthProbeBindAddress:        opts.HealthProbeAddr,
		Metrics:                       metricsserver.Options{BindAddress: opts.MetricsAddr},
		// Only the issuer's own Secrets are cached (and watched): a cluster's
		// Secrets are many and none of the others' business. Others are read
		// live when needed.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy})},
		}},
		// Certificates and issuers are unstructured (no Go types of
		// cert-manager's): cache them too.
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: true}},
	})
	if err != nil {
		return nil, err
	}
	e := &env{
		client:    mgr.GetClient(),
		apiReader: mgr.GetAPIReader(),
		namespace: opts.Namespace,
		clock:     opts.Clock,
		rand:      opts.Rand,
		log:       opts.Log,
		events:    mgr.GetEventRecorder("certissuer"),
	}
	if err := setup(mgr, e); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}

// setup registers the controllers and the lab CA's creation (the leader
// makes it at start, so it exists before the first Certificate).
func setup(mgr manager.Manager, e *env) error {
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		_, err := e.labCA(ctx)
		return err
	})); err != nil {
		return err
	}
	cr := &certificateReconciler{env: e}
	if err := ctrl.NewControllerManagedBy(mgr).
		Named("certificate").
		For(newObject(CertificateGVK), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(e.certificatesForSecret)).
		Watches(newObject(IssuerGVK), handler.EnqueueRequestsFromMapFunc(e.certificatesForIssuer)).
		Watches(newObject(ClusterIssuerGVK), handler.EnqueueRequestsFromMapFunc(e.certificatesForIssuer)).
		Complete(cr); err != nil {
		return err
	}
	for _, gvk := range []struct{ name, kind string }{{"issuer", IssuerGVK.Kind}, {"clusterissuer", ClusterIssuerGVK.Kind}} {
		g := IssuerGVK
		g.Kind = gvk.kind
		if err := ctrl.NewControllerManagedBy(mgr).
			Named(gvk.name).
			For(newObject(g), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			Complete(&issuerReconciler{env: e, gvk: g}); err != nil {
			return err
		}
	}
	for _, k := range injectables {
		ir := &injectReconciler{env: e, kind: k}
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(k.GVK)
		if err := ctrl.NewControllerManagedBy(mgr).
			Named("inject-"+strings.ToLower(k.GVK.Kind)).
			For(meta, builder.WithPredicates(predicate.NewPredicateFuncs(wantsInjection))).
			Watches(newObject(CertificateGVK), handler.EnqueueRequestsFromMapFunc(ir.objectsForCertificate)).
			Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(ir.objectsForSecret)).
			Complete(ir); err != nil {
			return err
		}
	}
	return nil
}

func wantsInjection(o client.Object) bool {
	a := o.GetAnnotations()
	for _, k := range []string{AnnotationInjectCAFrom, AnnotationInjectCAFromSecret, AnnotationInjectAPIServerCA} {
		if _, ok := a[k]; ok {
			return true
		}
	}
	return false
}

func listOf(gvk schema.GroupVersionKind) *unstructured.UnstructuredList {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	return l
}

// certificatesForSecret maps a Secret event to the Certificates it
// concerns: its own Certificate, every Certificate when it is the lab CA,
// and those of CA issuers signing with it.
func (e *env) certificatesForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	if o.GetNamespace() == e.namespace && o.GetName() == CASecretName {
		return e.certificates(ctx, "", func(*unstructured.Unstructured) bool { return true })
	}
	var out []reconcile.Request
	if name := o.GetAnnotations()[AnnotationCertificateName]; name != "" {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}})
	}
	issuers := map[string]bool{} // kind/name of CA issuers using the Secret
	for _, k := range []struct {
		gvk schema.GroupVersionKind
		ns  string
	}{{IssuerGVK, o.GetNamespace()}, {ClusterIssuerGVK, ""}} {
		if k.ns == "" && o.GetNamespace() != e.namespace {
			continue
		}
		l := listOf(k.gvk)
		if err := e.client.List(ctx, l, client.InNamespace(k.ns)); err != nil {
			e.log.Error("list issuers", "kind", k.gvk.Kind, "error", err)
			continue
		}
		for _, is := range l.Items {
			if typ, s := issuerType(&is); typ == "ca" && s == o.GetName() {
				issuers[k.gvk.Kind+"/"+is.GetName()] = true
			}
		}
	}
	if len(issuers) > 0 {
		out = append(out, e.certificates(ctx, "", func(c *unstructured.Unstructured) bool {
			kind, name := issuerOf(c)
			if kind == IssuerGVK.Kind && c.GetNamespace() != o.GetNamespace() {
				return false
			}
			return issuers[kind+"/"+name]
		})...)
	}
	return out
}

// certificatesForIssuer maps an Issuer or ClusterIssuer event to the
// Certificates referencing it.
func (e *env) certificatesForIssuer(ctx context.Context, o client.Object) []reconcile.Request {
	kind := ClusterIssuerGVK.Kind
	if o.GetNamespace() != "" {
		kind = IssuerGVK.Kind
	}
	return e.certificates(ctx, o.GetNamespace(), func(c *unstructured.Unstructured) bool {
		k, name := issuerOf(c)
		return k == kind && name == o.GetName()
	})
}

// issuerOf is a Certificate's issuerRef kind (defaulted) and name, for
// issuers of the cert-manager.io group.
func issuerOf(c *unstructured.Unstructured) (kind, name string) {
	group, _, _ := unstructured.NestedString(c.Object, "spec", "issuerRef", "group")
	if group != "" && group != Group {
		return "", ""
	}
	kind, _, _ = unstructured.NestedString(c.Object, "spec", "issuerRef", "kind")
	if kind == "" {
		kind = IssuerGVK.Kind
	}
	name, _, _ = unstructured.NestedString(c.Object, "spec", "issuerRef", "name")
	return kind, name
}

func (e *env) certificates(ctx context.Context, namespace string, keep func(*unstructured.Unstructured) bool) []reconcile.Request {
	l := listOf(CertificateGVK)
	if err := e.client.List(ctx, l, client.InNamespace(namespace)); err != nil {
		e.log.Error("list certificates", "error", err)
		return nil
	}
	var out []reconcile.Request
	for i := range l.Items {
		if keep(&l.Items[i]) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&l.Items[i])})
		}
	}
	return out
}

// objectsForCertificate maps a Certificate event to the objects of the
// reconciler's kind that ask for its CA bundle.
func (r *injectReconciler) objectsForCertificate(ctx context.Context, o client.Object) []reconcile.Request {
	return r.objectsInjectedFrom(ctx, o.GetNamespace()+"/"+o.GetName())
}

// objectsForSecret maps an issued Secret's event to the objects that ask
// for the CA bundle of its Certificate.
func (r *injectReconciler) objectsForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	name := o.GetAnnotations()[AnnotationCertificateName]
	if name == "" {
		return nil
	}
	return r.objectsInjectedFrom(ctx, o.GetNamespace()+"/"+name)
}

func (r *injectReconciler) objectsInjectedFrom(ctx context.Context, from string) []reconcile.Request {
	l := &metav1.PartialObjectMetadataList{}
	l.SetGroupVersionKind(r.kind.GVK.GroupVersion().WithKind(r.kind.GVK.Kind + "List"))
	if err := r.client.List(ctx, l); err != nil {
		r.log.Error("list objects for CA injection", "kind", r.kind.GVK.Kind, "error", err)
		return nil
	}
	var out []reconcile.Request
	for _, item := range l.Items {
		if item.GetAnnotations()[AnnotationInjectCAFrom] == from {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: item.GetName()}})
		}
	}
	return out
}
