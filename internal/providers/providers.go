// Package providers knows the Cluster API providers capilab installs into
// a management cluster — core, kubeadm bootstrap, kubeadm control plane,
// CAPO and the openstack-resource-controller (ORC) CAPO needs — at the
// versions pinned in manifests/versions.yaml, and where their components
// and images come from:
//
//   - upstream: the released components and images, as clusterctl normally
//     fetches them (GitHub releases, registry.k8s.io, quay.io); clusterctl
//     installs cert-manager itself;
//   - local: nothing needs a registry. The components are rendered from the
//     providers' own kustomize configurations in their Go modules (what
//     their release process does: the controller image set to its released
//     name, pull policy IfNotPresent) into a clusterctl local repository of
//     file:// providers, and the controller images are built from the same
//     modules (internal/modbuild) under their released names, so the
//     rendered components run unchanged once the images are loaded.
//
// ORC is always rendered from its module's dist/install.yaml (labelled as a
// clusterctl runtime-extension provider, as CAPO's own e2e suite installs
// it), so the clusterctl inventory lists it next to the four providers.
package providers

import (
	"fmt"
	"strings"

	"golang.org/x/mod/semver"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	clusterctlv1 "sigs.k8s.io/cluster-api/cmd/clusterctl/api/v1alpha3"

	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/versions"
)

// Source says where provider components and images come from.
type Source string

// Sources.
const (
	Upstream Source = "upstream"
	Local    Source = "local"
)

// Provider is one clusterctl provider at a pinned version.
type Provider struct {
	Name    string // clusterctl provider name: cluster-api, kubeadm, openstack, openstack-resource-controller
	Type    clusterctlv1.ProviderType
	Version string
	// Module holds the provider's configuration (and, in local mode, its
	// controller's source) at ModuleVersion.
	Module        string
	ModuleVersion string
	// ConfigDir is the kustomize directory of the components inside Module;
	// Manifest a ready manifest file instead (ORC).
	ConfigDir string
	Manifest  string
	// Metadata is clusterctl's metadata.yaml inside Module; empty means
	// capilab writes one (MetadataYAML).
	Metadata string
	// MetadataYAML is used when Metadata is empty.
	MetadataYAML string
	// Images are the controller images of the components.
	Images []Image
	// Labels are added to every object (ORC: the clusterctl provider label).
	Labels map[string]string
	// Upstream is the components URL clusterctl uses in upstream mode; ""
	// means clusterctl's built-in default for Name.
	UpstreamURL string
	// RenderedUpstream: the provider is rendered locally in upstream mode
	// too (ORC: no clusterctl-ready release exists); only its image comes
	// from the registry.
	RenderedUpstream bool
}

// Image is one controller image of a provider.
type Image struct {
	// Placeholder is the image name in the kustomize configuration, set to
	// Ref when rendering ("" when the configuration names Ref already).
	Placeholder string
	// Ref is the released image reference.
	Ref string
	// Program builds the controller binary for the local source.
	Program modbuild.Program
}

// Label is clusterctl's manifest label of the provider
// (Provider.ManifestLabel): cluster-api, bootstrap-kubeadm,
// control-plane-kubeadm, infrastructure-openstack, runtime-extension-….
func (p Provider) Label() string {
	return clusterctlv1.ManifestLabel(p.Name, p.Type)
}

// Arg is "name:version" as clusterctl init takes it.
func (p Provider) Arg() string { return p.Name + ":" + p.Version }

// Namespace is where clusterctl installs the provider's controller.
func (p Provider) Namespace() string {
	switch p.Type {
	case clusterctlv1.CoreProviderType:
		return "capi-system"
	case clusterctlv1.BootstrapProviderType:
		return "capi-kubeadm-bootstrap-system"
	case clusterctlv1.ControlPlaneProviderType:
		return "capi-kubeadm-control-plane-system"
	case clusterctlv1.InfrastructureProviderType:
		return "capo-system"
	}
	return "orc-system"
}

const (
	capiModule = "sigs.k8s.io/cluster-api"
	capoModule = "sigs.k8s.io/cluster-api-provider-openstack"
	orcModule  = "github.com/k-orc/openstack-resource-controller/v2"
)

// Pinned is the set capilab installs, in install order: ORC first (CAPO
// fails to start without its CRDs), then core, bootstrap, control plane
// and CAPO.
func Pinned(m versions.Management) ([]Provider, error) {
	for name, v := range map[string]string{"clusterAPI": m.ClusterAPI, "capo": m.CAPO, "orc": m.ORC} {
		if !semver.IsValid(v) || semver.Canonical(v) != v {
			return nil, fmt.Errorf("manifests/versions.yaml: management.%s %q is not a pinned version like v1.2.3", name, v)
		}
	}
	capiEdits := []modbuild.Edit{modbuild.NestedModule{Module: capiModule + "/api", Version: m.ClusterAPI, Dir: "api"}}
	capiLD := func() []string {
		return []string{"-X " + capiModule + "/version.gitVersion=" + m.ClusterAPI}
	}
	capi := func(name, pkg, image string) Image {
		return Image{
			Placeholder: "gcr.io/k8s-staging-cluster-api/" + image,
			Ref:         "registry.k8s.io/cluster-api/" + image + ":" + m.ClusterAPI,
			Program: modbuild.Program{Name: name, Module: capiModule, Version: m.ClusterAPI, Package: pkg,
				Edits: capiEdits, LDFlags: capiLD()},
		}
	}
	return []Provider{
		{
			Name: "openstack-resource-controller", Type: clusterctlv1.RuntimeExtensionProviderType, Version: m.ORC,
			Module: orcModule, ModuleVersion: m.ORC, Manifest: "dist/install.yaml",
			MetadataYAML:     orcMetadata(m.ORC),
			Labels:           map[string]string{clusterv1.ProviderNameLabel: clusterctlv1.ManifestLabel("openstack-resource-controller", clusterctlv1.RuntimeExtensionProviderType)},
			RenderedUpstream: true,
			Images: []Image{{Ref: "quay.io/orc/openstack-resource-controller:" + m.ORC,
				Program: modbuild.Program{Name: "orc-manager", Module: orcModule, Version: m.ORC, Package: "./cmd/manager",
					LDFlags: []string{"-X " + orcModule + "/internal/version.gitVersion=" + m.ORC}}}},
		},
		{
			Name: "cluster-api", Type: clusterctlv1.CoreProviderType, Version: m.ClusterAPI,
			Module: capiModule, ModuleVersion: m.ClusterAPI, ConfigDir: "core/config/default", Metadata: "metadata.yaml",
			Images: []Image{capi("capi-core", "./core", "cluster-api-controller")},
		},
		{
			Name: "kubeadm", Type: clusterctlv1.BootstrapProviderType, Version: m.ClusterAPI,
			Module: capiModule, ModuleVersion: m.ClusterAPI, ConfigDir: "bootstrap/kubeadm/config/default", Metadata: "metadata.yaml",
			Images: []Image{capi("capi-kubeadm-bootstrap", "./bootstrap/kubeadm", "kubeadm-bootstrap-controller")},
		},
		{
			Name: "kubeadm", Type: clusterctlv1.ControlPlaneProviderType, Version: m.ClusterAPI,
			Module: capiModule, ModuleVersion: m.ClusterAPI, ConfigDir: "controlplane/kubeadm/config/default", Metadata: "metadata.yaml",
			Images: []Image{capi("capi-kubeadm-control-plane", "./controlplane/kubeadm", "kubeadm-control-plane-controller")},
		},
		{
			Name: "openstack", Type: clusterctlv1.InfrastructureProviderType, Version: m.CAPO,
			Module: capoModule, ModuleVersion: m.CAPO, ConfigDir: "config/default", Metadata: "metadata.yaml",
			Images: []Image{{
				Placeholder: "gcr.io/k8s-staging-capi-openstack/capi-openstack-controller",
				Ref:         "registry.k8s.io/capi-openstack/capi-openstack-controller:" + m.CAPO,
				Program: modbuild.Program{Name: "capo-manager", Module: capoModule, Version: m.CAPO, Package: ".",
					// Only CAPO's tests import sigs.k8s.io/cluster-api/test, which the module proxy does not serve.
					Edits:   []modbuild.Edit{modbuild.DropRequire{Path: "sigs.k8s.io/cluster-api/test"}},
					LDFlags: []string{"-X " + capoModule + "/version.gitVersion=" + m.CAPO}},
			}},
		},
	}, nil
}

// orcMetadata is clusterctl's metadata for ORC, which ships none: its
// release series speaks the v1beta1 contract, like the CAPO that needs it.
func orcMetadata(version string) string {
	major, minor := majorMinor(version)
	return fmt.Sprintf("apiVersion: clusterctl.cluster.x-k8s.io/v1alpha3\nkind: Metadata\nreleaseSeries:\n- major: %s\n  minor: %s\n  contract: v1beta1\n", major, minor)
}

func majorMinor(v string) (string, string) {
	parts := strings.SplitN(strings.TrimPrefix(semver.MajorMinor(v), "v"), ".", 2)
	if len(parts) != 2 {
		return "0", "0"
	}
	return parts[0], parts[1]
}

// ImageRefs lists every controller image of the providers.
func ImageRefs(ps []Provider) []string {
	var out []string
	for _, p := range ps {
		for _, img := range p.Images {
			out = append(out, img.Ref)
		}
	}
	return out
}
