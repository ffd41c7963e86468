//go:build e2e

package certissuer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	clusterctlcluster "sigs.k8s.io/cluster-api/cmd/clusterctl/client/cluster"
	clusterctlconfig "sigs.k8s.io/cluster-api/cmd/clusterctl/client/config"
	clusterctllog "sigs.k8s.io/cluster-api/cmd/clusterctl/log"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capilab/capilab/internal/certissuer"
	"github.com/capilab/capilab/internal/kindcluster"
	"github.com/capilab/capilab/internal/kube"
)

// longName is a DNS name longer than the 64 characters a CN may have.
const longName = "capi-kubeadm-control-plane-webhook-service.capi-kubeadm-control-plane-system.svc.cluster.local"

var (
	certificateGVK = certissuer.CertificateGVK
	apiServiceGVK  = schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"}
)

// e2e is the scenario's state.
type e2e struct {
	t          *testing.T
	c          *kube.Cluster
	name       string // kind cluster
	kubeconfig string
	id         string // unique suffix of cluster-scoped test objects
}

func TestCertissuer(t *testing.T) {
	ctx := t.Context()
	log := testLog(t)
	suffix := randHex(t, 3)
	name := "capilab-e2e-certissuer-" + suffix
	artifacts := filepath.Join(prepared.artifacts, t.Name())
	kubeconfig := filepath.Join(artifacts, "kubeconfig")
	kind := kindcluster.New(log)

	start := time.Now()
	_, err := kind.Create(ctx, kindcluster.Options{Name: name, Image: prepared.nodeImage, Kubeconfig: kubeconfig, WaitForReady: 3 * time.Minute})
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if t.Failed() {
			if err := kind.ExportLogs(cctx, name, filepath.Join(artifacts, "kind-logs")); err != nil {
				t.Logf("export logs: %v", err)
			}
		}
		if err := kind.Delete(cctx, name, kubeconfig); err != nil {
			t.Errorf("delete kind cluster %s: %v", name, err)
		}
	})
	if err != nil {
		t.Fatalf("create kind cluster: %v", err)
	}
	figure(t, "create kind cluster: %s", time.Since(start).Round(time.Second))
	start = time.Now()
	if err := kind.LoadImages(ctx, name, prepared.issuerImage, prepared.serverImage); err != nil {
		t.Fatal(err)
	}
	figure(t, "load issuer and test server images: %s", time.Since(start).Round(100*time.Millisecond))

	c, err := kube.New(name, kubeconfig, kube.Options{Log: log, Artifacts: artifacts})
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{t: t, c: c, name: name, kubeconfig: kubeconfig, id: suffix}

	// Each step needs the ones before it.
	for _, step := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"install", e.install},
		{"clusterctl-check", e.clusterctlCheck},
		{"issue", e.issue},
		{"issue-batch", e.issueBatch},
		{"webhooks-crd-apiservice", e.served},
		{"renewal", e.renewal},
		{"secret-deleted", e.secretDeleted},
		{"san-changed", e.sanChanged},
		{"footprint", e.footprint},
	} {
		if !t.Run(step.name, step.run) {
			t.FailNow()
		}
	}
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func (e *e2e) wait(name, what string, timeout time.Duration, cond func(ctx context.Context) (bool, string, error)) error {
	return e.c.WaitFor(e.t.Context(), kube.Wait{Name: name, What: what, Timeout: timeout, Interval: time.Second}, cond)
}

// install applies certissuer.Objects and waits for the Deployment and the
// lab CA. The namespace enforces Pod Security "restricted": the pod being
// admitted proves the Deployment complies.
func (e *e2e) install(t *testing.T) {
	ctx := t.Context()
	objs, err := certissuer.Objects(prepared.issuerImage)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := e.c.Apply(ctx, objs...); err != nil {
		t.Fatal(err)
	}
	if err := e.c.DeploymentsAvailable(ctx, kube.Wait{Name: "wait-certissuer", What: "the certificate issuer to be Available", Timeout: 3 * time.Minute, Interval: time.Second},
		certissuer.Namespace, nil, 1); err != nil {
		t.Fatal(err)
	}
	figure(t, "apply manifests to Deployment Available: %s", time.Since(start).Round(100*time.Millisecond))
	var ca corev1.Secret
	if err := e.wait("wait-lab-ca", "the lab CA Secret", time.Minute, func(ctx context.Context) (bool, string, error) {
		err := e.c.Client.Get(ctx, client.ObjectKey{Namespace: certissuer.Namespace, Name: certissuer.CASecretName}, &ca)
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	}); err != nil {
		t.Fatal(err)
	}
	if ca.Annotations[certissuer.AnnotationLabCA] != "true" || len(ca.Data["tls.crt"]) == 0 {
		t.Fatalf("lab CA Secret: annotations %v keys %d", ca.Annotations, len(ca.Data))
	}
}

// logBuffer collects clusterctl's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ensureCertManager runs clusterctl's own cert-manager check
// (CertManager().EnsureInstalled, what `clusterctl init` runs first)
// through its library. cert-manager's URL points at a file that does not
// exist: if clusterctl decided to install cert-manager, it would fail.
func (e *e2e) ensureCertManager(ctx context.Context, t *testing.T, extraConfig string) (string, error) {
	var logs logBuffer
	clusterctllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(io.MultiWriter(&logs, tWriter{t}), nil)))
	reader := clusterctlconfig.NewMemoryReader()
	if err := reader.Init(ctx, ""); err != nil {
		return "", err
	}
	reader.Set("cert-manager", "url: file:///nonexistent/cert-manager/v0.0.1/cert-manager.yaml\n"+extraConfig)
	cfg, err := clusterctlconfig.New(ctx, "", clusterctlconfig.InjectReader(reader))
	if err != nil {
		return "", err
	}
	err = clusterctlcluster.New(clusterctlcluster.Kubeconfig{Path: e.kubeconfig}, cfg).CertManager().EnsureInstalled(ctx)
	return logs.String(), err
}

const clusterctlSkipped = "Skipping installing cert-manager as it is already installed"

func (e *e2e) clusterctlCheck(t *testing.T) {
	ctx := t.Context()
	start := time.Now()
	logs, err := e.ensureCertManager(ctx, t, "")
	if err != nil {
		t.Fatalf("clusterctl's cert-manager check failed: %v", err)
	}
	if !strings.Contains(logs, clusterctlSkipped) {
		t.Fatalf("clusterctl did not say %q; its log:\n%s", clusterctlSkipped, logs)
	}
	figure(t, "clusterctl cert-manager check (create and delete its test Issuer and Certificate): %s", time.Since(start).Round(10*time.Millisecond))

	// clusterctl deletes its test namespace at the end of the check; a
	// second check while that namespace terminates cannot create its
	// Issuer. Record what happens, then how long the namespace takes.
	_, err = e.ensureCertManager(ctx, t, "")
	figure(t, "a second clusterctl check right after the first: error=%v", err)
	// The externallyProvisioned mode retries instead of installing; does a
	// retry outlast the namespace's termination?
	start = time.Now()
	_, err = e.ensureCertManager(ctx, t, "externallyProvisioned: \"true\"\ntimeout: 10s\n")
	figure(t, "a third check (externallyProvisioned, 10s timeout) while the namespace terminates: after %s error=%v", time.Since(start).Round(100*time.Millisecond), err)
	start = time.Now()
	if err := e.c.Gone(ctx, kube.Wait{Name: "wait-cert-manager-test-gone", What: "clusterctl's test namespace to be deleted", Timeout: 2 * time.Minute, Interval: 500 * time.Millisecond},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: certissuer.ClusterctlTestNamespace}}); err != nil {
		t.Fatal(err)
	}
	figure(t, "clusterctl's test namespace cert-manager-test gone after: %s", time.Since(start).Round(100*time.Millisecond))

	// Once it is gone the check passes again, also in the
	// externallyProvisioned mode (retries, never installs).
	for _, extra := range []string{"", "externallyProvisioned: \"true\"\ntimeout: 2m\n"} {
		if err := e.c.Gone(ctx, kube.Wait{Name: "wait-cert-manager-test-gone", What: "clusterctl's test namespace to be deleted", Timeout: 2 * time.Minute, Interval: 500 * time.Millisecond},
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: certissuer.ClusterctlTestNamespace}}); err != nil {
			t.Fatal(err)
		}
		logs, err := e.ensureCertManager(ctx, t, extra)
		if err != nil || !strings.Contains(logs, clusterctlSkipped) {
			t.Fatalf("clusterctl check with config %q: %v", extra, err)
		}
	}
}

func (e *e2e) namespace(t *testing.T, name string) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
	}}}
	if err := e.c.Client.Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func (e *e2e) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := e.c.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func obj(gvk schema.GroupVersionKind, ns, name string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: fields}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

func selfSigned(ns string) *unstructured.Unstructured {
	return obj(certissuer.IssuerGVK, ns, "selfsigned-issuer", map[string]any{"spec": map[string]any{"selfSigned": map[string]any{}}})
}

func cert(ns, name string, spec map[string]any) *unstructured.Unstructured {
	return obj(certificateGVK, ns, name, map[string]any{"spec": spec})
}

// secretEvents watches Secrets of a namespace from now on.
func (e *e2e) secretEvents(t *testing.T, ns string) watch.Interface {
	w, err := e.c.Clientset.CoreV1().Secrets(ns).Watch(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

// awaitSecrets waits (bounded) until every named Secret was written with a
// certificate different from the one in skip (serial), and returns when
// each was seen.
func awaitSecrets(t *testing.T, w watch.Interface, timeout time.Duration, skip map[string]string, names ...string) map[string]time.Time {
	t.Helper()
	seen := map[string]time.Time{}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(seen) < len(names) {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("Secret watch closed")
			}
			s, ok := ev.Object.(*corev1.Secret)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) || !slices.Contains(names, s.Name) || len(s.Data["tls.crt"]) == 0 {
				continue
			}
			if _, done := seen[s.Name]; done {
				continue
			}
			if serial(t, s) == skip[s.Name] {
				continue
			}
			seen[s.Name] = time.Now()
		case <-deadline.C:
			var missing []string
			for _, n := range names {
				if _, ok := seen[n]; !ok {
					missing = append(missing, n)
				}
			}
			t.Fatalf("timed out after %s waiting for Secrets %v to be issued", timeout, missing)
		}
	}
	return seen
}

func serial(t *testing.T, s *corev1.Secret) string {
	return leaf(t, s).SerialNumber.String()
}

func leaf(t *testing.T, s *corev1.Secret) *x509.Certificate {
	t.Helper()
	certs := parseCerts(t, s.Data["tls.crt"])
	return certs[0]
}

func parseCerts(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("no certificate in tls.crt")
	}
	return out
}

// verifyFor checks that tls.crt chains to ca.crt for every name.
func verifyFor(t *testing.T, s *corev1.Secret, names ...string) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.Data["ca.crt"]) {
		t.Fatalf("Secret %s: ca.crt holds no certificate", s.Name)
	}
	certs := parseCerts(t, s.Data["tls.crt"])
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	for _, n := range names {
		if _, err := certs[0].Verify(x509.VerifyOptions{DNSName: n, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("Secret %s: tls.crt does not verify for %q against ca.crt: %v", s.Name, n, err)
		}
	}
}

func (e *e2e) secret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := e.c.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func (e *e2e) certStatus(t *testing.T, ns, name string) map[string]any {
	t.Helper()
	u := obj(certificateGVK, ns, name, map[string]any{})
	if err := e.c.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	st, _, _ := unstructured.NestedMap(u.Object, "status")
	return st
}

const certsNS = "e2e-certs"

// issue: a Certificate like the providers' (self-signed issuer, service
// DNS names, one longer than a CN may be) becomes a Secret that verifies,
// and Ready.
func (e *e2e) issue(t *testing.T) {
	ctx := t.Context()
	e.namespace(t, certsNS)
	e.create(t, selfSigned(certsNS))
	w := e.secretEvents(t, certsNS)
	dns := []string{"webhook-service." + certsNS + ".svc", "webhook-service." + certsNS + ".svc.cluster.local", longName}
	start := time.Now()
	e.create(t, cert(certsNS, "serving-cert", map[string]any{
		"secretName":  "serving-cert-tls",
		"issuerRef":   map[string]any{"name": "selfsigned-issuer", "kind": "Issuer"},
		"dnsNames":    toAny(dns),
		"ipAddresses": toAny([]string{"10.96.0.99"}),
		"subject":     map[string]any{"organizations": toAny([]string{"capilab-e2e"})},
	}))
	seen := awaitSecrets(t, w, time.Minute, nil, "serving-cert-tls")
	figure(t, "Certificate created to Secret written (first, RSA 2048): %s", seen["serving-cert-tls"].Sub(start).Round(time.Millisecond))
	if err := e.c.ConditionTrue(ctx, kube.Wait{Name: "wait-certificate-ready", What: "Certificate serving-cert to be Ready", Timeout: time.Minute, Interval: 500 * time.Millisecond},
		certificateGVK, client.ObjectKey{Namespace: certsNS, Name: "serving-cert"}, "Ready"); err != nil {
		t.Fatal(err)
	}
	s := e.secret(t, certsNS, "serving-cert-tls")
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %s", s.Type)
	}
	verifyFor(t, s, append(dns, "10.96.0.99")...)
	if cn := leaf(t, s).Subject.CommonName; cn != "" {
		t.Errorf("CN %q: the CN must not be derived from a DNS name", cn)
	}
	st := e.certStatus(t, certsNS, "serving-cert")
	for _, f := range []string{"notBefore", "notAfter", "renewalTime"} {
		if v, _ := st[f].(string); v == "" {
			t.Errorf("status.%s missing (status %v)", f, st)
		}
	}
	// Over 64 characters is refused by the API (the CRD schema) already.
	err := e.c.Client.Create(ctx, cert(certsNS, "long-cn", map[string]any{
		"secretName": "long-cn-tls", "commonName": longName, "issuerRef": map[string]any{"name": "selfsigned-issuer"},
	}))
	if err == nil || !strings.Contains(err.Error(), "commonName") {
		t.Errorf("a commonName of %d characters was accepted: %v", len(longName), err)
	}
}

// issueBatch: many Certificates at once (throughput, RSA 2048 each).
func (e *e2e) issueBatch(t *testing.T) {
	const n = 20
	w := e.secretEvents(t, certsNS)
	var names []string
	start := time.Now()
	for i := range n {
		name := fmt.Sprintf("batch-%02d", i)
		names = append(names, name+"-tls")
		e.create(t, cert(certsNS, name, map[string]any{
			"secretName": name + "-tls",
			"issuerRef":  map[string]any{"name": "selfsigned-issuer"},
			"dnsNames":   toAny([]string{name + "." + certsNS + ".svc"}),
		}))
	}
	seen := awaitSecrets(t, w, 3*time.Minute, nil, names...)
	var lat []time.Duration
	for _, ts := range seen {
		lat = append(lat, ts.Sub(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	figure(t, "%d Certificates created back to back: all Secrets written after %s (first %s, median %s)", n,
		lat[len(lat)-1].Round(time.Millisecond), lat[0].Round(time.Millisecond), lat[len(lat)/2].Round(time.Millisecond))
}

const hooksNS = "e2e-hooks"

// served: a real HTTPS server using an issued Secret is called by the API
// server as validating and mutating webhook, CRD conversion webhook and
// aggregated API — reachable only through the injected CA bundles.
func (e *e2e) served(t *testing.T) {
	ctx := t.Context()
	e.namespace(t, hooksNS)
	svc := "e2e-server"
	from := map[string]any{certissuer.AnnotationInjectCAFrom: hooksNS + "/server"}
	vwc, mwc, control := "certissuer-e2e-"+e.id, "certissuer-e2e-"+e.id, "certissuer-e2e-control-"+e.id
	crdGroup, aggGroup := "crd.e2e.certissuer.capilab.local", "agg.e2e.certissuer.capilab.local"

	hook := func(name, path, label string) map[string]any {
		return map[string]any{
			"name":                    name,
			"admissionReviewVersions": toAny([]string{"v1"}),
			"sideEffects":             "None",
			"failurePolicy":           "Fail",
			"timeoutSeconds":          int64(5),
			"clientConfig":            map[string]any{"service": map[string]any{"namespace": hooksNS, "name": svc, "path": path, "port": int64(443)}},
			"rules":                   []any{map[string]any{"apiGroups": toAny([]string{""}), "apiVersions": toAny([]string{"v1"}), "operations": toAny([]string{"CREATE"}), "resources": toAny([]string{"configmaps"})}},
			"namespaceSelector":       map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": hooksNS}},
			"objectSelector":          map[string]any{"matchLabels": map[string]any{label: "yes"}},
		}
	}
	admission := func(kind string) schema.GroupVersionKind {
		return schema.GroupVersionKind{Group: "admissionregistration.k8s.io", Version: "v1", Kind: kind}
	}
	withAnnotations := func(u *unstructured.Unstructured, a map[string]any) *unstructured.Unstructured {
		m := map[string]string{}
		for k, v := range a {
			m[k] = v.(string)
		}
		u.SetAnnotations(m)
		return u
	}
	crdName := "widgets." + crdGroup
	openSchema := map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
	objs := []client.Object{
		selfSigned(hooksNS),
		// Short-lived, so the renewal step sees it renewed (every 30 s).
		cert(hooksNS, "server", map[string]any{
			"secretName": "server-tls",
			"issuerRef":  map[string]any{"name": "selfsigned-issuer"},
			"dnsNames":   toAny([]string{svc + "." + hooksNS + ".svc", svc + "." + hooksNS + ".svc.cluster.local"}),
			"duration":   "2m", "renewBefore": "90s",
			"privateKey": map[string]any{"algorithm": "ECDSA"},
		}),
		e.serverDeployment(svc),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: hooksNS, Name: svc}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": svc},
			Ports:    []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443)}},
		}},
		withAnnotations(obj(admission("ValidatingWebhookConfiguration"), "", vwc, map[string]any{"webhooks": []any{hook("validate.e2e.certissuer.capilab.local", "/validate", "certissuer-e2e")}}), from),
		withAnnotations(obj(admission("MutatingWebhookConfiguration"), "", mwc, map[string]any{"webhooks": []any{hook("mutate.e2e.certissuer.capilab.local", "/mutate", "certissuer-e2e")}}), from),
		// Control: the same server without injection; the API server must
		// refuse its certificate.
		obj(admission("ValidatingWebhookConfiguration"), "", control, map[string]any{"webhooks": []any{hook("control.e2e.certissuer.capilab.local", "/validate", "certissuer-e2e-control")}}),
		withAnnotations(obj(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, "", crdName, map[string]any{"spec": map[string]any{
			"group": crdGroup, "scope": "Namespaced",
			"names": map[string]any{"kind": "Widget", "listKind": "WidgetList", "plural": "widgets", "singular": "widget"},
			"versions": []any{
				map[string]any{"name": "v1", "served": true, "storage": true, "schema": openSchema},
				map[string]any{"name": "v2", "served": true, "storage": false, "schema": openSchema},
			},
			"conversion": map[string]any{"strategy": "Webhook", "webhook": map[string]any{
				"conversionReviewVersions": toAny([]string{"v1"}),
				"clientConfig":             map[string]any{"service": map[string]any{"namespace": hooksNS, "name": svc, "path": "/convert", "port": int64(443)}},
			}},
		}}), from),
		withAnnotations(obj(apiServiceGVK, "", "v1."+aggGroup, map[string]any{"spec": map[string]any{
			"group": aggGroup, "version": "v1", "groupPriorityMinimum": int64(1000), "versionPriority": int64(15),
			"service": map[string]any{"namespace": hooksNS, "name": svc, "port": int64(443)},
		}}), from),
	}
	t.Cleanup(func() {
		// The aggregated API first: with its server gone, discovery of the
		// whole cluster would report it unavailable.
		cctx := context.WithoutCancel(ctx)
		_ = e.c.Client.Delete(cctx, obj(apiServiceGVK, "", "v1."+aggGroup, map[string]any{}))
	})
	start := time.Now()
	e.create(t, objs...)
	if err := e.c.DeploymentsAvailable(ctx, kube.Wait{Name: "wait-e2e-server", What: "the test HTTPS server to be Available", Timeout: 3 * time.Minute, Interval: time.Second},
		hooksNS, client.MatchingLabels{"app": svc}, 1); err != nil {
		t.Fatal(err)
	}
	figure(t, "test server (waits for its issued Secret) Available after: %s", time.Since(start).Round(100*time.Millisecond))

	// Every caBundle holds the Secret's ca.crt.
	want := base64.StdEncoding.EncodeToString(e.secret(t, hooksNS, "server-tls").Data["ca.crt"])
	bundleOf := map[string]func(*unstructured.Unstructured) []string{
		"webhooks": func(u *unstructured.Unstructured) []string {
			hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
			var out []string
			for _, h := range hooks {
				b, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "caBundle")
				out = append(out, b)
			}
			return out
		},
		"crd": func(u *unstructured.Unstructured) []string {
			b, _, _ := unstructured.NestedString(u.Object, "spec", "conversion", "webhook", "clientConfig", "caBundle")
			return []string{b}
		},
		"apiservice": func(u *unstructured.Unstructured) []string {
			b, _, _ := unstructured.NestedString(u.Object, "spec", "caBundle")
			return []string{b}
		},
	}
	injected := []struct {
		gvk     schema.GroupVersionKind
		name    string
		bundles func(*unstructured.Unstructured) []string
	}{
		{admission("ValidatingWebhookConfiguration"), vwc, bundleOf["webhooks"]},
		{admission("MutatingWebhookConfiguration"), mwc, bundleOf["webhooks"]},
		{schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, crdName, bundleOf["crd"]},
		{apiServiceGVK, "v1." + aggGroup, bundleOf["apiservice"]},
	}
	checkInjected := func(ctx context.Context) (bool, string, error) {
		var pending []string
		for _, in := range injected {
			u := obj(in.gvk, "", in.name, map[string]any{})
			if err := e.c.Client.Get(ctx, client.ObjectKey{Name: in.name}, u); err != nil {
				return false, err.Error(), nil
			}
			for _, b := range in.bundles(u) {
				if b != want {
					pending = append(pending, in.gvk.Kind+" "+in.name)
				}
			}
		}
		if len(pending) > 0 {
			return false, "not injected: " + strings.Join(pending, ", "), nil
		}
		return true, "", nil
	}
	if err := e.wait("wait-ca-injected", "the CA bundle in every webhook configuration, CRD and APIService", time.Minute, checkInjected); err != nil {
		t.Fatal(err)
	}
	if u := obj(admission("ValidatingWebhookConfiguration"), "", control, map[string]any{}); e.c.Client.Get(ctx, client.ObjectKey{Name: control}, u) == nil {
		if b := bundleOf["webhooks"](u); b[0] != "" {
			t.Errorf("the control configuration (no annotation) got a caBundle")
		}
	}

	configMap := func(name, label string, data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: hooksNS, Name: name, Labels: map[string]string{label: "yes"}}, Data: data}
	}
	// Validating webhook: the API server calls it over TLS and passes its denial on.
	start = time.Now()
	if err := e.wait("wait-validating-webhook", "the validating webhook to deny a ConfigMap", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
		err := e.c.Client.Create(ctx, configMap("denied-"+randHex(t, 2), "certissuer-e2e", map[string]string{"deny": "1"}))
		switch {
		case err == nil:
			return false, "", errors.New("a ConfigMap the webhook denies was created: the webhook was not called")
		case strings.Contains(err.Error(), "denied by the certissuer e2e webhook"):
			return true, "", nil
		}
		return false, err.Error(), nil
	}); err != nil {
		t.Fatal(err)
	}
	figure(t, "validating webhook answered (TLS verified with the injected bundle) %s after the server was Available", time.Since(start).Round(100*time.Millisecond))
	// Mutating webhook: the ConfigMap comes back labelled.
	cm := configMap("allowed", "certissuer-e2e", map[string]string{"ok": "1"})
	if err := e.c.Client.Create(ctx, cm); err != nil {
		t.Fatalf("create ConfigMap through both webhooks: %v", err)
	}
	if cm.Labels["certissuer-e2e/mutated"] != "true" {
		t.Errorf("mutating webhook did not label the ConfigMap: %v", cm.Labels)
	}
	// Control: without the injected bundle the API server refuses the server.
	err := e.c.Client.Create(ctx, configMap("control", "certissuer-e2e-control", nil))
	if err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
		t.Errorf("webhook without injected CA bundle: want the API server to fail calling it, got %v", err)
	} else {
		t.Logf("control webhook (no caBundle) fails as it must: %v", err)
	}

	// Conversion webhook: create in v2 (stored as v1), read in v1 and v2.
	if err := e.c.ConditionTrue(ctx, kube.Wait{Name: "wait-crd-established", What: "the test CRD to be Established", Timeout: time.Minute, Interval: 500 * time.Millisecond},
		schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}, client.ObjectKey{Name: crdName}, "Established"); err != nil {
		t.Fatal(err)
	}
	widget := func(version string) *unstructured.Unstructured {
		return obj(schema.GroupVersionKind{Group: crdGroup, Version: version, Kind: "Widget"}, hooksNS, "w1", map[string]any{"spec": map[string]any{"size": int64(3)}})
	}
	if err := e.wait("wait-conversion-webhook", "a Widget created in v2 and read in v1 (conversion webhook)", time.Minute, func(ctx context.Context) (bool, string, error) {
		if err := e.c.Client.Create(ctx, widget("v2")); err != nil && !apierrors.IsAlreadyExists(err) {
			return false, err.Error(), nil
		}
		got := widget("v1")
		if err := e.c.Client.Get(ctx, client.ObjectKey{Namespace: hooksNS, Name: "w1"}, got); err != nil {
			return false, err.Error(), nil
		}
		return got.GetAPIVersion() == crdGroup+"/v1", "read as " + got.GetAPIVersion(), nil
	}); err != nil {
		t.Fatal(err)
	}

	// Aggregated API: Available only when the aggregator's TLS call to the
	// server succeeds with the injected bundle.
	start = time.Now()
	if err := e.c.ConditionTrue(ctx, kube.Wait{Name: "wait-apiservice-available", What: "the test APIService to be Available", Timeout: 2 * time.Minute, Interval: time.Second},
		apiServiceGVK, client.ObjectKey{Name: "v1." + aggGroup}, "Available"); err != nil {
		t.Fatal(err)
	}
	figure(t, "APIService Available after: %s", time.Since(start).Round(100*time.Millisecond))
	if _, err := e.c.Clientset.Discovery().ServerResourcesForGroupVersion(aggGroup + "/v1"); err != nil {
		t.Errorf("discovery through the aggregated API: %v", err)
	}
}

// serverDeployment runs the test server with the issued Secret mounted,
// Pod Security "restricted" compliant like everything in these namespaces.
func (e *e2e) serverDeployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: hooksNS, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            "server",
						Image:           prepared.serverImage,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Ports:           []corev1.ContainerPort{{Name: "https", ContainerPort: 8443}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/healthz", Port: intstr.FromInt32(8443), Scheme: corev1.URISchemeHTTPS}}, PeriodSeconds: 2},
						VolumeMounts: []corev1.VolumeMount{{Name: "tls", MountPath: "/tls", ReadOnly: true}},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							ReadOnlyRootFilesystem:   ptr.To(true),
						},
					}},
					Volumes: []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "server-tls"}}}},
				},
			},
		},
	}
}

// renewal: the server's 2-minute certificate renews 90 s before it ends, on
// time, with the CA bundle unchanged, and the webhooks keep working.
func (e *e2e) renewal(t *testing.T) {
	ctx := t.Context()
	st := e.certStatus(t, hooksNS, "server")
	rev0 := revisionOf(st)
	before := e.secret(t, hooksNS, "server-tls")
	renewal, err := time.Parse(time.RFC3339, fmt.Sprint(st["renewalTime"]))
	if err != nil {
		t.Fatalf("status.renewalTime %v: %v", st["renewalTime"], err)
	}
	w := e.secretEvents(t, hooksNS)
	seen := awaitSecrets(t, w, 2*time.Minute, map[string]string{"server-tls": serial(t, before)}, "server-tls")
	figure(t, "renewal written %s after status.renewalTime", seen["server-tls"].Sub(renewal).Round(10*time.Millisecond))
	// Not before its time (renewalTime has a one-second resolution); how
	// late is a figure, not an assertion.
	if seen["server-tls"].Before(renewal.Add(-time.Second)) {
		t.Errorf("renewed at %s, before status.renewalTime %s", seen["server-tls"].Format(time.RFC3339Nano), renewal.Format(time.RFC3339))
	}
	after := e.secret(t, hooksNS, "server-tls")
	if serial(t, after) == serial(t, before) {
		t.Fatal("not renewed")
	}
	if !bytes.Equal(before.Data["ca.crt"], after.Data["ca.crt"]) {
		t.Error("ca.crt changed on renewal")
	}
	// The status follows the Secret (written right after it).
	if err := e.wait("wait-revision", "status.revision of Certificate server to count the renewal", 30*time.Second, func(ctx context.Context) (bool, string, error) {
		rev := revisionOf(e.certStatus(t, hooksNS, "server"))
		return rev > rev0, fmt.Sprintf("revision %d, was %d", rev, rev0), nil
	}); err != nil {
		t.Error(err)
	}
	verifyFor(t, after, "e2e-server."+hooksNS+".svc")
	// The injected bundle is still right and the webhook still answers.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: hooksNS, Name: "after-renewal", Labels: map[string]string{"certissuer-e2e": "yes"}}, Data: map[string]string{"deny": "1"}}
	if err := e.c.Client.Create(ctx, cm); err == nil || !strings.Contains(err.Error(), "denied by the certissuer e2e webhook") {
		t.Errorf("webhook after renewal: %v", err)
	}
}

func revisionOf(st map[string]any) int64 {
	switch v := st["revision"].(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	n, _ := strconv.ParseInt(fmt.Sprint(st["revision"]), 10, 64)
	return n
}

// secretDeleted: a deleted Secret is issued again.
func (e *e2e) secretDeleted(t *testing.T) {
	before := e.secret(t, certsNS, "serving-cert-tls")
	w := e.secretEvents(t, certsNS)
	start := time.Now()
	if err := e.c.Client.Delete(t.Context(), before); err != nil {
		t.Fatal(err)
	}
	seen := awaitSecrets(t, w, time.Minute, map[string]string{"serving-cert-tls": serial(t, before)}, "serving-cert-tls")
	figure(t, "Secret deleted to Secret issued again: %s", seen["serving-cert-tls"].Sub(start).Round(time.Millisecond))
	after := e.secret(t, certsNS, "serving-cert-tls")
	if after.UID == before.UID {
		t.Error("same Secret UID")
	}
	verifyFor(t, after, longName)
}

// sanChanged: a DNS name added to the spec is in the next certificate.
func (e *e2e) sanChanged(t *testing.T) {
	ctx := t.Context()
	before := e.secret(t, certsNS, "serving-cert-tls")
	u := obj(certificateGVK, certsNS, "serving-cert", map[string]any{})
	if err := e.c.Client.Get(ctx, client.ObjectKey{Namespace: certsNS, Name: "serving-cert"}, u); err != nil {
		t.Fatal(err)
	}
	dns, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "dnsNames")
	dns = append(dns, "added.example.com")
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"dnsNames": dns}})
	w := e.secretEvents(t, certsNS)
	start := time.Now()
	if err := e.c.Client.Patch(ctx, u, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
	seen := awaitSecrets(t, w, time.Minute, map[string]string{"serving-cert-tls": serial(t, before)}, "serving-cert-tls")
	figure(t, "dnsNames changed to Secret re-issued: %s", seen["serving-cert-tls"].Sub(start).Round(time.Millisecond))
	verifyFor(t, e.secret(t, certsNS, "serving-cert-tls"), dns...)
}

// footprint: image size and the issuer's memory after the scenario.
func (e *e2e) footprint(t *testing.T) {
	ctx := t.Context()
	out, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Size}}", prepared.issuerImage).Output()
	if err != nil {
		t.Fatalf("docker image inspect: %v", err)
	}
	size, _ := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	figure(t, "issuer image %s: %.1f MB", prepared.issuerImage, float64(size)/1e6)

	// Memory: the process's resident set (now and peak) as the node's
	// kernel reports it, found through containerd's task list.
	var pods corev1.PodList
	if err := e.c.Client.List(ctx, &pods, client.InNamespace(certissuer.Namespace)); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 || len(pods.Items[0].Status.ContainerStatuses) != 1 {
		t.Fatalf("issuer pods: %d", len(pods.Items))
	}
	cs := pods.Items[0].Status.ContainerStatuses[0]
	figure(t, "issuer container restarts: %d", cs.RestartCount)
	id := strings.TrimPrefix(cs.ContainerID, "containerd://")
	node := e.name + "-control-plane"
	out, err = exec.CommandContext(ctx, "docker", "exec", node, "ctr", "--namespace", "k8s.io", "tasks", "ls").Output()
	if err != nil {
		t.Fatalf("ctr tasks ls: %v", err)
	}
	pid := ""
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == id {
			pid = f[1]
		}
	}
	if pid == "" {
		t.Fatalf("no task %s in:\n%s", id, out)
	}
	out, err = exec.CommandContext(ctx, "docker", "exec", node, "cat", "/proc/"+pid+"/status").Output()
	if err != nil {
		t.Fatalf("read /proc/%s/status: %v", pid, err)
	}
	mem := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "VmRSS" || k == "VmHWM") {
			mem[k] = strings.TrimSpace(v)
		}
	}
	if mem["VmRSS"] == "" {
		t.Fatalf("no VmRSS in /proc/%s/status", pid)
	}
	certs := &unstructured.UnstructuredList{}
	certs.SetGroupVersionKind(certificateGVK.GroupVersion().WithKind("CertificateList"))
	if err := e.c.Client.List(ctx, certs); err != nil {
		t.Fatal(err)
	}
	figure(t, "issuer memory with %d Certificates (/proc, kB = KiB): resident %s, peak %s", len(certs.Items), mem["VmRSS"], mem["VmHWM"])

	var events corev1.EventList
	if err := e.c.Client.List(ctx, &events, client.InNamespace(certsNS)); err == nil {
		issued := 0
		for _, ev := range events.Items {
			if ev.Reason == certissuer.ReasonIssued {
				issued++
			}
		}
		if issued == 0 {
			t.Errorf("no %s Events in %s", certissuer.ReasonIssued, certsNS)
		}
		figure(t, "Issued events in %s: %d", certsNS, issued)
	} else {
		t.Errorf("list events: %v", err)
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
