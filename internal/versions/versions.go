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
	Devcloud     Devcloud       `yaml:"devcloud"`
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

// Addons pins the addons deployed into workload clusters and where each
// comes from (internal/addons reads them).
type Addons struct {
	Helm                   Tool        `yaml:"helm"`
	Cilium                 AddonSource `yaml:"cilium"`
	Calico                 AddonSource `yaml:"calico"`
	CloudProviderOpenStack AddonSource `yaml:"cloudProviderOpenStack"`
	SnapshotController     AddonSource `yaml:"snapshotController"`
	MetricsServer          AddonSource `yaml:"metricsServer"`
	IngressNginx           AddonSource `yaml:"ingressNginx"`
	CertManager            AddonSource `yaml:"certManager"`
	Flux                   AddonSource `yaml:"flux"`
	GatewayAPI             AddonSource `yaml:"gatewayAPI"`
	LocalImages            LocalImages `yaml:"localImages"`
}

// Tool is a program built from its Go module at a version.
type Tool struct {
	Module  string `yaml:"module"`
	Version string `yaml:"version"`
}

// AddonSource is one addon's pinned version and its known releases, read
// from a Go module or downloaded from a URL.
type AddonSource struct {
	// Pin is the version deployed when the addon's setting is true (empty
	// for OCCM/Cinder CSI, whose release follows the cluster's minor).
	Pin string `yaml:"pin"`
	// Module is the Go module holding the manifests (module sources).
	Module string `yaml:"module"`
	// CRDModule is a second module with CRDs (the snapshot controller's).
	CRDModule string `yaml:"crdModule"`
	// URL is the download URL with {version} (download sources).
	URL      string         `yaml:"url"`
	Releases []AddonRelease `yaml:"releases"`
}

// AddonRelease is one known version of an addon with its checksums.
type AddonRelease struct {
	Version string `yaml:"version"`
	// Sum is the module's go.sum hash (h1:...), for module sources.
	Sum string `yaml:"sum"`
	// CRDSum is CRDModule's go.sum hash.
	CRDSum string `yaml:"crdSum"`
	// SHA256 is the download's checksum where known (download sources).
	SHA256 string `yaml:"sha256"`
}

// Release returns the release of that version, if it is known.
func (a AddonSource) Release(version string) (AddonRelease, bool) {
	for _, r := range a.Releases {
		if r.Version == version {
			return r, true
		}
	}
	return AddonRelease{}, false
}

// Versions lists the known releases' versions.
func (a AddonSource) Versions() []string {
	out := make([]string, 0, len(a.Releases))
	for _, r := range a.Releases {
		out = append(out, r.Version)
	}
	return out
}

// LocalImages pins how the local lab builds the images addon manifests name.
type LocalImages struct {
	CSIAttacher LocalImage `yaml:"csiAttacher"`
}

// LocalImage maps image tags the module proxy does not serve to the module
// version built instead.
type LocalImage struct {
	Substitute map[string]string `yaml:"substitute"`
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

// Devcloud pins what devcloud's data plane builds.
type Devcloud struct {
	Registry               string `yaml:"registry"`
	CloudProviderOpenStack string `yaml:"cloudProviderOpenStack"`
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
		"management.kubernetes":           p.Management.Kubernetes,
		"management.clusterAPI":           p.Management.ClusterAPI,
		"management.capo":                 p.Management.CAPO,
		"kindNode.kubernetes":             p.KindNode.Kubernetes,
		"kindNode.etcd":                   p.KindNode.Etcd,
		"kindNode.coredns":                p.KindNode.CoreDNS,
		"kindNode.containerd":             p.KindNode.Containerd,
		"sonobuoy.version":                p.Sonobuoy.Version,
		"remote.opentofu":                 p.Remote.OpenTofu,
		"remote.openstackProvider":        p.Remote.OpenStackProvider,
		"devcloud.registry":               p.Devcloud.Registry,
		"devcloud.cloudProviderOpenStack": p.Devcloud.CloudProviderOpenStack,
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
	errs = append(errs, p.Addons.validate()...)
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

func (a Addons) validate() []error {
	var errs []error
	for name, src := range map[string]AddonSource{
		"cilium": a.Cilium, "calico": a.Calico, "cloudProviderOpenStack": a.CloudProviderOpenStack,
		"snapshotController": a.SnapshotController, "metricsServer": a.MetricsServer, "ingressNginx": a.IngressNginx,
		"certManager": a.CertManager, "flux": a.Flux, "gatewayAPI": a.GatewayAPI,
	} {
		errs = append(errs, src.validate("addons."+name)...)
	}
	if a.Helm.Module == "" || !semver.IsValid(a.Helm.Version) {
		errs = append(errs, fmt.Errorf("addons.helm: needs a module and a version like v1.2.3"))
	}
	for tag, v := range a.LocalImages.CSIAttacher.Substitute {
		if !semver.IsValid(tag) || !semver.IsValid(v) {
			errs = append(errs, fmt.Errorf("addons.localImages.csiAttacher.substitute: %q: %q is not a version like v1.2.3", tag, v))
		}
	}
	return errs
}

func (a AddonSource) validate(path string) []error {
	var errs []error
	if (a.Module == "") == (a.URL == "") {
		errs = append(errs, fmt.Errorf("%s: needs exactly one of module and url", path))
	}
	if a.URL != "" && !strings.Contains(a.URL, "{version}") {
		errs = append(errs, fmt.Errorf("%s.url: %q has no {version}", path, a.URL))
	}
	if len(a.Releases) == 0 {
		errs = append(errs, fmt.Errorf("%s: no releases", path))
	}
	seen := map[string]bool{}
	for i, r := range a.Releases {
		switch {
		case !semver.IsValid(r.Version) || semver.Canonical(r.Version) != r.Version:
			errs = append(errs, fmt.Errorf("%s.releases[%d]: %q is not a version like v1.2.3", path, i, r.Version))
		case seen[r.Version]:
			errs = append(errs, fmt.Errorf("%s.releases[%d]: %s is listed twice", path, i, r.Version))
		}
		seen[r.Version] = true
		if a.Module != "" && !strings.HasPrefix(r.Sum, "h1:") {
			errs = append(errs, fmt.Errorf("%s.releases[%d] (%s): a module release needs its go.sum hash (sum: h1:...)", path, i, r.Version))
		}
		if a.CRDModule != "" && !strings.HasPrefix(r.CRDSum, "h1:") {
			errs = append(errs, fmt.Errorf("%s.releases[%d] (%s): needs crdSum (h1:...) of %s", path, i, r.Version, a.CRDModule))
		}
		if r.SHA256 != "" && (len(r.SHA256) != 64 || strings.Trim(r.SHA256, "0123456789abcdef") != "") {
			errs = append(errs, fmt.Errorf("%s.releases[%d] (%s): sha256 %q is not 64 lower-case hex digits", path, i, r.Version, r.SHA256))
		}
	}
	if a.Pin != "" && !seen[a.Pin] {
		errs = append(errs, fmt.Errorf("%s.pin: %s is not among its releases", path, a.Pin))
	}
	return errs
}
