// Package versions reads manifests/versions.yaml, the one file where capilab
// pins the versions of everything it installs or builds (Go libraries are
// pinned by go.mod instead).
package versions

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/mod/semver"

	"github.com/capilab/capilab/manifests"
)

// Pinned is the content of versions.yaml.
type Pinned struct {
	Management   Management     `yaml:"management"`
	Workload     Workload       `yaml:"workload"`
	Addons       Addons         `yaml:"addons"`
	Sonobuoy     Sonobuoy       `yaml:"sonobuoy"`
	KindNode     KindNode       `yaml:"kindNode"`
	Remote       Remote         `yaml:"remote"`
	ImageCatalog []CatalogImage `yaml:"imageCatalog"`
}

// Management pins the kind management cluster and the Cluster API controllers.
type Management struct {
	Kubernetes    string `yaml:"kubernetes"`
	KindNodeImage string `yaml:"kindNodeImage"`
	ClusterAPI    string `yaml:"clusterAPI"`
	CAPO          string `yaml:"capo"`
	ORC           string `yaml:"orc"`
}

// Workload pins defaults of workload clusters.
type Workload struct {
	KubernetesDefault string `yaml:"kubernetesDefault"`
}

// Addons pins the addons deployed into workload clusters.
type Addons struct {
	Cilium        string `yaml:"cilium"`
	Calico        string `yaml:"calico"`
	OCCM          string `yaml:"occm"`
	CinderCSI     string `yaml:"cinderCSI"`
	MetricsServer string `yaml:"metricsServer"`
	IngressNginx  string `yaml:"ingressNginx"`
	CertManager   string `yaml:"certManager"`
	Flux          string `yaml:"flux"`
	GatewayAPI    string `yaml:"gatewayAPI"`
}

// Sonobuoy pins the conformance runner.
type Sonobuoy struct {
	Version string `yaml:"version"`
}

// KindNode pins what goes into the locally built kind node image.
type KindNode struct {
	Kubernetes  string `yaml:"kubernetes"`
	Etcd        string `yaml:"etcd"`
	CoreDNS     string `yaml:"coredns"`
	Pause       string `yaml:"pause"`
	Containerd  string `yaml:"containerd"`
	DebianSuite string `yaml:"debianSuite"`
	Tag         string `yaml:"tag"`
}

// Image is the name of the locally built node image.
func (k KindNode) Image() string { return "kindest/node:" + k.Tag }

// Remote pins what the remote management node (mgmt_mode remote) needs:
// OpenTofu and the OpenStack provider, built from their Go modules when no
// binary or registry is at hand, and the Go toolchain the node builds
// capilab with.
type Remote struct {
	OpenTofu          string            `yaml:"opentofu"`
	OpenStackProvider string            `yaml:"openstackProvider"`
	NodeGo            string            `yaml:"nodeGo"`
	NodeGoSHA256      map[string]string `yaml:"nodeGoSHA256"` // by GOARCH
}

// CatalogImage is one CAPI node image of the catalog.
type CatalogImage struct {
	Kubernetes  string `yaml:"kubernetes"`
	OSVersion   string `yaml:"osVersion"`
	URL         string `yaml:"url"`
	SHA256      string `yaml:"sha256"`
	ChecksumURL string `yaml:"checksumURL"`
}

// Load parses the embedded versions.yaml.
func Load() (*Pinned, error) { return Parse(manifests.Versions) }

// Parse parses a versions file strictly: unknown keys are errors, so a typo
// cannot silently fall back to a zero value.
func Parse(data []byte) (*Pinned, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Pinned
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("versions.yaml: %w", err)
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("versions.yaml: %w", err)
	}
	return &p, nil
}

func (p *Pinned) validate() error {
	var errs []error
	for name, v := range map[string]string{
		"management.kubernetes":    p.Management.Kubernetes,
		"management.clusterAPI":    p.Management.ClusterAPI,
		"management.capo":          p.Management.CAPO,
		"kindNode.kubernetes":      p.KindNode.Kubernetes,
		"kindNode.etcd":            p.KindNode.Etcd,
		"kindNode.coredns":         p.KindNode.CoreDNS,
		"kindNode.containerd":      p.KindNode.Containerd,
		"sonobuoy.version":         p.Sonobuoy.Version,
		"remote.opentofu":          p.Remote.OpenTofu,
		"remote.openstackProvider": p.Remote.OpenStackProvider,
	} {
		if !semver.IsValid(v) {
			errs = append(errs, fmt.Errorf("%s: %q is not a version like v1.2.3", name, v))
		}
	}
	if !strings.HasPrefix(p.Remote.NodeGo, "go") || !semver.IsValid("v"+strings.TrimPrefix(p.Remote.NodeGo, "go")) {
		errs = append(errs, fmt.Errorf("remote.nodeGo: %q is not a Go release like go1.2.3", p.Remote.NodeGo))
	}
	for _, arch := range []string{"amd64", "arm64"} {
		if sum := p.Remote.NodeGoSHA256[arch]; len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
			errs = append(errs, fmt.Errorf("remote.nodeGoSHA256.%s: %q is not a sha256 (64 lower-case hex digits)", arch, sum))
		}
	}
	for i, img := range p.ImageCatalog {
		if !semver.IsValid(img.Kubernetes) {
			errs = append(errs, fmt.Errorf("imageCatalog[%d].kubernetes: %q is not a version like v1.2.3", i, img.Kubernetes))
		}
		if img.URL == "" {
			errs = append(errs, fmt.Errorf("imageCatalog[%d] (%s): url is empty", i, img.Kubernetes))
		}
		if img.SHA256 == "" && img.ChecksumURL == "" {
			errs = append(errs, fmt.Errorf("imageCatalog[%d] (%s): needs sha256 or checksumURL", i, img.Kubernetes))
		}
	}
	return errors.Join(errs...)
}

// ResolveKubernetes turns a requested workload version (v1.2.3, 1.2.3 or
// v1.34.x) into a catalog entry. ".x" picks the newest patch of that minor.
func (p *Pinned) ResolveKubernetes(requested string) (CatalogImage, error) {
	v := requested
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	if minor, ok := strings.CutSuffix(v, ".x"); ok {
		if !semver.IsValid(minor) || semver.MajorMinor(minor) != minor {
			return CatalogImage{}, fmt.Errorf("kubernetes version %q: not a version like v1.2.3 or v1.2.x", requested)
		}
		var matches []CatalogImage
		for _, img := range p.ImageCatalog {
			if semver.MajorMinor(img.Kubernetes) == minor {
				matches = append(matches, img)
			}
		}
		if len(matches) == 0 {
			return CatalogImage{}, fmt.Errorf("kubernetes version %q: no %s.* image in the catalog (have %s)", requested, minor, strings.Join(p.CatalogVersions(), ", "))
		}
		sort.Slice(matches, func(i, j int) bool { return semver.Compare(matches[i].Kubernetes, matches[j].Kubernetes) > 0 })
		return matches[0], nil
	}
	if !semver.IsValid(v) || semver.Canonical(v) != v || semver.Prerelease(v) != "" {
		return CatalogImage{}, fmt.Errorf("kubernetes version %q: not a version like v1.2.3 or v1.2.x", requested)
	}
	for _, img := range p.ImageCatalog {
		if img.Kubernetes == v {
			return img, nil
		}
	}
	return CatalogImage{}, fmt.Errorf("kubernetes version %q: no image in the catalog (have %s)", requested, strings.Join(p.CatalogVersions(), ", "))
}

// CatalogVersions lists the Kubernetes versions the image catalog covers.
func (p *Pinned) CatalogVersions() []string {
	out := make([]string, 0, len(p.ImageCatalog))
	for _, img := range p.ImageCatalog {
		out = append(out, img.Kubernetes)
	}
	return out
}
