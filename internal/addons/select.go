package addons

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/mod/semver"

	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/versions"
)

// Name names an addon.
type Name string

// The addons, in the order they are delivered and checked: the CNI first
// (nodes become Ready with it), then the cloud controller (it initialises
// the nodes), then the rest.
const (
	CNI           Name = "cni" // cilium, calico or, in the local lab, capilab's cni-agent
	OCCM          Name = "occm"
	CinderCSI     Name = "cinder-csi" // with the snapshot controller and its CRDs
	MetricsServer Name = "metrics-server"
	GatewayAPI    Name = "gateway-api" // the standard-channel CRDs
	IngressNginx  Name = "ingress-nginx"
	CertManager   Name = "cert-manager"
	Flux          Name = "flux"
)

// Order lists every addon in delivery order.
var Order = []Name{CNI, OCCM, CinderCSI, MetricsServer, GatewayAPI, IngressNginx, CertManager, Flux}

// The CNI variants.
const (
	Cilium   = "cilium"
	Calico   = "calico"
	CNIAgent = "cni-agent" // capilab's own, preloaded in the local node image
)

// Addon is one selected addon at a resolved version.
type Addon struct {
	Name Name
	// Variant is the CNI's implementation (Cilium, Calico, CNIAgent).
	Variant string
	// Version is the release deployed; empty for the cni-agent, which the
	// node image carries.
	Version string
	// Why says how the version was chosen (pinned, set, nearest release).
	Why string
	// LocalLab: rendered for the local lab (images built here, manifests
	// adjusted where a part cannot be built; docs/addons.md).
	LocalLab bool
}

func (a Addon) String() string {
	s := string(a.Name)
	if a.Variant != "" {
		s += " (" + a.Variant + ")"
	}
	if a.Version != "" {
		s += " " + a.Version
	}
	return s
}

// Settings are the settings addon selection reads; FromConfig copies them
// out of the effective settings. A deploy_* value is true, false or a
// version that overrides the pin.
type Settings struct {
	CNI, CNIVersion    string
	DeployMetrics      string
	DeployNginxIngress string
	DeployGatewayAPI   string
	DeployCertManager  string
	DeployFlux         string
	DeployOCCM         string
	DeployCinderCSI    string
}

// FromConfig takes the addon settings out of the effective settings.
func FromConfig(s *config.Settings) Settings {
	return Settings{
		CNI: s.CNI, CNIVersion: s.CNIVersion,
		DeployMetrics: s.DeployMetrics, DeployNginxIngress: s.DeployNginxIngress, DeployGatewayAPI: s.DeployGatewayAPI,
		DeployCertManager: s.DeployCertManager, DeployFlux: s.DeployFlux, DeployOCCM: s.DeployOCCM, DeployCinderCSI: s.DeployCinderCSI,
	}
}

// toggle is one deploy_* setting.
type toggle struct {
	key   string // the setting's name
	name  Name
	value string
	src   func(p versions.Addons) versions.AddonSource
}

func (s Settings) toggles() []toggle {
	cpo := func(p versions.Addons) versions.AddonSource { return p.CloudProviderOpenStack }
	return []toggle{
		{"deploy_occm", OCCM, s.DeployOCCM, cpo},
		{"deploy_cindercsi", CinderCSI, s.DeployCinderCSI, cpo},
		{"deploy_metrics", MetricsServer, s.DeployMetrics, func(p versions.Addons) versions.AddonSource { return p.MetricsServer }},
		{"deploy_gateway_api", GatewayAPI, s.DeployGatewayAPI, func(p versions.Addons) versions.AddonSource { return p.GatewayAPI }},
		{"deploy_nginx_ingress", IngressNginx, s.DeployNginxIngress, func(p versions.Addons) versions.AddonSource { return p.IngressNginx }},
		{"deploy_cert_manager", CertManager, s.DeployCertManager, func(p versions.Addons) versions.AddonSource { return p.CertManager }},
		{"deploy_flux", Flux, s.DeployFlux, func(p versions.Addons) versions.AddonSource { return p.Flux }},
	}
}

func cniSource(p versions.Addons, cni string) (versions.AddonSource, bool) {
	switch cni {
	case Cilium:
		return p.Cilium, true
	case Calico:
		return p.Calico, true
	}
	return versions.AddonSource{}, false
}

// Validate checks the addon settings against the pinned releases: every
// deploy_* value is true, false or a version capilab knows a source for,
// the CNI is cilium or calico and cni_version one of its releases. It
// returns one error per problem (errors.Join), each one line naming the
// setting; the caller exits with the bad-input code before anything is
// created. It makes no network call.
func Validate(p versions.Addons, s Settings) error {
	var errs []error
	for _, t := range s.toggles() {
		switch t.value {
		case "true", "false":
			continue
		}
		if err := knownVersion(t.src(p), t.name, t.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.key, err))
		}
	}
	src, ok := cniSource(p, s.CNI)
	switch {
	case !ok:
		errs = append(errs, fmt.Errorf("cni: %q is not cilium or calico", s.CNI))
	case s.CNIVersion != "":
		if err := knownVersion(src, Name(s.CNI), s.CNIVersion); err != nil {
			errs = append(errs, fmt.Errorf("cni_version: %w", err))
		}
	}
	return errors.Join(errs...)
}

func knownVersion(src versions.AddonSource, name Name, v string) error {
	if !semver.IsValid(v) {
		return fmt.Errorf("%q is not true, false or a version like v1.2.3", v)
	}
	if _, ok := src.Release(v); ok {
		return nil
	}
	return fmt.Errorf("%s %s is not a version capilab knows a source for (known: %s; add the release with its checksum to manifests/versions.yaml)",
		name, v, strings.Join(src.Versions(), ", "))
}

// Request is what selection needs besides the settings.
type Request struct {
	Settings Settings
	// KubernetesVersion is the cluster's (v1.M.P): OCCM and Cinder CSI
	// follow its minor.
	KubernetesVersion string
	// LocalLab: the cluster runs in the local lab (devcloud + data plane),
	// whose nodes pull only images built on this machine.
	LocalLab bool
}

// Selection is the addons to deploy and the lines to log about the choice.
type Selection struct {
	Addons []Addon
	// Notes say, one line each, what was turned off or chosen instead and
	// why (the caller logs them).
	Notes []string
}

// Find returns the selected addon of that name.
func (s Selection) Find(n Name) (Addon, bool) {
	for _, a := range s.Addons {
		if a.Name == n {
			return a, true
		}
	}
	return Addon{}, false
}

// offLocally are the addons the local lab cannot have: their images are
// neither built from Go modules here nor served by the lab's mirror.
var offLocally = map[Name]string{
	IngressNginx: "its controller image (nginx) cannot be built here from Go modules",
	CertManager:  "its images are not built here (only a download of its release manifest exists)",
	Flux:         "its controller images are not built here (only a download of its release manifest exists)",
}

// Select resolves the settings into the addons to deploy, in delivery order.
// It validates first (the same errors as Validate).
func Select(p versions.Addons, req Request) (Selection, error) {
	if err := Validate(p, req.Settings); err != nil {
		return Selection{}, err
	}
	var sel Selection
	note := func(format string, args ...any) { sel.Notes = append(sel.Notes, fmt.Sprintf(format, args...)) }

	// The CNI is not optional: a cluster without one never has Ready nodes.
	cniSrc, _ := cniSource(p, req.Settings.CNI)
	cniVersion, why := cniSrc.Pin, "pinned"
	if req.Settings.CNIVersion != "" {
		cniVersion, why = req.Settings.CNIVersion, "set by cni_version"
	}
	if req.LocalLab {
		note("local lab: capilab's cni-agent (preloaded in the node image) stands in for %s %s, whose images the lab cannot build", req.Settings.CNI, cniVersion)
		sel.Addons = append(sel.Addons, Addon{Name: CNI, Variant: CNIAgent, Why: "local lab", LocalLab: true})
	} else {
		sel.Addons = append(sel.Addons, Addon{Name: CNI, Variant: req.Settings.CNI, Version: cniVersion, Why: why})
	}

	for _, t := range req.Settings.toggles() {
		if t.value == "false" {
			continue
		}
		if why, off := offLocally[t.name]; off && req.LocalLab {
			note("local lab: %s is off (%s=%s): %s", t.name, t.key, t.value, why)
			continue
		}
		a := Addon{Name: t.name, LocalLab: req.LocalLab}
		src := t.src(p)
		switch {
		case t.value != "true":
			a.Version, a.Why = t.value, "set by "+t.key
		case src.Pin != "":
			a.Version, a.Why = src.Pin, "pinned"
		default: // OCCM and Cinder CSI follow the cluster's minor
			v, why, err := forMinor(src, req.KubernetesVersion)
			if err != nil {
				return Selection{}, fmt.Errorf("%s: %w", t.name, err)
			}
			a.Version, a.Why = v, why
			note("%s %s: %s", t.name, v, why)
		}
		sel.Addons = append(sel.Addons, a)
	}
	sortByOrder(sel.Addons)
	return sel, nil
}

// forMinor picks the release for a Kubernetes version: the newest release
// of the same minor, else the nearest minor (ties: the older one, which
// Kubernetes' skew policy for cloud controllers allows).
func forMinor(src versions.AddonSource, k8s string) (version, why string, err error) {
	if !semver.IsValid(k8s) {
		return "", "", fmt.Errorf("kubernetes version %q is not a version like v1.2.3", k8s)
	}
	want := minorOf(k8s)
	rels := src.Versions()
	sort.Slice(rels, func(i, j int) bool { return semver.Compare(rels[i], rels[j]) > 0 }) // newest first
	best, bestDist := "", -1
	for _, v := range rels {
		d := minorOf(v) - want
		if d == 0 {
			return v, "the release for the cluster's minor " + semver.MajorMinor(k8s), nil
		}
		dist := max(d, -d)
		older := d < 0
		if bestDist < 0 || dist < bestDist || (dist == bestDist && older) {
			best, bestDist = v, dist
		}
	}
	if best == "" {
		return "", "", errors.New("no release pinned in manifests/versions.yaml")
	}
	why = fmt.Sprintf("no pinned release for the cluster's minor %s; the nearest pinned one", semver.MajorMinor(k8s))
	if d := minorOf(best) - want; d > 0 {
		why += " (newer than the cluster: outside Kubernetes' version skew policy for cloud controllers)"
	} else if d < -1 {
		why += " (more than one minor older than the cluster: outside Kubernetes' version skew policy)"
	}
	return best, why, nil
}

// minorOf is the minor of v1.M.P (0 when unparsable, which validation prevents).
func minorOf(v string) int {
	var major, minor int
	fmt.Sscanf(strings.TrimPrefix(semver.MajorMinor(v), "v"), "%d.%d", &major, &minor)
	return minor
}

func sortByOrder(as []Addon) {
	rank := map[Name]int{}
	for i, n := range Order {
		rank[n] = i
	}
	sort.SliceStable(as, func(i, j int) bool { return rank[as[i].Name] < rank[as[j].Name] })
}
