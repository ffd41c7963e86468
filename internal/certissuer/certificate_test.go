package certissuer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const longName = "capi-kubeadm-control-plane-webhook-service.capi-kubeadm-control-plane-system.svc.cluster.local"

func webhookCert(ns, name, secret string) *unstructured.Unstructured {
	return certificate(ns, name, map[string]any{
		"secretName":  secret,
		"issuerRef":   map[string]any{"name": "selfsigned-issuer", "kind": "Issuer"},
		"dnsNames":    anySlice("webhook-service."+ns+".svc", longName),
		"ipAddresses": anySlice("10.96.0.10"),
		"subject":     map[string]any{"organizations": anySlice("k8s-sig-cluster-lifecycle")},
		"privateKey":  ecdsaKey(),
	})
}

// ecdsaKey keeps tests quick: an RSA key costs up to a second on a loaded
// machine. The default (RSA 2048) is tested on its own.
func ecdsaKey() map[string]any { return map[string]any{"algorithm": "ECDSA"} }

// labCABundle is the lab CA's certificate as the lab CA Secret holds it.
func (f *fixture) labCABundle() []byte {
	f.t.Helper()
	s := f.secret(testNS, CASecretName)
	if s == nil {
		f.t.Fatal("no lab CA Secret")
	}
	return s.Data[KeyTLSCert]
}

func TestIssueSelfSignedIssuer(t *testing.T) {
	cert := webhookCert("capi-system", "serving-cert", "capi-webhook-service-cert")
	unstructured.RemoveNestedField(cert.Object, "spec", "privateKey") // the default key
	f := newFixture(t, selfSignedIssuer("capi-system", "selfsigned-issuer"), cert)
	res := f.reconcileCert("capi-system", "serving-cert")

	s := f.secret("capi-system", "capi-webhook-service-cert")
	if s == nil {
		t.Fatal("no Secret issued")
	}
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("type %s", s.Type)
	}
	for _, k := range []string{KeyTLSCert, KeyTLSKey, KeyCACert} {
		if len(s.Data[k]) == 0 {
			t.Errorf("%s empty", k)
		}
	}
	// Chain: tls.crt verifies against ca.crt for every DNS name and the IP.
	verify(t, s, "webhook-service.capi-system.svc", longName, "10.96.0.10")
	leaf := leafOf(t, s)
	if leaf.Subject.CommonName != "" {
		t.Errorf("CN %q: without spec.commonName the CN stays empty", leaf.Subject.CommonName)
	}
	if !slices.Equal(leaf.Subject.Organization, []string{"k8s-sig-cluster-lifecycle"}) {
		t.Errorf("organizations %v", leaf.Subject.Organization)
	}
	if len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != "10.96.0.10" {
		t.Errorf("IPs %v", leaf.IPAddresses)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	// ca.crt is the lab CA (stable across renewals), tls.crt the leaf alone.
	if !bytes.Equal(s.Data[KeyCACert], f.labCABundle()) {
		t.Error("ca.crt is not the lab CA")
	}
	if got := pemTypes(s.Data[KeyTLSCert]); len(got) != 1 {
		t.Errorf("tls.crt blocks %v, want the leaf only", got)
	}
	if got := pemTypes(s.Data[KeyTLSKey]); !slices.Equal(got, []string{"RSA PRIVATE KEY"}) {
		t.Errorf("tls.key blocks %v", got)
	}
	key, _, err := decodeKey(s.Data[KeyTLSKey])
	if err != nil || !publicKeysEqual(leaf.PublicKey, key.Public()) {
		t.Errorf("tls.key does not belong to tls.crt: %v", err)
	}
	if rk, ok := key.(*rsa.PrivateKey); !ok || rk.N.BitLen() != 2048 {
		t.Errorf("key %T, want RSA 2048", key)
	}
	// Lifetime and renewal: 90 days, renewal a third before the end.
	if leaf.NotBefore != t0 || leaf.NotAfter != t0.Add(DefaultDuration) {
		t.Errorf("validity %s - %s", leaf.NotBefore, leaf.NotAfter)
	}
	renewal := t0.Add(DefaultDuration * 2 / 3)
	if res.RequeueAfter != renewal.Sub(t0) {
		t.Errorf("requeue after %s, want %s (the renewal time)", res.RequeueAfter, renewal.Sub(t0))
	}
	// Secret metadata: owned by the Certificate, labelled for the cache.
	if ref := metav1.GetControllerOf(s); ref == nil || ref.Kind != "Certificate" || ref.Name != "serving-cert" || ref.UID != "uid-serving-cert" {
		t.Errorf("controller %v", ref)
	}
	if s.Labels[LabelManagedBy] != ManagedBy || s.Annotations[AnnotationCertificateName] != "serving-cert" || s.Annotations[AnnotationRevision] != "1" {
		t.Errorf("labels %v annotations %v", s.Labels, s.Annotations)
	}
	// Status: Ready and the times anything waiting on the Certificate reads.
	c := f.getCert("capi-system", "serving-cert")
	st, reason, msg := conditionStatus(c.Object, "Ready")
	if st != "True" || reason != ReasonReady || !strings.Contains(msg, "the lab CA") {
		t.Errorf("Ready %s %s %q", st, reason, msg)
	}
	for field, want := range map[string]string{
		"notBefore":   t0.Format(time.RFC3339),
		"notAfter":    t0.Add(DefaultDuration).Format(time.RFC3339),
		"renewalTime": renewal.Format(time.RFC3339),
	} {
		if got, _, _ := unstructured.NestedString(c.Object, "status", field); got != want {
			t.Errorf("status.%s %q, want %q", field, got, want)
		}
	}
	if rev, _, _ := unstructured.NestedInt64(c.Object, "status", "revision"); rev != 1 {
		t.Errorf("status.revision %d", rev)
	}
	if ev := f.events.all(); len(ev) != 1 || !strings.HasPrefix(ev[0], "Normal Issued") {
		t.Errorf("events %v", ev)
	}
}

func TestIssueIsIdempotent(t *testing.T) {
	f := newFixture(t, selfSignedIssuer("ns", "selfsigned-issuer"), webhookCert("ns", "c", "c-tls"))
	f.reconcileCert("ns", "c")
	f.takeWrites()
	for range 3 {
		f.reconcileCert("ns", "c")
	}
	if w := f.takeWrites(); len(w) != 0 {
		t.Fatalf("reconciling an up-to-date Certificate wrote %v", w)
	}
}

func TestCAIssuerChain(t *testing.T) {
	ctx := context.Background()
	// A root CA of the user's own (not the lab CA), in a Secret.
	rootPEM, rootKey, err := newCA(rand.Reader, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	userRoot := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "user-root"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{KeyTLSCert: rootPEM, KeyTLSKey: rootKey},
	}
	f := newFixture(t,
		selfSignedIssuer("ns", "selfsigned-issuer"),
		// The usual bootstrap: a CA Certificate from the self-signed issuer,
		// then a CA issuer signing with it.
		certificate("ns", "intermediate", map[string]any{
			"secretName": "intermediate-tls", "isCA": true, "commonName": "lab intermediate", "privateKey": ecdsaKey(),
			"issuerRef": map[string]any{"name": "selfsigned-issuer"},
		}),
		issuerObj(IssuerGVK, "ns", "from-intermediate", map[string]any{"ca": map[string]any{"secretName": "intermediate-tls"}}),
		certificate("ns", "leaf", map[string]any{
			"secretName": "leaf-tls", "dnsNames": anySlice("leaf.ns.svc"), "privateKey": ecdsaKey(),
			"issuerRef": map[string]any{"name": "from-intermediate"},
		}),
		userRoot,
		issuerObj(ClusterIssuerGVK, "", "user-root", map[string]any{"ca": map[string]any{"secretName": "user-root"}}),
		certificate("ns", "by-user-root", map[string]any{
			"secretName": "by-user-root-tls", "dnsNames": anySlice("x.ns.svc"), "privateKey": ecdsaKey(),
			"issuerRef": map[string]any{"name": "user-root", "kind": "ClusterIssuer"},
		}),
	)
	// The ClusterIssuer's Secret lives in the issuer's namespace.
	moved := userRoot.DeepCopy()
	moved.ResourceVersion, moved.Namespace = "", testNS
	if err := f.c.Create(ctx, moved); err != nil {
		t.Fatal(err)
	}

	// Before the intermediate is issued the CA issuer cannot sign.
	res := f.reconcileCert("ns", "leaf")
	if st, reason, _ := f.ready("ns", "leaf"); st != "False" || reason != ReasonIssuerNotReady || res.RequeueAfter != issuerRetry {
		t.Fatalf("leaf before its CA: Ready %s %s requeue %s", st, reason, res.RequeueAfter)
	}
	f.reconcileCert("ns", "intermediate")
	inter := f.secret("ns", "intermediate-tls")
	if il := leafOf(t, inter); !il.IsCA || il.Subject.CommonName != "lab intermediate" || il.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("intermediate: isCA %t CN %q usage %v", il.IsCA, il.Subject.CommonName, il.KeyUsage)
	}
	f.reconcileCert("ns", "leaf")
	leaf := f.secret("ns", "leaf-tls")
	// tls.crt = leaf + intermediate, ca.crt = the lab CA (the intermediate's ca.crt).
	if got := pemTypes(leaf.Data[KeyTLSCert]); len(got) != 2 {
		t.Errorf("tls.crt has %d certificates, want leaf and intermediate", len(got))
	}
	if !bytes.Equal(leaf.Data[KeyCACert], f.labCABundle()) {
		t.Error("ca.crt of a leaf under the intermediate is not the lab CA")
	}
	verify(t, leaf, "leaf.ns.svc")
	if err := leafOf(t, leaf).CheckSignatureFrom(leafOf(t, inter)); err != nil {
		t.Errorf("leaf not signed by the intermediate: %v", err)
	}

	// A ClusterIssuer with the user's root: ca.crt is that root.
	f.reconcileCert("ns", "by-user-root")
	byRoot := f.secret("ns", "by-user-root-tls")
	if !bytes.Equal(byRoot.Data[KeyCACert], rootPEM) {
		t.Error("ca.crt is not the CA issuer's root")
	}
	if got := pemTypes(byRoot.Data[KeyTLSCert]); len(got) != 1 {
		t.Errorf("tls.crt under a root CA has %d certificates, want 1", len(got))
	}
	verify(t, byRoot, "x.ns.svc")

	// Renewing the intermediate re-issues the leaves signed with it: the
	// Secret event maps to the Certificates of CA issuers using it.
	reqs := f.env.certificatesForSecret(ctx, inter)
	var names []string
	for _, r := range reqs {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"intermediate", "leaf"}) {
		t.Errorf("Secret %s maps to %v, want [intermediate leaf]", inter.Name, names)
	}
}

func TestKeyAlgorithms(t *testing.T) {
	tests := []struct {
		key      map[string]any
		wantPEM  string
		wantType func(any) bool
	}{
		{map[string]any{"algorithm": "RSA", "size": int64(3072), "encoding": "PKCS8"}, "PRIVATE KEY", func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 3072 }},
		{map[string]any{"algorithm": "ECDSA"}, "EC PRIVATE KEY", func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve.Params().BitSize == 256 }},
		{map[string]any{"algorithm": "ECDSA", "size": int64(384), "encoding": "PKCS8"}, "PRIVATE KEY", func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve.Params().BitSize == 384 }},
		{map[string]any{"algorithm": "Ed25519"}, "PRIVATE KEY", func(k any) bool { _, ok := k.(ed25519.PrivateKey); return ok }},
	}
	for _, tc := range tests {
		t.Run(describeKey(keySpec{Algorithm: tc.key["algorithm"].(string)})+"-"+tc.wantPEM, func(t *testing.T) {
			f := newFixture(t, selfSignedIssuer("ns", "i"), certificate("ns", "c", map[string]any{
				"secretName": "c-tls", "dnsNames": anySlice("c.ns.svc"), "issuerRef": map[string]any{"name": "i"}, "privateKey": tc.key,
			}))
			f.reconcileCert("ns", "c")
			s := f.secret("ns", "c-tls")
			if got := pemTypes(s.Data[KeyTLSKey]); !slices.Equal(got, []string{tc.wantPEM}) {
				t.Errorf("tls.key blocks %v, want %s", got, tc.wantPEM)
			}
			key, _, err := decodeKey(s.Data[KeyTLSKey])
			if err != nil || !tc.wantType(key) {
				t.Errorf("key %T (%v)", key, err)
			}
			verify(t, s, "c.ns.svc")
			f.takeWrites()
			f.reconcileCert("ns", "c")
			if w := f.takeWrites(); len(w) != 0 {
				t.Errorf("second reconcile wrote %v", w)
			}
		})
	}
}

func TestRenewal(t *testing.T) {
	f := newFixture(t, selfSignedIssuer("ns", "i"), certificate("ns", "c", map[string]any{
		"secretName": "c-tls", "dnsNames": anySlice("c.ns.svc"), "issuerRef": map[string]any{"name": "i"},
		"duration": "1h", "renewBefore": "20m", "privateKey": ecdsaKey(),
	}))
	res := f.reconcileCert("ns", "c")
	if res.RequeueAfter != 40*time.Minute {
		t.Fatalf("requeue after %s, want 40m", res.RequeueAfter)
	}
	first := f.secret("ns", "c-tls")
	f.takeWrites()

	// A second before the renewal time: nothing happens, requeue for the rest.
	f.clock.SetTime(t0.Add(40*time.Minute - time.Second))
	res = f.reconcileCert("ns", "c")
	if w := f.takeWrites(); len(w) != 0 {
		t.Fatalf("reconcile before the renewal time wrote %v", w)
	}
	if res.RequeueAfter != time.Second {
		t.Errorf("requeue after %s, want 1s", res.RequeueAfter)
	}

	// At the renewal time: a new certificate and key, revision 2.
	renewAt := t0.Add(40 * time.Minute)
	f.clock.SetTime(renewAt)
	res = f.reconcileCert("ns", "c")
	second := f.secret("ns", "c-tls")
	l1, l2 := leafOf(t, first), leafOf(t, second)
	if l1.SerialNumber.Cmp(l2.SerialNumber) == 0 {
		t.Fatal("not renewed: same serial")
	}
	if l2.NotBefore != renewAt || l2.NotAfter != renewAt.Add(time.Hour) {
		t.Errorf("renewed validity %s - %s", l2.NotBefore, l2.NotAfter)
	}
	if bytes.Equal(first.Data[KeyTLSKey], second.Data[KeyTLSKey]) {
		t.Error("rotationPolicy Always (default) kept the key")
	}
	if !bytes.Equal(first.Data[KeyCACert], second.Data[KeyCACert]) {
		t.Error("ca.crt changed on renewal: injected CA bundles would go stale")
	}
	if res.RequeueAfter != 40*time.Minute {
		t.Errorf("requeue after %s, want 40m", res.RequeueAfter)
	}
	c := f.getCert("ns", "c")
	if rev, _, _ := unstructured.NestedInt64(c.Object, "status", "revision"); rev != 2 {
		t.Errorf("revision %d, want 2", rev)
	}
	if rt, _, _ := unstructured.NestedString(c.Object, "status", "renewalTime"); rt != renewAt.Add(40*time.Minute).Format(time.RFC3339) {
		t.Errorf("renewalTime %s", rt)
	}
	verify(t, second, "c.ns.svc")
}

func TestReissue(t *testing.T) {
	ctx := context.Background()
	spec := func() map[string]any {
		return map[string]any{"secretName": "c-tls", "dnsNames": anySlice("a.ns.svc", "b.ns.svc"), "issuerRef": map[string]any{"name": "i"}, "privateKey": ecdsaKey()}
	}
	tests := []struct {
		name    string
		spec    map[string]any
		change  func(t *testing.T, f *fixture)
		reissue bool
		check   func(t *testing.T, f *fixture, before, after *corev1.Secret)
	}{
		{name: "nothing changed", change: func(*testing.T, *fixture) {}},
		{name: "Secret deleted", reissue: true, change: func(t *testing.T, f *fixture) {
			if err := f.c.Delete(ctx, f.secret("ns", "c-tls")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a DNS name added to the spec", reissue: true, change: func(t *testing.T, f *fixture) {
			c := f.getCert("ns", "c")
			_ = unstructured.SetNestedSlice(c.Object, anySlice("a.ns.svc", "b.ns.svc", "c.ns.svc"), "spec", "dnsNames")
			c.SetGeneration(2)
			if err := f.c.Update(ctx, c); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, f *fixture, _, after *corev1.Secret) {
			verify(t, after, "a.ns.svc", "b.ns.svc", "c.ns.svc")
		}},
		{name: "SANs in the Secret no longer match", reissue: true, change: func(t *testing.T, f *fixture) {
			// Overwrite tls.crt/tls.key with a valid lab-CA certificate for other names.
			ca, err := f.env.labCA(ctx)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := buildRequest(certificateSpec{SecretName: "c-tls", IssuerRef: issuerRef{Name: "i"}, DNSNames: []string{"a.ns.svc"}})
			key, _ := generateKey(rand.Reader, req.Key)
			certPEM, _, _ := issue(rand.Reader, req, key, ca, f.clock.Now())
			keyPEM, _ := encodeKey(key, EncPKCS1)
			s := f.secret("ns", "c-tls")
			s.Data[KeyTLSCert], s.Data[KeyTLSKey] = certPEM, keyPEM
			if err := f.c.Update(ctx, s); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, f *fixture, _, after *corev1.Secret) {
			verify(t, after, "a.ns.svc", "b.ns.svc")
		}},
		{name: "tls.key replaced by another key", reissue: true, change: func(t *testing.T, f *fixture) {
			key, _ := generateKey(rand.Reader, keySpec{Algorithm: AlgECDSA, Size: 256})
			keyPEM, _ := encodeKey(key, EncPKCS1)
			s := f.secret("ns", "c-tls")
			s.Data[KeyTLSKey] = keyPEM
			if err := f.c.Update(ctx, s); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "ca.crt emptied", reissue: true, change: func(t *testing.T, f *fixture) {
			s := f.secret("ns", "c-tls")
			delete(s.Data, KeyCACert)
			if err := f.c.Update(ctx, s); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "lab CA replaced (rotation by deleting its Secret)", reissue: true, change: func(t *testing.T, f *fixture) {
			if err := f.c.Delete(ctx, f.secret(testNS, CASecretName)); err != nil {
				t.Fatal(err)
			}
		}, check: func(t *testing.T, f *fixture, before, after *corev1.Secret) {
			if bytes.Equal(before.Data[KeyCACert], after.Data[KeyCACert]) {
				t.Error("ca.crt did not follow the new lab CA")
			}
			if !bytes.Equal(after.Data[KeyCACert], f.labCABundle()) {
				t.Error("ca.crt is not the new lab CA")
			}
		}},
		{name: "rotationPolicy Never keeps the key", reissue: true,
			spec:   map[string]any{"secretName": "c-tls", "dnsNames": anySlice("a.ns.svc", "b.ns.svc"), "issuerRef": map[string]any{"name": "i"}, "privateKey": map[string]any{"algorithm": "ECDSA", "rotationPolicy": "Never"}},
			change: func(t *testing.T, f *fixture) { f.clock.Step(DefaultDuration) },
			check: func(t *testing.T, f *fixture, before, after *corev1.Secret) {
				if !bytes.Equal(before.Data[KeyTLSKey], after.Data[KeyTLSKey]) {
					t.Error("rotationPolicy Never: key changed")
				}
			}},
		{name: "expired", reissue: true, change: func(t *testing.T, f *fixture) { f.clock.Step(DefaultDuration + time.Hour) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			if s == nil {
				s = spec()
			}
			f := newFixture(t, selfSignedIssuer("ns", "i"), certificate("ns", "c", s))
			f.reconcileCert("ns", "c")
			before := f.secret("ns", "c-tls")
			tc.change(t, f)
			f.takeWrites()
			f.reconcileCert("ns", "c")
			after := f.secret("ns", "c-tls")
			writes := f.takeWrites()
			secretWritten := slices.ContainsFunc(writes, func(w string) bool { return strings.Contains(w, "ns/c-tls") })
			if secretWritten != tc.reissue {
				t.Fatalf("Secret written: %t, want %t (writes %v)", secretWritten, tc.reissue, writes)
			}
			if !tc.reissue {
				if len(writes) != 0 {
					t.Fatalf("writes %v", writes)
				}
				return
			}
			if after == nil {
				t.Fatal("no Secret after re-issue")
			}
			if leafOf(t, before).SerialNumber.Cmp(leafOf(t, after).SerialNumber) == 0 {
				t.Error("same serial after re-issue")
			}
			verify(t, after, "a.ns.svc", "b.ns.svc")
			if tc.check != nil {
				tc.check(t, f, before, after)
			}
			if st, _, _ := f.ready("ns", "c"); st != "True" {
				t.Errorf("Ready %s after re-issue", st)
			}
		})
	}
}

func TestSecretOwnership(t *testing.T) {
	own := func(mutate func(*corev1.Secret)) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c-tls"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("old")}}
		mutate(s)
		return s
	}
	tests := []struct {
		name     string
		existing *corev1.Secret
		wantMsg  string // "" = adopted and issued
	}{
		{name: "pre-existing kubernetes.io/tls Secret is adopted", existing: own(func(*corev1.Secret) {})},
		{name: "Secret of another Certificate", existing: own(func(s *corev1.Secret) { s.Annotations = map[string]string{AnnotationCertificateName: "other"} }), wantMsg: "output of Certificate other"},
		{name: "Secret controlled by something else", existing: own(func(s *corev1.Secret) {
			s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "d", UID: "u", Controller: ptr.To(true)}}
		}), wantMsg: "controlled by Deployment d"},
		{name: "Opaque Secret", existing: own(func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque }), wantMsg: "of type Opaque"},
		{name: "the lab CA", existing: own(func(s *corev1.Secret) { s.Annotations = map[string]string{AnnotationLabCA: "true"} }), wantMsg: "holds the lab CA"},
		{name: "earlier incarnation of the same Certificate", existing: own(func(s *corev1.Secret) {
			s.Annotations = map[string]string{AnnotationCertificateName: "c"}
			s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "cert-manager.io/v1", Kind: "Certificate", Name: "c", UID: "old-uid", Controller: ptr.To(true)}}
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, selfSignedIssuer("ns", "i"), tc.existing, certificate("ns", "c", map[string]any{
				"secretName": "c-tls", "dnsNames": anySlice("c.ns.svc"), "issuerRef": map[string]any{"name": "i"}, "privateKey": ecdsaKey(),
			}))
			f.reconcileCert("ns", "c")
			st, reason, msg := f.ready("ns", "c")
			after := f.secret("ns", "c-tls")
			if tc.wantMsg != "" {
				if st != "False" || reason != ReasonSecretConflict || !strings.Contains(msg, tc.wantMsg) {
					t.Errorf("Ready %s %s %q, want False %s containing %q", st, reason, msg, ReasonSecretConflict, tc.wantMsg)
				}
				if string(after.Data["tls.crt"]) != "old" || after.Type != tc.existing.Type {
					t.Error("a Secret that is not the Certificate's was modified")
				}
				return
			}
			if st != "True" {
				t.Fatalf("Ready %s %s %q", st, reason, msg)
			}
			verify(t, after, "c.ns.svc")
			if refs := after.OwnerReferences; len(refs) != 1 || refs[0].UID != "uid-c" {
				t.Errorf("owner references %v, want the Certificate's only", refs)
			}
		})
	}
}

func TestNotIssued(t *testing.T) {
	tests := []struct {
		name       string
		objs       []client.Object
		spec       map[string]any
		wantReason string
		wantMsg    string
	}{
		{name: "issuer missing", spec: map[string]any{"secretName": "s", "dnsNames": anySlice("a"), "issuerRef": map[string]any{"name": "nope"}},
			wantReason: ReasonIssuerNotFound, wantMsg: "Issuer ns/nope not found"},
		{name: "cluster issuer missing", spec: map[string]any{"secretName": "s", "dnsNames": anySlice("a"), "issuerRef": map[string]any{"name": "nope", "kind": "ClusterIssuer"}},
			wantReason: ReasonIssuerNotFound, wantMsg: "ClusterIssuer nope not found"},
		{name: "unknown issuer kind", spec: map[string]any{"secretName": "s", "dnsNames": anySlice("a"), "issuerRef": map[string]any{"name": "x", "kind": "Vault"}},
			wantReason: ReasonInvalidSpec, wantMsg: "use Issuer or ClusterIssuer"},
		{name: "CN too long", objs: []client.Object{selfSignedIssuer("ns", "i")},
			spec:       map[string]any{"secretName": "s", "commonName": longName, "issuerRef": map[string]any{"name": "i"}},
			wantReason: ReasonInvalidSpec, wantMsg: "at most 64"},
		{name: "keystores", objs: []client.Object{selfSignedIssuer("ns", "i")},
			spec:       map[string]any{"secretName": "s", "dnsNames": anySlice("a"), "issuerRef": map[string]any{"name": "i"}, "keystores": map[string]any{"jks": map[string]any{}}},
			wantReason: ReasonUnsupported, wantMsg: "spec.keystores"},
		{name: "CA issuer without its Secret", objs: []client.Object{issuerObj(IssuerGVK, "ns", "ca", map[string]any{"ca": map[string]any{"secretName": "missing"}})},
			spec:       map[string]any{"secretName": "s", "dnsNames": anySlice("a"), "issuerRef": map[string]any{"name": "ca"}},
			wantReason: ReasonIssuerNotReady, wantMsg: "Secret ns/missing not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, append(tc.objs, certificate("ns", "c", tc.spec))...)
			f.reconcileCert("ns", "c")
			st, reason, msg := f.ready("ns", "c")
			if st != "False" || reason != tc.wantReason || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("Ready %s %s %q, want False %s containing %q", st, reason, msg, tc.wantReason, tc.wantMsg)
			}
			if f.secret("ns", "s") != nil {
				t.Error("a Secret was written")
			}
			f.takeWrites()
			f.reconcileCert("ns", "c")
			if w := f.takeWrites(); len(w) != 0 {
				t.Errorf("second reconcile wrote %v", w)
			}
		})
	}
}

func TestIssuerAppearsLater(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, certificate("ns", "c", map[string]any{"secretName": "c-tls", "dnsNames": anySlice("c.ns.svc"), "issuerRef": map[string]any{"name": "i"}, "privateKey": ecdsaKey()}))
	f.reconcileCert("ns", "c")
	if st, reason, _ := f.ready("ns", "c"); st != "False" || reason != ReasonIssuerNotFound {
		t.Fatalf("Ready %s %s", st, reason)
	}
	is := selfSignedIssuer("ns", "i")
	f.create(is)
	// The Issuer's event maps to the Certificate.
	reqs := f.env.certificatesForIssuer(ctx, is)
	if len(reqs) != 1 || reqs[0].Name != "c" {
		t.Fatalf("Issuer maps to %v", reqs)
	}
	f.reconcileCert("ns", "c")
	if st, _, _ := f.ready("ns", "c"); st != "True" {
		t.Fatalf("Ready %s after the Issuer appeared", st)
	}
	verify(t, f.secret("ns", "c-tls"), "c.ns.svc")
}

func TestLabCA(t *testing.T) {
	ctx := context.Background()
	t.Run("created once", func(t *testing.T) {
		f := newFixture(t)
		a, err := f.env.labCA(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.env.labCA(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Cert.Equal(b.Cert) {
			t.Error("second call made another CA")
		}
		if w := f.takeWrites(); len(w) != 1 {
			t.Errorf("writes %v, want one create", w)
		}
		if len(a.Cert.Subject.CommonName) > MaxCommonNameLen || !a.Cert.IsCA {
			t.Errorf("CA %q isCA %t", a.Cert.Subject.CommonName, a.Cert.IsCA)
		}
		// A fresh env (a restarted or new leader) uses the same CA.
		e2 := &env{client: f.c, apiReader: f.c, namespace: testNS, clock: f.clock, rand: rand.Reader, log: f.env.log}
		c, err := e2.labCA(ctx)
		if err != nil || !c.Cert.Equal(a.Cert) {
			t.Errorf("restarted issuer: another CA (%v)", err)
		}
	})
	t.Run("a Secret of that name not made by certissuer is left alone", func(t *testing.T) {
		f := newFixture(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: CASecretName}, Data: map[string][]byte{"x": []byte("y")}})
		if _, err := f.env.labCA(ctx); err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Fatalf("error %v", err)
		}
		if w := f.takeWrites(); len(w) != 0 {
			t.Errorf("writes %v", w)
		}
	})
	t.Run("replaced two thirds through its life", func(t *testing.T) {
		f := newFixture(t)
		a, _ := f.env.labCA(ctx)
		f.clock.Step(CALifetime*2/3 - time.Hour)
		b, _ := f.env.labCA(ctx)
		if !a.Cert.Equal(b.Cert) {
			t.Fatal("replaced too early")
		}
		f.clock.Step(2 * time.Hour)
		c, err := f.env.labCA(ctx)
		if err != nil || a.Cert.Equal(c.Cert) {
			t.Fatalf("not replaced (%v)", err)
		}
	})
}

func TestIssuerStatus(t *testing.T) {
	ctx := context.Background()
	rootPEM, rootKey, _ := newCA(rand.Reader, t0)
	f := newFixture(t,
		selfSignedIssuer("ns", "self"),
		issuerObj(IssuerGVK, "ns", "ca-ok", map[string]any{"ca": map[string]any{"secretName": "root"}}),
		issuerObj(IssuerGVK, "ns", "ca-missing", map[string]any{"ca": map[string]any{"secretName": "nope"}}),
		issuerObj(ClusterIssuerGVK, "", "acme", map[string]any{"acme": map[string]any{}}),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "root"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{KeyTLSCert: rootPEM, KeyTLSKey: rootKey}},
	)
	for _, tc := range []struct {
		issuer      *issuerReconciler
		ns, name    string
		want        string
		wantMsg     string
		wantRequeue bool
	}{
		{&issuerReconciler{env: f.env, gvk: IssuerGVK}, "ns", "self", "True", "lab CA", false},
		{&issuerReconciler{env: f.env, gvk: IssuerGVK}, "ns", "ca-ok", "True", "verified", false},
		{&issuerReconciler{env: f.env, gvk: IssuerGVK}, "ns", "ca-missing", "False", "not found", true},
		{&issuerReconciler{env: f.env, gvk: ClusterIssuerGVK}, "", "acme", "True", "does not implement", false},
	} {
		res, err := tc.issuer.Reconcile(ctx, reqFor(tc.ns, tc.name))
		if err != nil {
			t.Fatal(err)
		}
		obj := newObject(tc.issuer.gvk)
		if err := f.c.Get(ctx, client.ObjectKey{Namespace: tc.ns, Name: tc.name}, obj); err != nil {
			t.Fatal(err)
		}
		st, _, msg := conditionStatus(obj.Object, "Ready")
		if st != tc.want || !strings.Contains(msg, tc.wantMsg) || (res.RequeueAfter > 0) != tc.wantRequeue {
			t.Errorf("%s: Ready %s %q requeue %s", tc.name, st, msg, res.RequeueAfter)
		}
	}
}

// checkReasons covers check's one-line reasons that the reconcile tests do
// not reach.
func TestCheckReasons(t *testing.T) {
	ca, caKey, _ := newCA(rand.Reader, t0)
	s, err := loadSigner(map[string][]byte{KeyTLSCert: ca, KeyTLSKey: caKey}, "test CA")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := buildRequest(certificateSpec{SecretName: "s", IssuerRef: issuerRef{Name: "i"}, DNSNames: []string{"a"}, Subject: &subject{Organizations: []string{"o"}}})
	key, _ := generateKey(rand.Reader, req.Key)
	good := func(r request) map[string][]byte {
		c, _, err := issue(rand.Reader, r, key, s, t0)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := encodeKey(key, r.Key.Encoding)
		return map[string][]byte{KeyTLSCert: c, KeyTLSKey: k, KeyCACert: s.Bundle}
	}
	if why, _ := check(good(req), req, s, t0); why != "" {
		t.Fatalf("fresh certificate: %s", why)
	}
	mod := func(f func(*request)) request { r := req; f(&r); return r }
	tests := []struct {
		name string
		data map[string][]byte
		want string
	}{
		{"empty", map[string][]byte{}, "no certificate"},
		{"garbage", map[string][]byte{KeyTLSCert: []byte("x"), KeyTLSKey: []byte("y")}, "does not parse"},
		{"CN differs", good(mod(func(r *request) { r.CommonName = "x" })), "common name"},
		{"IP added", good(mod(func(r *request) { r.IPs = nil; r.DNSNames = []string{"a"}; r.Emails = []string{"a@b.c"} })), "email addresses differ"},
		{"subject differs", good(mod(func(r *request) { r.Subject = pkix.Name{} })), "subject"},
		{"isCA differs", good(mod(func(r *request) { r.IsCA = true; r.KeyUsage |= x509.KeyUsageCertSign })), "isCA"},
		{"usages differ", good(mod(func(r *request) { r.ExtKeyUsage = nil })), "key usages"},
		{"lifetime differs", good(mod(func(r *request) { r.Duration = time.Hour })), "lifetime"},
		{"encoding differs", func() map[string][]byte {
			d := good(req)
			d[KeyTLSKey], _ = encodeKey(key, EncPKCS8)
			return d
		}(), "PKCS8-encoded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if why, _ := check(tc.data, req, s, t0); !strings.Contains(why, tc.want) {
				t.Errorf("why %q, want it to contain %q", why, tc.want)
			}
		})
	}
}

// BenchmarkIssue measures what one issuance costs in CPU: a new key of
// each algorithm, the certificate signed by the lab CA, both PEM-encoded
// (API calls not included).
func BenchmarkIssue(b *testing.B) {
	certPEM, keyPEM, err := newCA(rand.Reader, t0)
	if err != nil {
		b.Fatal(err)
	}
	ca, err := loadSigner(map[string][]byte{KeyTLSCert: certPEM, KeyTLSKey: keyPEM}, "the lab CA")
	if err != nil {
		b.Fatal(err)
	}
	for _, alg := range []string{AlgRSA, AlgECDSA, AlgEd25519} {
		b.Run(alg, func(b *testing.B) {
			req, err := buildRequest(certificateSpec{SecretName: "s", IssuerRef: issuerRef{Name: "i"},
				DNSNames: []string{"svc.ns.svc", "svc.ns.svc.cluster.local"}, PrivateKey: &privateKey{Algorithm: alg}})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				key, err := generateKey(rand.Reader, req.Key)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := issue(rand.Reader, req, key, ca, t0); err != nil {
					b.Fatal(err)
				}
				if _, err := encodeKey(key, req.Key.Encoding); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
