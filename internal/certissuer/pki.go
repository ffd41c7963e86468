package certissuer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"
)

// Keys of a kubernetes.io/tls Secret written by the issuer.
const (
	KeyTLSCert = "tls.crt"
	KeyTLSKey  = "tls.key"
	KeyCACert  = "ca.crt"
)

// signer is what signs a Certificate: the lab CA or a CA issuer's key pair.
type signer struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain is appended to the leaf in tls.crt: the signing CA's own
	// certificate chain when it is not the trust anchor (empty for the lab CA).
	Chain []byte
	// Bundle is ca.crt: the trust anchor(s) a client needs.
	Bundle []byte
	// Desc says who signs, for status messages ("the lab CA", "CA issuer ns/x").
	Desc string
}

// generateKey makes a private key of the given spec.
func generateKey(rand io.Reader, k keySpec) (crypto.Signer, error) {
	switch k.Algorithm {
	case AlgRSA:
		return rsa.GenerateKey(rand, k.Size)
	case AlgECDSA:
		var c elliptic.Curve
		switch k.Size {
		case 256:
			c = elliptic.P256()
		case 384:
			c = elliptic.P384()
		case 521:
			c = elliptic.P521()
		default:
			return nil, fmt.Errorf("ECDSA size %d", k.Size)
		}
		return ecdsa.GenerateKey(c, rand)
	case AlgEd25519:
		_, priv, err := ed25519.GenerateKey(rand)
		return priv, err
	}
	return nil, fmt.Errorf("key algorithm %q", k.Algorithm)
}

// keyMatches reports whether key is of the spec's algorithm and size.
func keyMatches(key crypto.Signer, k keySpec) bool {
	switch key := key.(type) {
	case *rsa.PrivateKey:
		return k.Algorithm == AlgRSA && key.N.BitLen() == k.Size
	case *ecdsa.PrivateKey:
		return k.Algorithm == AlgECDSA && key.Curve.Params().BitSize == k.Size
	case ed25519.PrivateKey:
		return k.Algorithm == AlgEd25519
	}
	return false
}

// encodeKey writes key as PEM in the spec's encoding (PKCS#1 means the
// "RSA PRIVATE KEY" and "EC PRIVATE KEY" forms).
func encodeKey(key crypto.Signer, encoding string) ([]byte, error) {
	var block *pem.Block
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if encoding == EncPKCS1 {
			block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
		}
	case *ecdsa.PrivateKey:
		if encoding == EncPKCS1 {
			der, err := x509.MarshalECPrivateKey(k)
			if err != nil {
				return nil, err
			}
			block = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
		}
	}
	if block == nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	return pem.EncodeToMemory(block), nil
}

// decodeKey reads the first private key PEM block of data and says in which
// encoding it was.
func decodeKey(data []byte) (crypto.Signer, string, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, "", errors.New("no private key PEM block")
		}
		var (
			key any
			enc = EncPKCS1
			err error
		)
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
			enc = EncPKCS8
		default:
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("parse %s: %w", block.Type, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, "", fmt.Errorf("%T is not a signing key", key)
		}
		return s, enc, nil
	}
}

// decodeCerts parses every CERTIFICATE block of data.
func decodeCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate PEM block")
	}
	return out, nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func serialNumber(rand io.Reader) (*big.Int, error) {
	return randInt(rand, new(big.Int).Lsh(big.NewInt(1), 127))
}

func randInt(rand io.Reader, max *big.Int) (*big.Int, error) {
	b := make([]byte, (max.BitLen()+7)/8)
	if _, err := io.ReadFull(rand, b); err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(b)
	n.Mod(n, max)
	return n.Add(n, big.NewInt(1)), nil // never zero
}

// issue signs a certificate for req with key's public half. It returns the
// PEM of tls.crt (leaf, then the signer's chain) and the parsed leaf.
func issue(rand io.Reader, req request, key crypto.Signer, s signer, now time.Time) ([]byte, *x509.Certificate, error) {
	serial, err := serialNumber(rand)
	if err != nil {
		return nil, nil, err
	}
	subj := req.Subject
	subj.CommonName = req.CommonName
	notBefore := now.UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subj,
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(req.Duration),
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPs,
		URIs:                  req.URIs,
		EmailAddresses:        req.Emails,
		KeyUsage:              req.KeyUsage,
		ExtKeyUsage:           req.ExtKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  req.IsCA,
	}
	der, err := x509.CreateCertificate(rand, tmpl, s.Cert, key.Public(), s.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	out := append(encodeCert(der), s.Chain...)
	return out, leaf, nil
}

// caCommonName is the lab CA's CN: short, fixed, well under 64 characters.
const caCommonName = "capilab certissuer lab CA"

// CALifetime is the lab CA's validity. The issuer replaces the CA once two
// thirds of it have passed; every Certificate is then re-issued and every
// CA bundle re-injected.
const CALifetime = 10 * 365 * 24 * time.Hour

// newCA makes the lab CA: an ECDSA P-256 key and a self-signed certificate.
func newCA(rand io.Reader, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, nil, err
	}
	serial, err := serialNumber(rand)
	if err != nil {
		return nil, nil, err
	}
	notBefore := now.UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caCommonName, Organization: []string{"capilab"}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key, EncPKCS1)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// loadSigner reads a CA key pair from Secret data (tls.crt, tls.key and an
// optional ca.crt), as the lab CA's Secret and a CA issuer's Secret hold it.
func loadSigner(data map[string][]byte, desc string) (signer, error) {
	certs, err := decodeCerts(data[KeyTLSCert])
	if err != nil {
		return signer{}, fmt.Errorf("%s: tls.crt: %w", desc, err)
	}
	key, _, err := decodeKey(data[KeyTLSKey])
	if err != nil {
		return signer{}, fmt.Errorf("%s: tls.key: %w", desc, err)
	}
	ca := certs[0]
	if !ca.IsCA {
		return signer{}, fmt.Errorf("%s: tls.crt is not a CA certificate", desc)
	}
	if !publicKeysEqual(ca.PublicKey, key.Public()) {
		return signer{}, fmt.Errorf("%s: tls.key does not belong to tls.crt", desc)
	}
	s := signer{Cert: ca, Key: key, Desc: desc}
	selfSigned := bytes.Equal(ca.RawIssuer, ca.RawSubject) && ca.CheckSignatureFrom(ca) == nil
	if !selfSigned {
		s.Chain = data[KeyTLSCert]
	}
	switch {
	case len(bytes.TrimSpace(data[KeyCACert])) > 0:
		s.Bundle = data[KeyCACert]
	case selfSigned:
		s.Bundle = encodeCert(ca.Raw)
	default:
		// The root of the chain in tls.crt.
		s.Bundle = encodeCert(certs[len(certs)-1].Raw)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

// renewalTime is when a certificate valid until notAfter is renewed.
func renewalTime(notAfter time.Time, req request) time.Time {
	return notAfter.Add(-req.RenewBefore)
}

// issued is a parsed, checked Secret of a Certificate.
type issued struct {
	Leaf     *x509.Certificate
	Key      crypto.Signer
	Encoding string
}

// check compares the Secret data with what req and s ask for at time now.
// It returns "" when the Secret is valid, up to date and not yet due for
// renewal, and otherwise one line saying why it must be (re-)issued.
func check(data map[string][]byte, req request, s signer, now time.Time) (string, issued) {
	var got issued
	if len(data[KeyTLSCert]) == 0 || len(data[KeyTLSKey]) == 0 {
		return "the Secret holds no certificate", got
	}
	certs, err := decodeCerts(data[KeyTLSCert])
	if err != nil {
		return "tls.crt does not parse: " + err.Error(), got
	}
	got.Leaf = certs[0]
	got.Key, got.Encoding, err = decodeKey(data[KeyTLSKey])
	if err != nil {
		return "tls.key does not parse: " + err.Error(), got
	}
	leaf := got.Leaf
	if !publicKeysEqual(leaf.PublicKey, got.Key.Public()) {
		return "tls.key does not belong to tls.crt", got
	}
	if !keyMatches(got.Key, req.Key) {
		return fmt.Sprintf("the private key is not %s", describeKey(req.Key)), got
	}
	if got.Encoding != req.Key.Encoding {
		return fmt.Sprintf("the private key is %s-encoded, the spec asks for %s", got.Encoding, req.Key.Encoding), got
	}
	if err := leaf.CheckSignatureFrom(s.Cert); err != nil {
		return "the certificate is not signed by " + s.Desc, got
	}
	if !bytes.Equal(bytes.TrimSpace(data[KeyCACert]), bytes.TrimSpace(s.Bundle)) {
		return "ca.crt is not the CA bundle of " + s.Desc, got
	}
	if leaf.Subject.CommonName != req.CommonName {
		return fmt.Sprintf("common name is %q, the spec asks for %q", leaf.Subject.CommonName, req.CommonName), got
	}
	if d := diffSet("DNS names", leaf.DNSNames, req.DNSNames); d != "" {
		return d, got
	}
	if d := diffSet("IP addresses", ipStrings(leaf.IPAddresses), ipStrings(req.IPs)); d != "" {
		return d, got
	}
	if d := diffSet("URIs", uriStrings(leaf.URIs), uriStrings(req.URIs)); d != "" {
		return d, got
	}
	if d := diffSet("email addresses", leaf.EmailAddresses, req.Emails); d != "" {
		return d, got
	}
	if !subjectEqual(leaf.Subject, req.Subject) {
		return "the subject differs from spec.subject", got
	}
	if leaf.IsCA != req.IsCA {
		return fmt.Sprintf("isCA is %t, the spec asks for %t", leaf.IsCA, req.IsCA), got
	}
	if leaf.KeyUsage != req.KeyUsage || !slices.Equal(sortedEKU(leaf.ExtKeyUsage), req.ExtKeyUsage) {
		return "the key usages differ from spec.usages", got
	}
	if lifetime := leaf.NotAfter.Sub(leaf.NotBefore); lifetime != req.Duration {
		return fmt.Sprintf("the certificate's lifetime is %s, spec.duration is %s", lifetime, req.Duration), got
	}
	if !now.Before(leaf.NotAfter) {
		return "the certificate expired at " + leaf.NotAfter.UTC().Format(time.RFC3339), got
	}
	if rt := renewalTime(leaf.NotAfter, req); !now.Before(rt) {
		return "renewal is due since " + rt.UTC().Format(time.RFC3339), got
	}
	return "", got
}

func describeKey(k keySpec) string {
	if k.Algorithm == AlgEd25519 {
		return AlgEd25519
	}
	return fmt.Sprintf("%s %d", k.Algorithm, k.Size)
}

func diffSet(what string, have, want []string) string {
	h, w := sortedUnique(have), sortedUnique(want)
	if slices.Equal(h, w) {
		return ""
	}
	return fmt.Sprintf("%s differ: the certificate has [%s], the spec asks for [%s]", what, strings.Join(h, " "), strings.Join(w, " "))
}

func ipStrings[T interface{ String() string }](in []T) []string {
	out := make([]string, 0, len(in))
	for _, x := range in {
		out = append(out, x.String())
	}
	return out
}

func uriStrings[T interface{ String() string }](in []T) []string { return ipStrings(in) }

func sortedEKU(in []x509.ExtKeyUsage) []x509.ExtKeyUsage {
	out := slices.Clone(in)
	slices.Sort(out)
	return out
}

func subjectEqual(have, want pkix.Name) bool {
	eq := func(a, b []string) bool { return slices.Equal(sortedUnique(a), sortedUnique(b)) }
	return eq(have.Organization, want.Organization) &&
		eq(have.Country, want.Country) &&
		eq(have.OrganizationalUnit, want.OrganizationalUnit) &&
		eq(have.Locality, want.Locality) &&
		eq(have.Province, want.Province) &&
		eq(have.StreetAddress, want.StreetAddress) &&
		eq(have.PostalCode, want.PostalCode) &&
		have.SerialNumber == want.SerialNumber
}
