// Package labnode is what a workload cluster's template adds for nodes on
// devcloud's data plane (the "local-lab patch"): there a node is a kind
// node image running as a privileged container, booted by the data plane's
// cloud-init from the node's user data, and these kubeadm/kubelet settings
// and files make kubeadm succeed in it. The data plane changes nothing in
// the user data it runs: everything here belongs in the template (a
// KubeadmConfigSpec / KubeadmControlPlane patch of the local lab).
//
// The values are those kind and Cluster API's Docker provider use for kind
// nodes, reduced to what the node image on a cgroup v1 host needs:
//
//   - preflight: SystemVerification fails on cgroup v1 (an error in kubeadm
//     1.37), Swap and the bridge-nf-call sysctl are the host's business;
//   - kubelet: fail-cgroupv1=false (kubelet >= 1.35 refuses cgroup v1
//     otherwise), the cgroup root and runtime cgroups kind nodes use, no
//     swap check, no image garbage collection or disk eviction (the node's
//     /var is a volume on the host's disk);
//   - containerd: kind's node config has no registry config_path, so the
//     registry mirror's host files need it added and containerd restarted
//     before kubeadm pulls anything;
//   - pod network: the node image ships capilab's cni-agent manifest
//     (/kind/manifests/default-cni.yaml), which the first control plane
//     applies once the API server answers.
package labnode

import (
	"fmt"
	"strings"

	"github.com/capilab/capilab/internal/dataplane/mirror"
)

// IgnorePreflightErrors go into nodeRegistration.ignorePreflightErrors of
// InitConfiguration and every JoinConfiguration.
var IgnorePreflightErrors = []string{"SystemVerification", "Swap", "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables"}

// Arg is one kubelet flag (kubeadm v1beta4 kubeletExtraArgs: name/value).
type Arg struct{ Name, Value string }

// KubeletExtraArgs go into nodeRegistration.kubeletExtraArgs (besides the
// template's own, such as cloud-provider=external and CAPO's provider-id).
var KubeletExtraArgs = []Arg{
	{"fail-cgroupv1", "false"},
	{"cgroup-root", "/kubelet"},
	{"runtime-cgroups", "/system.slice/containerd.service"},
	{"fail-swap-on", "false"},
	{"image-gc-high-threshold", "100"},
	{"eviction-hard", "nodefs.available<0%,nodefs.inodesFree<0%,imagefs.available<0%"},
}

// CRISocket is the node image's containerd socket.
const CRISocket = "unix:///run/containerd/containerd.sock"

// Files are the node's extra files for registry mirrors: containerd's host
// files (see mirror.ContainerdHostsFiles). Add them to the template's files
// (owner root:root, permissions 0644).
func Files(registryMirrors map[string]string) ([]mirror.File, error) {
	return mirror.ContainerdHostsFiles(registryMirrors)
}

// PreKubeadmCommands come first in preKubeadmCommands of every node: with
// registry mirrors, point containerd at the host files and restart it.
func PreKubeadmCommands(registryMirrors map[string]string) []string {
	if len(registryMirrors) == 0 {
		return nil
	}
	return []string{
		fmt.Sprintf(`grep -q '^\[plugins."io.containerd.grpc.v1.cri".registry\]' /etc/containerd/config.toml || printf '\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "%s"\n' >> /etc/containerd/config.toml`, mirror.CertsDir),
		"systemctl restart containerd",
		"for i in $(seq 60); do ctr version >/dev/null 2>&1 && break; sleep 0.5; done",
	}
}

// CNICommands go into postKubeadmCommands of the first control plane
// (KubeadmControlPlane's init configuration): apply the node image's pod
// network with the cluster's pod CIDR, reaching the API server on the node
// itself (apiServerHostPort: the node's address and port) before any
// Service routing exists.
func CNICommands(podCIDR, apiServerHostPort string) []string {
	kc := "kubectl --kubeconfig /etc/kubernetes/admin.conf"
	return []string{
		// The manifest's placeholder is "{{ .PodSubnet }}", spelled here as a
		// pattern: bootstrap data is a jinja template, where "{{" is syntax.
		fmt.Sprintf(`sed 's#[{][{] *[.]PodSubnet *[}][}]#%s#' /kind/manifests/default-cni.yaml | %s apply -f -`, podCIDR, kc),
		fmt.Sprintf(`%s -n kube-system set env daemonset/cni-agent CONTROL_PLANE_ENDPOINT=%s`, kc, apiServerHostPort),
	}
}

// NodeIPCommand is a shell expression for the node's own address (for
// apiServerHostPort in CNICommands): the first address of the default
// route's interface.
const NodeIPCommand = `$(ip -4 -o addr show dev $(ip -4 route show default | awk '{print $5; exit}') | awk '{print $4}' | cut -d/ -f1 | head -n1)`

// KubeletArgsYAML renders args as kubeadm v1beta4 kubeletExtraArgs list
// items, indented by indent spaces (for templates written as text).
func KubeletArgsYAML(args []Arg, indent int) string {
	pad := strings.Repeat(" ", indent)
	var b strings.Builder
	for _, a := range args {
		fmt.Fprintf(&b, "%s- name: %s\n%s  value: %q\n", pad, a.Name, pad, a.Value)
	}
	return b.String()
}
