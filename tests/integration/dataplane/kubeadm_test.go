//go:build integration

package dataplane

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/blang/semver/v4"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	capicloudinit "sigs.k8s.io/cluster-api/bootstrap/kubeadm/pkg/cloudinit"
	"sigs.k8s.io/cluster-api/util/secret"

	"github.com/capilab/capilab/internal/dataplane/labnode"
	"github.com/capilab/capilab/internal/versions"
)

// kubeadmCluster makes the bootstrap data of a test cluster with Cluster
// API's own cloud-init generator (as its kubeadm bootstrap provider does),
// shaped as CAPO's templates are (jinja instance data in the node name and
// provider ID, cloud-provider external), plus the local-lab patch of
// package labnode. Nothing in it is specific to the data plane's agent.
type kubeadmCluster struct {
	name     string
	version  string // Kubernetes
	endpoint string // controlPlaneEndpoint host:port (the API load balancer's VIP)
	sans     []string
	podCIDR  string
	mirrors  map[string]string
	token    string
	certs    secret.Certificates
	caHash   string
}

func newKubeadmCluster(t *testing.T, name, endpoint string, sans []string, mirrors map[string]string) *kubeadmCluster {
	t.Helper()
	pins, err := versions.Load()
	if err != nil {
		t.Fatal(err)
	}
	certs := secret.NewCertificatesForInitialControlPlane(&bootstrapv1.ClusterConfiguration{})
	if err := certs.Generate(); err != nil {
		t.Fatal(err)
	}
	ca := certs.GetByPurpose(secret.ClusterCA)
	block, _ := pem.Decode(ca.KeyPair.Cert)
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(caCert.RawSubjectPublicKeyInfo)
	tok := make([]byte, 11)
	_, _ = rand.Read(tok)
	h := hex.EncodeToString(tok)
	return &kubeadmCluster{
		name: name, version: pins.KindNode.Kubernetes, endpoint: endpoint, sans: sans, podCIDR: "10.244.0.0/16",
		mirrors: mirrors, token: h[:6] + "." + h[6:22], certs: certs, caHash: "sha256:" + hex.EncodeToString(sum[:]),
	}
}

// nodeRegistration is CAPO's shape (jinja from the instance data) plus the
// local-lab patch.
func (c *kubeadmCluster) nodeRegistration() string {
	var b strings.Builder
	b.WriteString("nodeRegistration:\n")
	b.WriteString("  name: '{{ local_hostname }}'\n")
	fmt.Fprintf(&b, "  criSocket: %s\n", labnode.CRISocket)
	b.WriteString("  ignorePreflightErrors:\n")
	for _, e := range labnode.IgnorePreflightErrors {
		fmt.Fprintf(&b, "  - %s\n", e)
	}
	b.WriteString("  kubeletExtraArgs:\n")
	b.WriteString("  - name: cloud-provider\n    value: external\n")
	b.WriteString("  - name: provider-id\n    value: openstack:///'{{ instance_id }}'\n")
	b.WriteString(labnode.KubeletArgsYAML(labnode.KubeletExtraArgs, 2))
	return b.String()
}

func (c *kubeadmCluster) base(t *testing.T) capicloudinit.BaseUserData {
	files, err := labnode.Files(c.mirrors)
	if err != nil {
		t.Fatal(err)
	}
	var extra []bootstrapv1.File
	for _, f := range files {
		extra = append(extra, bootstrapv1.File{Path: f.Path, Content: f.Content, Owner: "root:root", Permissions: "0644"})
	}
	return capicloudinit.BaseUserData{
		AdditionalFiles:    extra,
		PreKubeadmCommands: labnode.PreKubeadmCommands(c.mirrors),
		KubeadmVerbosity:   "--v=2",
		KubernetesVersion:  semver.MustParse(strings.TrimPrefix(c.version, "v")),
	}
}

// initUserData is the first control plane's bootstrap data.
func (c *kubeadmCluster) initUserData(t *testing.T) []byte {
	t.Helper()
	base := c.base(t)
	// The node image's pod network, applied once the API server answers on
	// the node itself. `{{` must not appear: the data is a jinja template.
	base.PostKubeadmCommands = labnode.CNICommands(c.podCIDR, labnode.NodeIPCommand+":6443")
	var sans strings.Builder
	for _, s := range c.sans {
		fmt.Fprintf(&sans, "  - %q\n", s)
	}
	ud, err := capicloudinit.NewInitControlPlane(&capicloudinit.ControlPlaneInput{
		BaseUserData: base,
		Certificates: c.certs,
		ClusterConfiguration: fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: %s
kubernetesVersion: %s
controlPlaneEndpoint: %s
networking:
  podSubnet: %s
  serviceSubnet: 10.96.0.0/12
apiServer:
  certSANs:
%s`, c.name, c.version, c.endpoint, c.podCIDR, sans.String()),
		InitConfiguration: fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: %s
  ttl: 2h0m0s
%s`, c.token, c.nodeRegistration()),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ud
}

// workerUserData joins a worker through the control plane endpoint.
func (c *kubeadmCluster) workerUserData(t *testing.T) []byte {
	t.Helper()
	ud, err := capicloudinit.NewNode(&capicloudinit.NodeInput{
		BaseUserData: c.base(t),
		JoinConfiguration: fmt.Sprintf(`apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: %s
    token: %s
    caCertHashes:
    - %s
%s`, c.endpoint, c.token, c.caHash, c.nodeRegistration()),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ud
}

// client is an admin client of the cluster at server (https://host:port),
// with a client certificate signed by the cluster CA.
func (c *kubeadmCluster) client(t *testing.T, server string) *kubernetes.Clientset {
	t.Helper()
	cfg := c.restConfig(t, server)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func (c *kubeadmCluster) restConfig(t *testing.T, server string) *rest.Config {
	t.Helper()
	ca := c.certs.GetByPurpose(secret.ClusterCA)
	cb, _ := pem.Decode(ca.KeyPair.Cert)
	caCert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(ca.KeyPair.Key)
	caKey, err := x509.ParsePKCS1PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatalf("CA key: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "capilab-dataplane-test", Organization: []string{"system:masters"}},
		NotBefore:    time.Now().Add(-time.Minute), NotAfter: time.Now().Add(2 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &rest.Config{
		Host: server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   ca.KeyPair.Cert,
			CertData: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			KeyData:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		},
		Timeout: 15 * time.Second,
	}
}
