package mirror

import (
	"strings"
	"testing"
)

func TestContainerdHostsFiles(t *testing.T) {
	files, err := ContainerdHostsFiles(map[string]string{
		"registry.k8s.io":     "http://172.24.4.1:5001/registry.k8s.io",
		"docker.io":           "https://harbor.example.org/proxy-docker/",
		"quay.io":             "https://mirror.example.org:8443",
		"_default":            "http://10.0.0.5:5000",
		"registry.local:5000": "http://10.0.0.5:5000/local",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/etc/containerd/certs.d/_default/hosts.toml": `# Written by capilab (setting registry_mirrors): pull _default images through http://10.0.0.5:5000 first.

[host."http://10.0.0.5:5000"]
  capabilities = ["pull", "resolve"]
`,
		"/etc/containerd/certs.d/docker.io/hosts.toml": `# Written by capilab (setting registry_mirrors): pull docker.io images through https://harbor.example.org/proxy-docker first.
server = "https://registry-1.docker.io"

[host."https://harbor.example.org/v2/proxy-docker"]
  capabilities = ["pull", "resolve"]
  override_path = true
`,
		"/etc/containerd/certs.d/quay.io/hosts.toml": `# Written by capilab (setting registry_mirrors): pull quay.io images through https://mirror.example.org:8443 first.
server = "https://quay.io"

[host."https://mirror.example.org:8443"]
  capabilities = ["pull", "resolve"]
`,
		"/etc/containerd/certs.d/registry.k8s.io/hosts.toml": `# Written by capilab (setting registry_mirrors): pull registry.k8s.io images through http://172.24.4.1:5001/registry.k8s.io first.
server = "https://registry.k8s.io"

[host."http://172.24.4.1:5001/v2/registry.k8s.io"]
  capabilities = ["pull", "resolve"]
  override_path = true
`,
		"/etc/containerd/certs.d/registry.local:5000/hosts.toml": `# Written by capilab (setting registry_mirrors): pull registry.local:5000 images through http://10.0.0.5:5000/local first.
server = "https://registry.local:5000"

[host."http://10.0.0.5:5000/v2/local"]
  capabilities = ["pull", "resolve"]
  override_path = true
`,
	}
	if len(files) != len(want) {
		t.Fatalf("%d files, want %d", len(files), len(want))
	}
	for i, f := range files {
		if i > 0 && files[i-1].Path >= f.Path {
			t.Errorf("files not sorted: %s after %s", f.Path, files[i-1].Path)
		}
		if f.Content != want[f.Path] {
			t.Errorf("%s:\n%s\nwant:\n%s", f.Path, f.Content, want[f.Path])
		}
	}
	if files, err := ContainerdHostsFiles(nil); err != nil || len(files) != 0 {
		t.Errorf("no mirrors: %v %v", files, err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		mirrors map[string]string
		want    string
	}{
		{map[string]string{"Registry.K8s.io": "http://m"}, `registry "Registry.K8s.io": not a registry host name`},
		{map[string]string{"registry.k8s.io": "ftp://m"}, "scheme must be http or https"},
		{map[string]string{"registry.k8s.io": "http://user:pw@m"}, "credentials do not belong"},
		{map[string]string{"registry.k8s.io": "http://m/v2/x"}, "without /v2"},
		{map[string]string{"registry.k8s.io": "http:///x"}, "no host"},
		{map[string]string{"registry.k8s.io": "http://m?x=1"}, "no query"},
		{map[string]string{"r:99999": "http://m"}, "bad port"},
	}
	for _, tt := range tests {
		got := strings.Join(Validate(tt.mirrors), "; ")
		if !strings.Contains(got, tt.want) {
			t.Errorf("Validate(%v) = %q, want %q", tt.mirrors, got, tt.want)
		}
		if _, err := ContainerdHostsFiles(tt.mirrors); err == nil {
			t.Errorf("ContainerdHostsFiles(%v) accepted bad input", tt.mirrors)
		}
	}
}

func TestReference(t *testing.T) {
	tests := []struct{ ref, reg, rest, push string }{
		{"registry.k8s.io/provider-os/openstack-cloud-controller-manager:v1", "registry.k8s.io", "provider-os/openstack-cloud-controller-manager:v1", "127.0.0.1:5001/registry.k8s.io/provider-os/openstack-cloud-controller-manager:v1"},
		{"busybox:1", "docker.io", "library/busybox:1", "127.0.0.1:5001/docker.io/library/busybox:1"},
		{"sonobuoy/sonobuoy:v1", "docker.io", "sonobuoy/sonobuoy:v1", "127.0.0.1:5001/docker.io/sonobuoy/sonobuoy:v1"},
		{"quay.io/orc/openstack-resource-controller:v2", "quay.io", "orc/openstack-resource-controller:v2", "127.0.0.1:5001/quay.io/orc/openstack-resource-controller:v2"},
		{"localhost/x:1", "localhost", "x:1", "127.0.0.1:5001/localhost/x:1"},
		{"reg:5000/x:1", "reg:5000", "x:1", "127.0.0.1:5001/reg_5000/x:1"},
	}
	for _, tt := range tests {
		reg, rest := Reference(tt.ref)
		if reg != tt.reg || rest != tt.rest {
			t.Errorf("Reference(%s) = %s, %s", tt.ref, reg, rest)
		}
		if got := PushRef("127.0.0.1:5001", tt.ref); got != tt.push {
			t.Errorf("PushRef(%s) = %s, want %s", tt.ref, got, tt.push)
		}
	}
	m := Namespaced("http://172.24.4.1:5001/", "registry.k8s.io", "docker.io", "reg:5000")
	if m["docker.io"] != "http://172.24.4.1:5001/docker.io" || m["reg:5000"] != "http://172.24.4.1:5001/reg_5000" || len(m) != 3 {
		t.Errorf("Namespaced: %v", m)
	}
}
