package certissuer

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The cert-manager.io API the issuer serves (our own CRDs, see Manifests).
const (
	Group   = "cert-manager.io"
	Version = "v1"
)

// Kinds of the cert-manager.io group.
var (
	CertificateGVK   = schema.GroupVersionKind{Group: Group, Version: Version, Kind: "Certificate"}
	IssuerGVK        = schema.GroupVersionKind{Group: Group, Version: Version, Kind: "Issuer"}
	ClusterIssuerGVK = schema.GroupVersionKind{Group: Group, Version: Version, Kind: "ClusterIssuer"}
)

// Annotations read on injectable objects and written on issued Secrets. The
// names are cert-manager's, so manifests written for it work unchanged.
const (
	// AnnotationInjectCAFrom ("<namespace>/<certificate>") asks for the CA
	// bundle of that Certificate's Secret in the object's caBundle fields.
	AnnotationInjectCAFrom = "cert-manager.io/inject-ca-from"
	// AnnotationInjectCAFromSecret and AnnotationInjectAPIServerCA are
	// cert-manager's other injection sources. No manifest capilab installs
	// uses them; the issuer reports them as unsupported (a Warning Event and
	// a log line) instead of ignoring them.
	AnnotationInjectCAFromSecret = "cert-manager.io/inject-ca-from-secret"
	AnnotationInjectAPIServerCA  = "cert-manager.io/inject-apiserver-ca"

	AnnotationCertificateName = "cert-manager.io/certificate-name"
	AnnotationIssuerName      = "cert-manager.io/issuer-name"
	AnnotationIssuerKind      = "cert-manager.io/issuer-kind"
	AnnotationIssuerGroup     = "cert-manager.io/issuer-group"
	AnnotationCommonName      = "cert-manager.io/common-name"
	AnnotationAltNames        = "cert-manager.io/alt-names"
	AnnotationIPSANs          = "cert-manager.io/ip-sans"
	AnnotationURISANs         = "cert-manager.io/uri-sans"

	// AnnotationRevision counts the issuances into a Secret; the
	// Certificate's status.revision mirrors it.
	AnnotationRevision = "certissuer.capilab.local/revision"
	// AnnotationLabCA marks the Secret holding the lab CA.
	AnnotationLabCA = "certissuer.capilab.local/lab-ca"

	// LabelManagedBy=ManagedBy is on every Secret the issuer writes; the
	// issuer caches only Secrets carrying it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "capilab-certissuer"
)

// Defaults and limits of a Certificate.
const (
	DefaultDuration = 90 * 24 * time.Hour
	// MinDuration is far below cert-manager's one hour so tests can watch
	// renewals happen.
	MinDuration = time.Minute
	// MaxCommonNameLen is X.509's upper bound on a CN (ub-common-name, RFC 5280).
	MaxCommonNameLen = 64
)

// certificateSpec is the part of a Certificate's spec the issuer reads.
type certificateSpec struct {
	SecretName     string          `json:"secretName"`
	SecretTemplate *secretTemplate `json:"secretTemplate,omitempty"`
	IssuerRef      issuerRef       `json:"issuerRef"`
	CommonName     string          `json:"commonName,omitempty"`
	DNSNames       []string        `json:"dnsNames,omitempty"`
	IPAddresses    []string        `json:"ipAddresses,omitempty"`
	URIs           []string        `json:"uris,omitempty"`
	EmailAddresses []string        `json:"emailAddresses,omitempty"`
	Subject        *subject        `json:"subject,omitempty"`
	Duration       string          `json:"duration,omitempty"`
	RenewBefore    string          `json:"renewBefore,omitempty"`
	// RenewBeforePercentage: renew when this percentage of the lifetime is left.
	RenewBeforePercentage *int32      `json:"renewBeforePercentage,omitempty"`
	IsCA                  bool        `json:"isCA,omitempty"`
	Usages                []string    `json:"usages,omitempty"`
	PrivateKey            *privateKey `json:"privateKey,omitempty"`
}

type secretTemplate struct {
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

type issuerRef struct {
	Name  string `json:"name"`
	Kind  string `json:"kind,omitempty"`
	Group string `json:"group,omitempty"`
}

type subject struct {
	Organizations       []string `json:"organizations,omitempty"`
	Countries           []string `json:"countries,omitempty"`
	OrganizationalUnits []string `json:"organizationalUnits,omitempty"`
	Localities          []string `json:"localities,omitempty"`
	Provinces           []string `json:"provinces,omitempty"`
	StreetAddresses     []string `json:"streetAddresses,omitempty"`
	PostalCodes         []string `json:"postalCodes,omitempty"`
	SerialNumber        string   `json:"serialNumber,omitempty"`
}

type privateKey struct {
	Algorithm      string `json:"algorithm,omitempty"`
	Size           int    `json:"size,omitempty"`
	Encoding       string `json:"encoding,omitempty"`
	RotationPolicy string `json:"rotationPolicy,omitempty"`
}

// unsupportedFields are Certificate spec fields whose output the issuer does
// not produce. A Certificate using one is not issued (Ready=False,
// reason Unsupported): silently leaving out a keystore somebody asked for
// would be a fake success.
var unsupportedFields = []string{"literalSubject", "keystores", "additionalOutputFormats", "nameConstraints", "otherNames", "signatureAlgorithm"}

// Key algorithms and encodings.
const (
	AlgRSA     = "RSA"
	AlgECDSA   = "ECDSA"
	AlgEd25519 = "Ed25519"
	EncPKCS1   = "PKCS1"
	EncPKCS8   = "PKCS8"
)

// keySpec is a normalised privateKey.
type keySpec struct {
	Algorithm string // AlgRSA, AlgECDSA, AlgEd25519
	Size      int    // RSA bits or ECDSA curve size; 0 for Ed25519
	Encoding  string // EncPKCS1 or EncPKCS8
	Rotate    bool   // new key at every issuance (rotationPolicy Always, the default)
}

// request is a validated, normalised Certificate spec: what to issue.
type request struct {
	SecretName     string
	CommonName     string
	DNSNames       []string // sorted, unique
	IPs            []net.IP // sorted by string, unique
	URIs           []*url.URL
	Emails         []string
	Subject        pkix.Name // without CommonName
	Duration       time.Duration
	RenewBefore    time.Duration
	IsCA           bool
	KeyUsage       x509.KeyUsage
	ExtKeyUsage    []x509.ExtKeyUsage
	Key            keySpec
	Issuer         issuerRef // Kind and Group defaulted
	TemplateLabels map[string]string
	TemplateAnnos  map[string]string
}

// specError is a problem with a Certificate's spec: it is reported in the
// Ready condition and not retried until the spec changes.
type specError struct {
	Reason string // InvalidSpec or Unsupported
	Msg    string
}

func (e *specError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &specError{Reason: ReasonInvalidSpec, Msg: fmt.Sprintf(format, args...)}
}

// parseCertificate reads and validates a Certificate object's spec.
func parseCertificate(u *unstructured.Unstructured) (request, error) {
	raw, _, _ := unstructured.NestedMap(u.Object, "spec")
	var unsupported []string
	for _, f := range unsupportedFields {
		if v, ok := raw[f]; ok && v != nil {
			unsupported = append(unsupported, "spec."+f)
		}
	}
	if len(unsupported) > 0 {
		return request{}, &specError{Reason: ReasonUnsupported, Msg: fmt.Sprintf("%s not supported by capilab's certissuer (it writes tls.crt, tls.key and ca.crt only)", strings.Join(unsupported, ", "))}
	}
	data, err := json.Marshal(raw)
	if err != nil {
		return request{}, invalid("spec: %v", err)
	}
	var spec certificateSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return request{}, invalid("spec: %v", err)
	}
	return buildRequest(spec)
}

// buildRequest validates spec and fills in the defaults.
func buildRequest(spec certificateSpec) (request, error) {
	r := request{SecretName: spec.SecretName, IsCA: spec.IsCA}
	if spec.SecretName == "" {
		return r, invalid("spec.secretName is required")
	}
	if spec.IssuerRef.Name == "" {
		return r, invalid("spec.issuerRef.name is required")
	}
	r.Issuer = spec.IssuerRef
	if r.Issuer.Kind == "" {
		r.Issuer.Kind = IssuerGVK.Kind
	}
	if r.Issuer.Group == "" {
		r.Issuer.Group = Group
	}
	// The CN: only what the spec asks for, never derived from a DNS name
	// (service names easily pass the 64 characters X.509 allows).
	if n := len(spec.CommonName); n > MaxCommonNameLen {
		return r, invalid("spec.commonName is %d characters; X.509 allows at most %d: put the name in spec.dnsNames instead", n, MaxCommonNameLen)
	}
	r.CommonName = spec.CommonName
	r.DNSNames = sortedUnique(spec.DNSNames)
	for _, d := range r.DNSNames {
		if d == "" || strings.ContainsAny(d, " /:") {
			return r, invalid("spec.dnsNames: %q is not a DNS name", d)
		}
	}
	ips := sortedUnique(spec.IPAddresses)
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return r, invalid("spec.ipAddresses: %q is not an IP address", s)
		}
		r.IPs = append(r.IPs, ip)
	}
	for _, s := range sortedUnique(spec.URIs) {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" {
			return r, invalid("spec.uris: %q is not an absolute URI", s)
		}
		r.URIs = append(r.URIs, u)
	}
	r.Emails = sortedUnique(spec.EmailAddresses)
	for _, e := range r.Emails {
		if _, err := mail.ParseAddress(e); err != nil {
			return r, invalid("spec.emailAddresses: %q: %v", e, err)
		}
	}
	if r.CommonName == "" && len(r.DNSNames)+len(r.IPs)+len(r.URIs)+len(r.Emails) == 0 {
		return r, invalid("at least one of spec.commonName, spec.dnsNames, spec.ipAddresses, spec.uris or spec.emailAddresses is required")
	}
	if s := spec.Subject; s != nil {
		r.Subject = pkix.Name{
			Organization:       s.Organizations,
			Country:            s.Countries,
			OrganizationalUnit: s.OrganizationalUnits,
			Locality:           s.Localities,
			Province:           s.Provinces,
			StreetAddress:      s.StreetAddresses,
			PostalCode:         s.PostalCodes,
			SerialNumber:       s.SerialNumber,
		}
	}

	r.Duration = DefaultDuration
	if spec.Duration != "" {
		d, err := time.ParseDuration(spec.Duration)
		if err != nil {
			return r, invalid("spec.duration %q: %v", spec.Duration, err)
		}
		r.Duration = d
	}
	if r.Duration < MinDuration {
		return r, invalid("spec.duration %s is shorter than %s", r.Duration, MinDuration)
	}
	r.RenewBefore = r.Duration / 3
	switch {
	case spec.RenewBefore != "":
		d, err := time.ParseDuration(spec.RenewBefore)
		if err != nil {
			return r, invalid("spec.renewBefore %q: %v", spec.RenewBefore, err)
		}
		r.RenewBefore = d
	case spec.RenewBeforePercentage != nil:
		p := *spec.RenewBeforePercentage
		if p <= 0 || p >= 100 {
			return r, invalid("spec.renewBeforePercentage %d is not between 1 and 99", p)
		}
		r.RenewBefore = r.Duration * time.Duration(p) / 100
	}
	if r.RenewBefore <= 0 || r.RenewBefore >= r.Duration {
		return r, invalid("spec.renewBefore %s must be positive and shorter than spec.duration %s", r.RenewBefore, r.Duration)
	}

	ku, eku, err := parseUsages(spec.Usages, spec.IsCA)
	if err != nil {
		return r, err
	}
	r.KeyUsage, r.ExtKeyUsage = ku, eku

	r.Key, err = parseKey(spec.PrivateKey)
	if err != nil {
		return r, err
	}
	if t := spec.SecretTemplate; t != nil {
		r.TemplateLabels, r.TemplateAnnos = t.Labels, t.Annotations
	}
	return r, nil
}

func parseKey(pk *privateKey) (keySpec, error) {
	k := keySpec{Algorithm: AlgRSA, Encoding: EncPKCS1, Rotate: true}
	if pk == nil {
		pk = &privateKey{}
	}
	if pk.Algorithm != "" {
		k.Algorithm = pk.Algorithm
	}
	switch k.Algorithm {
	case AlgRSA:
		k.Size = 2048
		if pk.Size != 0 {
			k.Size = pk.Size
		}
		if k.Size < 2048 || k.Size > 8192 {
			return k, invalid("spec.privateKey.size %d: RSA keys are 2048 to 8192 bits", k.Size)
		}
	case AlgECDSA:
		k.Size = 256
		if pk.Size != 0 {
			k.Size = pk.Size
		}
		if k.Size != 256 && k.Size != 384 && k.Size != 521 {
			return k, invalid("spec.privateKey.size %d: ECDSA keys are 256, 384 or 521 bits", k.Size)
		}
	case AlgEd25519:
		k.Encoding = EncPKCS8 // Ed25519 has no PKCS#1 form
	default:
		return k, invalid("spec.privateKey.algorithm %q: use RSA, ECDSA or Ed25519", pk.Algorithm)
	}
	switch pk.Encoding {
	case "":
	case EncPKCS1, EncPKCS8:
		if k.Algorithm != AlgEd25519 {
			k.Encoding = pk.Encoding
		}
	default:
		return k, invalid("spec.privateKey.encoding %q: use PKCS1 or PKCS8", pk.Encoding)
	}
	switch pk.RotationPolicy {
	case "", "Always":
	case "Never":
		k.Rotate = false
	default:
		return k, invalid("spec.privateKey.rotationPolicy %q: use Always or Never", pk.RotationPolicy)
	}
	return k, nil
}

var keyUsages = map[string]x509.KeyUsage{
	"signing":            x509.KeyUsageDigitalSignature,
	"digital signature":  x509.KeyUsageDigitalSignature,
	"content commitment": x509.KeyUsageContentCommitment,
	"key encipherment":   x509.KeyUsageKeyEncipherment,
	"key agreement":      x509.KeyUsageKeyAgreement,
	"data encipherment":  x509.KeyUsageDataEncipherment,
	"cert sign":          x509.KeyUsageCertSign,
	"crl sign":           x509.KeyUsageCRLSign,
	"encipher only":      x509.KeyUsageEncipherOnly,
	"decipher only":      x509.KeyUsageDecipherOnly,
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	"any":              x509.ExtKeyUsageAny,
	"server auth":      x509.ExtKeyUsageServerAuth,
	"client auth":      x509.ExtKeyUsageClientAuth,
	"code signing":     x509.ExtKeyUsageCodeSigning,
	"email protection": x509.ExtKeyUsageEmailProtection,
	"s/mime":           x509.ExtKeyUsageEmailProtection,
	"ipsec end system": x509.ExtKeyUsageIPSECEndSystem,
	"ipsec tunnel":     x509.ExtKeyUsageIPSECTunnel,
	"ipsec user":       x509.ExtKeyUsageIPSECUser,
	"timestamping":     x509.ExtKeyUsageTimeStamping,
	"ocsp signing":     x509.ExtKeyUsageOCSPSigning,
	"microsoft sgc":    x509.ExtKeyUsageMicrosoftServerGatedCrypto,
	"netscape sgc":     x509.ExtKeyUsageNetscapeServerGatedCrypto,
}

// parseUsages maps spec.usages. Without usages a certificate may sign and
// encipher keys and serve as TLS server and client certificate; a CA may in
// addition sign certificates and CRLs.
func parseUsages(usages []string, isCA bool) (x509.KeyUsage, []x509.ExtKeyUsage, error) {
	var ku x509.KeyUsage
	var eku []x509.ExtKeyUsage
	if len(usages) == 0 {
		ku = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	for _, u := range usages {
		if k, ok := keyUsages[strings.ToLower(u)]; ok {
			ku |= k
			continue
		}
		if e, ok := extKeyUsages[strings.ToLower(u)]; ok {
			if !slices.Contains(eku, e) {
				eku = append(eku, e)
			}
			continue
		}
		return 0, nil, invalid("spec.usages: unknown usage %q", u)
	}
	if isCA {
		ku |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	slices.Sort(eku)
	return ku, eku, nil
}

func sortedUnique(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}
