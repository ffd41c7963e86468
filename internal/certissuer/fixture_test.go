package certissuer

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

const testNS = "capilab-certissuer"

// t0 is the fixture clock's start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is an issuer env on controller-runtime's fake client with a fake
// clock, counting writes.
type fixture struct {
	t      *testing.T
	c      client.WithWatch
	clock  *clocktesting.FakeClock
	env    *env
	events *fakeEvents

	mu     sync.Mutex
	writes []string // "verb kind ns/name"
}

type fakeEvents struct {
	mu   sync.Mutex
	list []string // "type reason: note"
}

func (f *fakeEvents) Eventf(_ runtime.Object, _ runtime.Object, eventtype, reason, _, note string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = append(f.list, eventtype+" "+reason+": "+fmt.Sprintf(note, args...))
}

func (f *fakeEvents) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.list...)
}

func restMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for _, g := range []struct {
		gvk   schema.GroupVersionKind
		scope meta.RESTScope
	}{
		{CertificateGVK, meta.RESTScopeNamespace},
		{IssuerGVK, meta.RESTScopeNamespace},
		{ClusterIssuerGVK, meta.RESTScopeRoot},
		{corev1.SchemeGroupVersion.WithKind("Secret"), meta.RESTScopeNamespace},
		{corev1.SchemeGroupVersion.WithKind("Namespace"), meta.RESTScopeRoot},
	} {
		m.Add(g.gvk, g.scope)
	}
	for _, k := range injectables {
		m.Add(k.GVK, meta.RESTScopeRoot)
	}
	return m
}

func newFixture(t *testing.T, objs ...client.Object) *fixture {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, clock: clocktesting.NewFakeClock(t0), events: &fakeEvents{}}
	record := func(verb string, obj client.Object) {
		gvk := obj.GetObjectKind().GroupVersionKind()
		kind := gvk.Kind
		if kind == "" {
			kind = fmt.Sprintf("%T", obj)
		}
		f.mu.Lock()
		f.writes = append(f.writes, fmt.Sprintf("%s %s %s/%s", verb, kind, obj.GetNamespace(), obj.GetName()))
		f.mu.Unlock()
	}
	f.c = fake.NewClientBuilder().
		WithScheme(scheme).
		WithRESTMapper(restMapper()).
		WithStatusSubresource(newObject(CertificateGVK), newObject(IssuerGVK), newObject(ClusterIssuerGVK)).
		WithObjects(objs...).
		WithInterceptorFuncs(interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				record("create", obj)
				return c.Create(ctx, obj, opts...)
			},
			Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
				record("update", obj)
				return c.Update(ctx, obj, opts...)
			},
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
				record("patch", obj)
				return c.Patch(ctx, obj, p, opts...)
			},
			Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
				record("delete", obj)
				return c.Delete(ctx, obj, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				record("patch/"+sub, obj)
				return c.SubResource(sub).Patch(ctx, obj, p, opts...)
			},
		}).
		Build()
	f.env = &env{
		client:    f.c,
		apiReader: f.c,
		namespace: testNS,
		clock:     f.clock,
		rand:      rand.Reader,
		log:       slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		events:    f.events,
	}
	return f
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// takeWrites returns the writes since the last call.
func (f *fixture) takeWrites() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.writes
	f.writes = nil
	return w
}

func (f *fixture) create(objs ...client.Object) {
	f.t.Helper()
	for _, o := range objs {
		if err := f.c.Create(context.Background(), o); err != nil {
			f.t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
}

// reconcileCert runs the Certificate reconciler once.
func (f *fixture) reconcileCert(ns, name string) reconcile.Result {
	f.t.Helper()
	res, err := (&certificateReconciler{env: f.env}).Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
	if err != nil {
		f.t.Fatalf("reconcile Certificate %s/%s: %v", ns, name, err)
	}
	return res
}

func (f *fixture) getCert(ns, name string) *unstructured.Unstructured {
	f.t.Helper()
	u := newObject(CertificateGVK)
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		f.t.Fatalf("get Certificate %s/%s: %v", ns, name, err)
	}
	return u
}

// secret returns the Secret or nil when it does not exist.
func (f *fixture) secret(ns, name string) *corev1.Secret {
	f.t.Helper()
	s := &corev1.Secret{}
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil
		}
		f.t.Fatal(err)
	}
	return s
}

// ready returns the Certificate's Ready status and reason.
func (f *fixture) ready(ns, name string) (status, reason, msg string) {
	return conditionStatus(f.getCert(ns, name).Object, "Ready")
}

func certificate(ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := newObject(CertificateGVK)
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetUID(types.UID("uid-" + name))
	u.SetGeneration(1)
	u.Object["spec"] = spec
	return u
}

func issuerObj(gvk schema.GroupVersionKind, ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := newObject(gvk)
	u.SetNamespace(ns)
	u.SetName(name)
	u.Object["spec"] = spec
	return u
}

func selfSignedIssuer(ns, name string) *unstructured.Unstructured {
	return issuerObj(IssuerGVK, ns, name, map[string]any{"selfSigned": map[string]any{}})
}

func anySlice(ss ...string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// leafOf parses the first certificate of a Secret's tls.crt.
func leafOf(t *testing.T, s *corev1.Secret) *x509.Certificate {
	t.Helper()
	certs, err := decodeCerts(s.Data[KeyTLSCert])
	if err != nil {
		t.Fatalf("tls.crt of %s: %v", s.Name, err)
	}
	return certs[0]
}

// verify checks tls.crt against ca.crt for every name (DNS or IP).
func verify(t *testing.T, s *corev1.Secret, names ...string) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.Data[KeyCACert]) {
		t.Fatalf("ca.crt of %s holds no certificate", s.Name)
	}
	certs, err := decodeCerts(s.Data[KeyTLSCert])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	for _, n := range names {
		if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: n, Roots: roots, Intermediates: inter, CurrentTime: certs[0].NotBefore.Add(time.Second)}); err != nil {
			t.Errorf("tls.crt of %s does not verify for %q against ca.crt: %v", s.Name, n, err)
		}
	}
}

func pemTypes(data []byte) []string {
	var out []string
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out
		}
		out = append(out, b.Type)
	}
}

func metaOf(gvk schema.GroupVersionKind, name string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	m.SetName(name)
	return m
}

func reqFor(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}
