package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/semver"

	"github.com/capilab/capilab/internal/dataplane/mirror"
)

// Problem is one reason the settings are invalid.
type Problem struct {
	Source  string // where the offending value came from
	Key     string // knob key ("" for file-level problems)
	Message string
}

func (p Problem) String() string {
	switch {
	case p.Key == "":
		return fmt.Sprintf("%s: %s", p.Source, p.Message)
	case p.Source == "":
		return fmt.Sprintf("%s: %s", p.Key, p.Message)
	}
	return fmt.Sprintf("%s: %s: %s", p.Source, p.Key, p.Message)
}

// Problems is a list of problems, one line each.
type Problems []Problem

// InvalidError reports invalid settings, one line per problem.
type InvalidError struct{ Problems Problems }

func (e *InvalidError) Error() string {
	lines := make([]string, 0, len(e.Problems)+1)
	lines = append(lines, fmt.Sprintf("invalid settings (%d problem(s)); nothing was changed:", len(e.Problems)))
	for _, p := range e.Problems {
		lines = append(lines, "  "+p.String())
	}
	return strings.Join(lines, "\n")
}

// Name limits. OpenStack names are up to 255 characters, but a cluster name
// also becomes part of hostnames and Kubernetes label values (both at most
// 63): CAPI names a worker Machine "<cluster>-<md>-<5>-<5>-<5>" through the
// topology controller, up to 23 characters more than the cluster name with
// the default md-0 class. The prefix is stored in every resource name the
// lab makes ("<prefix>-<cluster>-controller") and in the mgmt server's
// hostname "<prefix>-mgmtcluster".
const (
	MaxClusterName = 40
	MaxPrefix      = 20
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func isDNSLabel(s string) bool { return len(s) <= 63 && dnsLabel.MatchString(s) }

// ValidateName checks a name against the rules for kind ("cluster", "prefix").
func ValidateName(kind, name string, max int) error {
	if name == "" {
		return fmt.Errorf("must not be empty")
	}
	if !isDNSLabel(name) {
		return fmt.Errorf("%q is not a valid %s name: use lower-case letters, digits and '-', starting and ending with a letter or digit", name, kind)
	}
	if len(name) > max {
		return fmt.Errorf("%q is %d characters; a %s name may have at most %d so that the names derived from it stay within OpenStack and Kubernetes limits", name, len(name), kind, max)
	}
	return nil
}

func (l *Loaded) validate() Problems {
	s := &l.Settings
	var ps Problems
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Source: l.Sources[key], Key: key, Message: fmt.Sprintf(format, args...)})
	}
	check := func(key string, err error) {
		if err != nil {
			add(key, "%s", err.Error())
		}
	}

	check("prefix", ValidateName("prefix", s.Prefix, MaxPrefix))
	check("cluster", ValidateName("cluster", s.Cluster, MaxClusterName))
	seen := map[string]bool{}
	for _, c := range s.Clusters {
		check("clusters", ValidateName("cluster", c, MaxClusterName))
		if seen[c] {
			add("clusters", "%q is listed twice", c)
		}
		seen[c] = true
	}
	if s.Namespace != "" && !isDNSLabel(s.Namespace) {
		add("namespace", "%q is not a valid Kubernetes namespace (DNS-1123 label)", s.Namespace)
	}

	// Versions.
	if s.ImageURL == "" {
		if _, err := l.Versions.ResolveKubernetes(s.KubernetesVersion); err != nil {
			add("kubernetes_version", "%s", strings.TrimPrefix(err.Error(), fmt.Sprintf("kubernetes version %q: ", s.KubernetesVersion)))
		}
	} else if v := "v" + strings.TrimPrefix(s.KubernetesVersion, "v"); !semver.IsValid(v) || semver.Canonical(v) != v {
		// v1.N.x names the newest patch the catalog pins, with image_url too.
		if _, err := l.Versions.ResolveKubernetes(s.KubernetesVersion); err != nil {
			add("kubernetes_version", "%q is not a version like v1.2.3, nor v1.N.x with a patch in the catalog", s.KubernetesVersion)
		}
	}
	if s.CNIVersion != "" && !semver.IsValid(s.CNIVersion) {
		add("cni_version", "%q is not a version like v1.2.3", s.CNIVersion)
	}
	for _, k := range Knobs() {
		if k.Group != "addons" {
			continue
		}
		v := k.Format(s)
		if v != "true" && v != "false" && !semver.IsValid(v) {
			add(k.Key, "%q is not true, false or a version like v1.2.3", v)
		}
	}
	if s.DeployHarbor != "false" {
		add("deploy_harbor", "Harbor is not supported by capilab yet; set it to false")
	}

	// Node image source.
	if s.ImageSHA256 != "" && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(s.ImageSHA256) {
		add("image_sha256", "must be 64 lower-case hex digits")
	}
	if s.ImageURL != "" {
		u, err := url.Parse(s.ImageURL)
		switch {
		case err != nil:
			add("image_url", "%q is not a URL or path", s.ImageURL)
		case u.Scheme == "http" || u.Scheme == "https":
			if s.ImageSHA256 == "" {
				add("image_sha256", "is required with an http(s) image_url, so the download can be verified")
			}
		case u.Scheme == "file" || u.Scheme == "":
		default:
			add("image_url", "scheme %q is not supported (https, http, file or a local path)", u.Scheme)
		}
	}
	if len(s.ImageName) > 255 {
		add("image_name", "is longer than Glance's 255 characters")
	}
	for _, key := range sortedKeys(s.ImageExtraProperties) {
		switch {
		case glanceReserved[key]:
			add("image_extra_properties", "%q is a Glance image attribute, not a property; Glance would reject it", key)
		case strings.HasPrefix(key, "capilab_"):
			add("image_extra_properties", "%q: properties starting with capilab_ are set by capilab itself", key)
		case len(key) > 255 || len(s.ImageExtraProperties[key]) > 255:
			add("image_extra_properties", "%q: Glance property names and values are at most 255 characters", key)
		}
	}

	for _, problem := range mirror.Validate(s.RegistryMirrors) {
		add("registry_mirrors", "%s", problem)
	}

	// Sizes and counts.
	if !slices.Contains([]int{0, 1, 3, 5, 7}, s.ControllerCount) {
		add("controller_count", "%d is not 0, 1, 3, 5 or 7 (etcd needs an odd number of members)", s.ControllerCount)
	}
	if s.WorkerCount < 0 || s.WorkerCount > 100 {
		add("worker_count", "%d is out of range 0-100", s.WorkerCount)
	}
	for _, key := range []string{"controller_flavor", "worker_flavor"} {
		if strings.TrimSpace(l.knobString(key)) == "" {
			add(key, "must not be empty")
		}
	}
	for key, mtu := range map[string]int{"mtu": s.MTU, "kind_mtu": s.KindMTU} {
		if mtu != 0 && (mtu < 1280 || mtu > 9000) {
			add(key, "%d is out of range (0 for auto, or 1280-9000)", mtu)
		}
	}
	if s.CAPOInstanceCreateTimeout < 1 || s.CAPOInstanceCreateTimeout > 120 {
		add("capo_instance_create_timeout", "%d minutes is out of range 1-120", s.CAPOInstanceCreateTimeout)
	}
	if s.Parallelism < 1 || s.Parallelism > 64 {
		add("parallelism", "%d is out of range 1-64", s.Parallelism)
	}
	if s.ImageTimeout <= 0 {
		add("image_timeout", "must be longer than 0")
	}
	for key, d := range map[string]time.Duration{"delete_timeout": s.DeleteTimeout, "wait_controllers": s.WaitControllers, "wait_delete_cluster": s.WaitDeleteCluster,
		"wait_cluster": s.WaitCluster, "wait_control_plane": s.WaitControlPlane, "wait_workers": s.WaitWorkers, "wait_addons": s.WaitAddons} {
		if d <= 0 {
			add(key, "must be longer than 0")
		}
	}
	if s.RemoteTimeout <= 0 {
		add("remote_timeout", "must be longer than 0")
	}
	if s.CheckTimeout < 0 {
		add("check_timeout", "must not be negative")
	}
	for key, re := range map[string]string{"e2e_focus": s.E2EFocus, "e2e_skip": s.E2ESkip} {
		if _, err := regexp.Compile(re); err != nil {
			add(key, "%q is not a regular expression: %v", re, err)
		}
	}
	switch p := strings.ToLower(strings.TrimSpace(s.E2EParallel)); p {
	case "", "true", "false", "yes", "no", "y", "n":
	default:
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 64 {
			add("e2e_parallel", "%q is not true, false or a process count 0-64", s.E2EParallel)
		}
	}

	// Networks.
	cidrs := map[string]netip.Prefix{}
	for _, key := range []string{"node_cidr", "pod_cidr", "service_cidr", "mgmt_cidr"} {
		p, err := parseNetwork(l.knobString(key))
		if err != nil {
			add(key, "%s", err.Error())
			continue
		}
		cidrs[key] = p
	}
	// One line per overlapping pair, on the key the user set (the other may
	// be a default they never looked at).
	pairs := [][2]string{{"node_cidr", "pod_cidr"}, {"node_cidr", "service_cidr"}, {"pod_cidr", "service_cidr"},
		{"node_cidr", "mgmt_cidr"}, {"pod_cidr", "mgmt_cidr"}, {"service_cidr", "mgmt_cidr"}}
	for _, pair := range pairs {
		a, okA := cidrs[pair[0]]
		b, okB := cidrs[pair[1]]
		if !okA || !okB || !a.Overlaps(b) {
			continue
		}
		key, other := pair[1], pair[0]
		if l.Sources[key] == "default" && l.Sources[other] != "default" {
			key, other = other, key
		}
		add(key, "%s overlaps %s %s", cidrs[key], other, cidrs[other])
	}
	for _, c := range s.RestrictMgmtServer {
		if _, err := parseNetwork(c); err != nil {
			add("restrict_mgmt_server", "%s", err.Error())
		}
	}
	if !(len(s.RestrictKubeAPI) == 1 && s.RestrictKubeAPI[0] == "none") {
		for _, c := range s.RestrictKubeAPI {
			if _, err := parseNetwork(c); err != nil {
				add("restrict_kubeapi", "%s (or use [none] for internal access only)", err.Error())
			}
		}
	}
	for _, ns := range s.DNSNameservers {
		if _, err := netip.ParseAddr(ns); err != nil {
			add("dns_nameservers", "%q is not an IP address", ns)
		}
	}

	// Choices.
	oneOf := func(key, val string, allowed ...string) {
		if !slices.Contains(allowed, val) {
			add(key, "%q is not one of %s", val, strings.Join(allowed, ", "))
		}
	}
	oneOf("cni", s.CNI, "cilium", "calico")
	oneOf("provider_source", s.ProviderSource, "auto", "upstream", "local")
	oneOf("use_ovn_lb_provider", s.UseOVNLBProvider, "false", "auto", "true")
	oneOf("sonomode", s.Sonomode, "quick", "certified-conformance", "storage", "csi")
	oneOf("log_format", s.LogFormat, "text", "json")
	oneOf("log_level", s.LogLevel, "debug", "info", "warn", "error")
	oneOf("appcred_scope", s.AppcredScope, "cluster", "lab")
	oneOf("leak_scope", s.LeakScope, "clusters", "lab")
	oneOf("mgmt_mode", s.MgmtMode, "local", "remote")

	if s.HTTPProxy != "" {
		if u, err := url.Parse(s.HTTPProxy); err != nil || u.Scheme == "" || u.Host == "" {
			add("http_proxy", "is not a URL like http://proxy.example:3128")
		}
	}
	if strings.ContainsAny(s.KindNodeImage, " \t") {
		add("kind_node_image", "%q is not an image reference", s.KindNodeImage)
	}
	return ps
}

// glanceReserved are the core attributes of a Glance image: they cannot be set
// as properties (Glance answers 403 "Attribute ... is reserved").
var glanceReserved = map[string]bool{
	"id": true, "name": true, "status": true, "visibility": true, "protected": true, "os_hidden": true,
	"checksum": true, "os_hash_algo": true, "os_hash_value": true, "owner": true, "size": true,
	"virtual_size": true, "min_ram": true, "min_disk": true, "disk_format": true, "container_format": true,
	"created_at": true, "updated_at": true, "tags": true, "file": true, "schema": true, "self": true,
	"locations": true, "direct_url": true, "deleted": true, "deleted_at": true, "stores": true,
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// knobString is a string knob's raw value.
func (l *Loaded) knobString(key string) string {
	return knobByKey()[key].value(&l.Settings).String()
}

// parseNetwork accepts a CIDR that names a network (host bits zero).
func parseNetwork(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR like 10.8.0.0/20", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}
