// Package mirror is capilab's registry mirror support: containerd's
// registry host files for a set of mirrors (the setting registry_mirrors:
// upstream registry → mirror URL), the references images are pushed to a
// mirror under, and devcloud's local mirror (a registry built from
// github.com/distribution/distribution/v3).
//
// A mirror URL without a path is a plain mirror: containerd asks it for
// /v2/<repository>, as it would the registry. A path names a namespace
// inside the mirror, as Harbor's proxy-cache projects and devcloud's
// mirror do: http://172.24.4.1:5001/registry.k8s.io serves
// registry.k8s.io/pause as registry.k8s.io/pause inside the mirror
// (containerd: host http://172.24.4.1:5001/v2/registry.k8s.io with
// override_path). Images a mirror lacks are pulled from the registry itself.
package mirror

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// CertsDir is where containerd (config_path) reads registry host files.
const CertsDir = "/etc/containerd/certs.d"

// File is one file to place on a node.
type File struct {
	Path    string // absolute
	Content string
}

// upstreamServer is the URL containerd falls back to for a registry.
func upstreamServer(registry string) string {
	if registry == "docker.io" {
		return "https://registry-1.docker.io"
	}
	return "https://" + registry
}

var registryRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?$`)

// ValidateRegistry checks an upstream registry name (host[:port], as in
// image references; "_default" is containerd's fallback for every registry).
func ValidateRegistry(r string) error {
	if r == "_default" {
		return nil
	}
	if !registryRE.MatchString(r) {
		return fmt.Errorf("registry %q: not a registry host name (host or host:port, lower case)", r)
	}
	if h, p, err := net.SplitHostPort(r); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || h == "" {
			return fmt.Errorf("registry %q: bad port", r)
		}
	}
	return nil
}

// ParseMirrorURL checks a mirror URL: http or https, a host, optionally a
// namespace path; no query, fragment or credentials.
func ParseMirrorURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("mirror %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("mirror %q: scheme must be http or https", raw)
	case u.Host == "":
		return nil, fmt.Errorf("mirror %q: no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("mirror %q: credentials do not belong in the URL", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("mirror %q: no query or fragment allowed", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if strings.HasPrefix(u.Path, "/v2") && (u.Path == "/v2" || strings.HasPrefix(u.Path, "/v2/")) {
		return nil, fmt.Errorf("mirror %q: give the namespace without /v2 (capilab adds it)", raw)
	}
	return u, nil
}

// Validate checks a registry_mirrors setting; each problem is one line.
func Validate(mirrors map[string]string) []string {
	var out []string
	for _, r := range sortedKeys(mirrors) {
		if err := ValidateRegistry(r); err != nil {
			out = append(out, err.Error())
		}
		if _, err := ParseMirrorURL(mirrors[r]); err != nil {
			out = append(out, fmt.Sprintf("registry %s: %v", r, err))
		}
	}
	return out
}

// ContainerdHostsFiles returns, per upstream registry of mirrors, the file
// /etc/containerd/certs.d/<registry>/hosts.toml that makes containerd pull
// through the mirror first and fall back to the registry. The files are
// the same for every node; sorted by path. Pure: no I/O.
func ContainerdHostsFiles(mirrors map[string]string) ([]File, error) {
	if p := Validate(mirrors); len(p) > 0 {
		return nil, fmt.Errorf("registry mirrors: %s", strings.Join(p, "; "))
	}
	var files []File
	for _, r := range sortedKeys(mirrors) {
		u, _ := ParseMirrorURL(mirrors[r])
		var b strings.Builder
		fmt.Fprintf(&b, "# Written by capilab (setting registry_mirrors): pull %s images through %s first.\n", r, u.String())
		if r != "_default" {
			fmt.Fprintf(&b, "server = %q\n", upstreamServer(r))
		}
		host := u.Scheme + "://" + u.Host
		override := u.Path != ""
		if override {
			host += "/v2" + u.Path
		}
		fmt.Fprintf(&b, "\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", host)
		if override {
			b.WriteString("  override_path = true\n")
		}
		files = append(files, File{Path: path.Join(CertsDir, r, "hosts.toml"), Content: b.String()})
	}
	return files, nil
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Registries devcloud's mirror serves images of by default: where the
// images capilab builds claim to come from.
var DefaultRegistries = []string{"registry.k8s.io", "docker.io", "quay.io", "ghcr.io"}

// Namespaced maps every registry to a namespace of one mirror at base
// (e.g. http://172.24.4.1:5001): the registry_mirrors value for devcloud.
func Namespaced(base string, registries ...string) map[string]string {
	out := map[string]string{}
	for _, r := range registries {
		out[r] = strings.TrimRight(base, "/") + "/" + Namespace(r)
	}
	return out
}

// Namespace is a registry's namespace in a namespaced mirror: its name, with
// a port's colon (not allowed in repository names) as "_".
func Namespace(registry string) string { return strings.ReplaceAll(registry, ":", "_") }

// Reference splits an image reference into its registry (docker.io for
// names without one) and the rest, with Docker Hub's library/ for single
// names, as containerd resolves them.
func Reference(ref string) (registry, remainder string) {
	first, rest, found := strings.Cut(ref, "/")
	if !found || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		registry, remainder = "docker.io", ref
	} else {
		registry, remainder = first, rest
	}
	if registry == "docker.io" && !strings.Contains(remainder, "/") {
		remainder = "library/" + remainder
	}
	return registry, remainder
}

// PushRef is where an image is pushed in a namespaced mirror reached at
// hostPort: <hostPort>/<registry>/<repository>:<tag>.
func PushRef(hostPort, ref string) string {
	registry, rest := Reference(ref)
	return hostPort + "/" + Namespace(registry) + "/" + rest
}
