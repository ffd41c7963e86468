package certissuer

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
)

func TestBuildRequest(t *testing.T) {
	long := "capi-kubeadm-control-plane-webhook-service.capi-kubeadm-control-plane-system.svc.cluster.local"
	base := func() certificateSpec {
		return certificateSpec{SecretName: "s", IssuerRef: issuerRef{Name: "i"}, DNSNames: []string{"a.example"}}
	}
	tests := []struct {
		name    string
		mutate  func(*certificateSpec)
		wantErr string // substring; "" means valid
		check   func(t *testing.T, r request)
	}{
		{name: "defaults", check: func(t *testing.T, r request) {
			if r.Duration != DefaultDuration || r.RenewBefore != DefaultDuration/3 {
				t.Errorf("duration %s renewBefore %s", r.Duration, r.RenewBefore)
			}
			if r.Key != (keySpec{Algorithm: AlgRSA, Size: 2048, Encoding: EncPKCS1, Rotate: true}) {
				t.Errorf("key %+v", r.Key)
			}
			if r.Issuer != (issuerRef{Name: "i", Kind: "Issuer", Group: Group}) {
				t.Errorf("issuer %+v", r.Issuer)
			}
			if r.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment || len(r.ExtKeyUsage) != 2 {
				t.Errorf("usages %v %v", r.KeyUsage, r.ExtKeyUsage)
			}
		}},
		// The CN rule: only spec.commonName, at most 64 characters; long
		// names live in the SANs only.
		{name: "no commonName: empty CN even with long DNS names", mutate: func(s *certificateSpec) { s.DNSNames = []string{long, "b"} }, check: func(t *testing.T, r request) {
			if r.CommonName != "" {
				t.Errorf("CN %q, want empty", r.CommonName)
			}
			if len(r.DNSNames) != 2 {
				t.Errorf("DNS names %v", r.DNSNames)
			}
		}},
		{name: "commonName of 64 characters", mutate: func(s *certificateSpec) { s.CommonName = strings.Repeat("c", 64) }, check: func(t *testing.T, r request) {
			if len(r.CommonName) != 64 {
				t.Errorf("CN %q", r.CommonName)
			}
		}},
		{name: "commonName of 65 characters", mutate: func(s *certificateSpec) { s.CommonName = strings.Repeat("c", 65) }, wantErr: "at most 64"},
		{name: "commonName alone is enough", mutate: func(s *certificateSpec) { s.DNSNames = nil; s.CommonName = "webhook" }},
		{name: "no name at all", mutate: func(s *certificateSpec) { s.DNSNames = nil }, wantErr: "at least one of"},
		{name: "secretName required", mutate: func(s *certificateSpec) { s.SecretName = "" }, wantErr: "secretName is required"},
		{name: "issuerRef.name required", mutate: func(s *certificateSpec) { s.IssuerRef.Name = "" }, wantErr: "issuerRef.name is required"},
		{name: "bad IP", mutate: func(s *certificateSpec) { s.IPAddresses = []string{"10.0.0.300"} }, wantErr: "not an IP address"},
		{name: "bad DNS name", mutate: func(s *certificateSpec) { s.DNSNames = []string{"http://x"} }, wantErr: "not a DNS name"},
		{name: "bad URI", mutate: func(s *certificateSpec) { s.URIs = []string{"no-scheme"} }, wantErr: "not an absolute URI"},
		{name: "bad email", mutate: func(s *certificateSpec) { s.EmailAddresses = []string{"@@"} }, wantErr: "emailAddresses"},
		{name: "duplicate SANs collapse", mutate: func(s *certificateSpec) {
			s.DNSNames = []string{"b", "a", "b"}
			s.IPAddresses = []string{"10.0.0.1", "10.0.0.1"}
		}, check: func(t *testing.T, r request) {
			if strings.Join(r.DNSNames, ",") != "a,b" || len(r.IPs) != 1 {
				t.Errorf("DNS %v IPs %v", r.DNSNames, r.IPs)
			}
		}},
		{name: "duration and renewBefore", mutate: func(s *certificateSpec) { s.Duration = "2m"; s.RenewBefore = "90s" }, check: func(t *testing.T, r request) {
			if r.Duration != 2*time.Minute || r.RenewBefore != 90*time.Second {
				t.Errorf("%s %s", r.Duration, r.RenewBefore)
			}
		}},
		{name: "renewBeforePercentage", mutate: func(s *certificateSpec) { s.Duration = "100h"; s.RenewBeforePercentage = ptr.To[int32](25) }, check: func(t *testing.T, r request) {
			if r.RenewBefore != 25*time.Hour {
				t.Errorf("renewBefore %s", r.RenewBefore)
			}
		}},
		{name: "duration too short", mutate: func(s *certificateSpec) { s.Duration = "30s" }, wantErr: "shorter than 1m0s"},
		{name: "renewBefore not shorter than duration", mutate: func(s *certificateSpec) { s.Duration = "1h"; s.RenewBefore = "1h" }, wantErr: "shorter than spec.duration"},
		{name: "unparsable duration", mutate: func(s *certificateSpec) { s.Duration = "90d" }, wantErr: "spec.duration"},
		{name: "usages", mutate: func(s *certificateSpec) { s.Usages = []string{"server auth", "digital signature"} }, check: func(t *testing.T, r request) {
			if r.KeyUsage != x509.KeyUsageDigitalSignature || len(r.ExtKeyUsage) != 1 || r.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
				t.Errorf("%v %v", r.KeyUsage, r.ExtKeyUsage)
			}
		}},
		{name: "unknown usage", mutate: func(s *certificateSpec) { s.Usages = []string{"teleport"} }, wantErr: "unknown usage"},
		{name: "isCA may sign certificates", mutate: func(s *certificateSpec) { s.IsCA = true }, check: func(t *testing.T, r request) {
			if r.KeyUsage&x509.KeyUsageCertSign == 0 {
				t.Errorf("CA without cert sign: %v", r.KeyUsage)
			}
		}},
		{name: "ECDSA 384 PKCS8, rotation Never", mutate: func(s *certificateSpec) {
			s.PrivateKey = &privateKey{Algorithm: "ECDSA", Size: 384, Encoding: "PKCS8", RotationPolicy: "Never"}
		}, check: func(t *testing.T, r request) {
			if r.Key != (keySpec{Algorithm: AlgECDSA, Size: 384, Encoding: EncPKCS8}) {
				t.Errorf("%+v", r.Key)
			}
		}},
		{name: "ECDSA default size", mutate: func(s *certificateSpec) { s.PrivateKey = &privateKey{Algorithm: "ECDSA"} }, check: func(t *testing.T, r request) {
			if r.Key.Size != 256 {
				t.Errorf("%+v", r.Key)
			}
		}},
		{name: "Ed25519 is PKCS8", mutate: func(s *certificateSpec) { s.PrivateKey = &privateKey{Algorithm: "Ed25519", Encoding: "PKCS1"} }, check: func(t *testing.T, r request) {
			if r.Key.Encoding != EncPKCS8 {
				t.Errorf("%+v", r.Key)
			}
		}},
		{name: "RSA too small", mutate: func(s *certificateSpec) { s.PrivateKey = &privateKey{Algorithm: "RSA", Size: 1024} }, wantErr: "2048 to 8192"},
		{name: "ECDSA odd size", mutate: func(s *certificateSpec) { s.PrivateKey = &privateKey{Algorithm: "ECDSA", Size: 300} }, wantErr: "256, 384 or 521"},
		{name: "unknown algorithm", mutate: func(s *certificateSpec) { s.PrivateKey = &privateKey{Algorithm: "DSA"} }, wantErr: "use RSA, ECDSA or Ed25519"},
		{name: "unknown rotation policy", mutate: func(s *certificateSpec) { s.PrivateKey = &privateKey{RotationPolicy: "Sometimes"} }, wantErr: "rotationPolicy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := base()
			if tc.mutate != nil {
				tc.mutate(&spec)
			}
			r, err := buildRequest(spec)
			if tc.wantErr != "" {
				var se *specError
				if !errors.As(err, &se) || se.Reason != ReasonInvalidSpec || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want InvalidSpec containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestParseCertificateUnsupportedFields(t *testing.T) {
	for _, field := range unsupportedFields {
		t.Run(field, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
				"secretName": "s", "issuerRef": map[string]any{"name": "i"}, "dnsNames": anySlice("a"),
				field: map[string]any{"x": "y"},
			}}}
			_, err := parseCertificate(u)
			var se *specError
			if !errors.As(err, &se) || se.Reason != ReasonUnsupported || !strings.Contains(se.Msg, "spec."+field) {
				t.Fatalf("error %v, want Unsupported naming spec.%s", err, field)
			}
		})
	}
	// The fields clusterctl's check, CAPI and CAPO use parse.
	u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"secretName": "s", "issuerRef": map[string]any{"name": "i", "kind": "Issuer"},
		"dnsNames": anySlice("svc.ns.svc", "svc.ns.svc.cluster.local"),
		"subject":  map[string]any{"organizations": anySlice("k8s-sig-cluster-lifecycle")},
	}}}
	r, err := parseCertificate(u)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Subject.Organization) != 1 || len(r.DNSNames) != 2 {
		t.Fatalf("%+v", r)
	}
}
