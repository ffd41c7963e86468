package kindcluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kinderrors "sigs.k8s.io/kind/pkg/errors"
	kindexec "sigs.k8s.io/kind/pkg/exec"
)

func TestConfigNodesAndImage(t *testing.T) {
	cfg := Config(Options{Name: "c1", Image: "kindest/node:test", Workers: 2}, false)
	if cfg.Name != "c1" || cfg.APIVersion != "kind.x-k8s.io/v1alpha4" || cfg.Kind != "Cluster" {
		t.Fatalf("unexpected header: %+v", cfg.TypeMeta)
	}
	if len(cfg.Nodes) != 3 || cfg.Nodes[0].Role != v1alpha4.ControlPlaneRole || cfg.Nodes[1].Role != v1alpha4.WorkerRole {
		t.Fatalf("nodes = %+v, want 1 control-plane + 2 workers", cfg.Nodes)
	}
	for _, n := range cfg.Nodes {
		if n.Image != "kindest/node:test" {
			t.Errorf("node image %q", n.Image)
		}
	}
	if len(cfg.KubeadmConfigPatches) != 0 {
		t.Errorf("cgroup v2 host got patches %v", cfg.KubeadmConfigPatches)
	}
	if cfg.Networking.DisableDefaultCNI {
		t.Error("default CNI disabled: the node image's cni-agent would never be applied")
	}
}

func TestConfigCgroupV1(t *testing.T) {
	cfg := Config(Options{Name: "c1", Image: "i"}, true)
	if len(cfg.KubeadmConfigPatches) != 1 || cfg.KubeadmConfigPatches[0] != kubeletCgroupV1Patch {
		t.Fatalf("patches = %q, want the failCgroupV1 patch once", cfg.KubeadmConfigPatches)
	}
}

func TestConfigKeepsBaseAndDoesNotMutateIt(t *testing.T) {
	base := &v1alpha4.Cluster{
		Nodes: []v1alpha4.Node{{
			Role:              v1alpha4.ControlPlaneRole,
			ExtraPortMappings: []v1alpha4.PortMapping{{ContainerPort: 30080, HostPort: 8080}},
		}},
		KubeadmConfigPatches: []string{kubeletCgroupV1Patch},
	}
	cfg := Config(Options{Name: "mgmt", Image: "img", Workers: 3, Base: base}, true)
	if len(cfg.Nodes) != 1 || len(cfg.Nodes[0].ExtraPortMappings) != 1 || cfg.Nodes[0].Image != "img" {
		t.Fatalf("base nodes not kept: %+v", cfg.Nodes)
	}
	if len(cfg.KubeadmConfigPatches) != 1 {
		t.Fatalf("patch duplicated: %q", cfg.KubeadmConfigPatches)
	}
	if base.Nodes[0].Image != "" || base.Name != "" {
		t.Fatal("Config mutated its Base")
	}
}

func TestConfigRegistryMirrors(t *testing.T) {
	opts := Options{Name: "c1", Image: "i", Workers: 1, Kubeconfig: "/tmp/x/kubeconfig",
		RegistryMirrors: map[string]string{"registry.k8s.io": "http://172.24.4.1:5001/registry.k8s.io"}}
	cfg := Config(opts, false)
	if len(cfg.ContainerdConfigPatches) != 1 || !strings.Contains(cfg.ContainerdConfigPatches[0], `config_path = "/etc/containerd/certs.d"`) {
		t.Errorf("containerd patches %q", cfg.ContainerdConfigPatches)
	}
	for _, n := range cfg.Nodes {
		if len(n.ExtraMounts) != 1 || n.ExtraMounts[0].HostPath != "/tmp/x/containerd-certs.d" || n.ExtraMounts[0].ContainerPath != "/etc/containerd/certs.d" || !n.ExtraMounts[0].Readonly {
			t.Errorf("node %s mounts %+v", n.Role, n.ExtraMounts)
		}
	}
	if cfg := Config(Options{Name: "c1", Image: "i"}, false); len(cfg.ContainerdConfigPatches)+len(cfg.Nodes[0].ExtraMounts) != 0 {
		t.Error("no mirrors: no patch, no mount")
	}

	dir := t.TempDir()
	opts.MirrorDir = dir
	if err := writeMirrorFiles(opts); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "registry.k8s.io", "hosts.toml"))
	if err != nil || !strings.Contains(string(raw), `[host."http://172.24.4.1:5001/v2/registry.k8s.io"]`) {
		t.Errorf("hosts.toml: %v %s", err, raw)
	}
	opts.RegistryMirrors = map[string]string{"docker.io": "ftp://bad"}
	if err := writeMirrorFiles(opts); err == nil {
		t.Error("a bad mirror must be refused")
	}
}

func TestCommandOutput(t *testing.T) {
	long := strings.Repeat("x", outputTail+10) + "END"
	for _, tc := range []struct {
		name         string
		err          error
		want, suffix string // want: a substring; "" means no output part at all
	}{
		{"plain error", errors.New("boom"), "", ""},
		{"run error without output", &kindexec.RunError{Command: []string{"kubeadm", "init"}, Inner: errors.New("exit status 1")}, "", ""},
		{"wrapped run error", kinderrors.Wrap(&kindexec.RunError{Command: []string{"kubeadm", "init"}, Output: []byte("[ERROR Port-6443]: in use\n"), Inner: errors.New("exit status 1")}, "failed to init node with kubeadm"),
			"; its output:\n[ERROR Port-6443]: in use", "in use"},
		{"long output keeps its tail", &kindexec.RunError{Output: []byte(long), Inner: errors.New("exit status 1")}, "; its output:\n...xxx", "xxEND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := commandOutput(tc.err)
			if tc.want == "" {
				if got != "" {
					t.Fatalf("got %q, want none", got)
				}
				return
			}
			if !strings.Contains(got, tc.want) || !strings.HasSuffix(got, tc.suffix) {
				t.Fatalf("got %q, want it to contain %q and end in %q", got, tc.want, tc.suffix)
			}
			if len(got) > outputTail+100 {
				t.Fatalf("output not bounded: %d bytes", len(got))
			}
		})
	}
}
