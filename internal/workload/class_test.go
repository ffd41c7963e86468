package workload

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	capov1 "sigs.k8s.io/cluster-api-provider-openstack/api/v1beta1"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	controlplanev1 "sigs.k8s.io/cluster-api/api/controlplane/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	runtimehooksv1 "sigs.k8s.io/cluster-api/api/runtime/hooks/v1alpha1"
	"sigs.k8s.io/cluster-api/core/reconcilers/topology/cluster/patches/inline"

	"github.com/capilab/capilab/internal/dataplane/mirror"
)

// rendered is what the topology controller makes of the ClusterClass's
// templates for one cluster: the class's patches applied by Cluster API's
// own inline patch generator, then decoded strictly into the providers'
// types (an unknown or misspelt field fails).
type rendered struct {
	cluster  capov1.OpenStackClusterTemplate
	cp       controlplanev1.KubeadmControlPlaneTemplate
	worker   bootstrapv1.KubeadmConfigTemplate
	cpMach   capov1.OpenStackMachineTemplate
	workMach capov1.OpenStackMachineTemplate
}

func render(t *testing.T, s Spec) rendered {
	t.Helper()
	objs := ClassObjects("ns")
	cc := objs[len(objs)-1].(*clusterv1.ClusterClass)
	holders := []runtimehooksv1.HolderReference{
		{Kind: "Cluster", FieldPath: "spec.infrastructureRef"},
		{Kind: "Cluster", FieldPath: "spec.controlPlaneRef"},
		{Kind: "MachineDeployment", FieldPath: "spec.template.spec.bootstrap.configRef"},
		{Kind: "KubeadmControlPlane", FieldPath: "spec.machineTemplate.spec.infrastructureRef"},
		{Kind: "MachineDeployment", FieldPath: "spec.template.spec.infrastructureRef"},
	}
	mdBuiltin, _ := json.Marshal(map[string]any{"machineDeployment": map[string]any{"class": WorkerClass}})
	req := &runtimehooksv1.GeneratePatchesRequest{}
	for _, v := range s.Variables() {
		req.Variables = append(req.Variables, runtimehooksv1.Variable{Name: v.Name, Value: v.Value})
	}
	docs := map[types.UID][]byte{}
	for i, o := range objs[:5] {
		data, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		uid := types.UID(o.GetName())
		docs[uid] = data
		item := runtimehooksv1.GeneratePatchesRequestItem{UID: uid, HolderReference: holders[i], Object: runtime.RawExtension{Object: o.(runtime.Object)}}
		if holders[i].Kind == "MachineDeployment" {
			item.Variables = []runtimehooksv1.Variable{{Name: "builtin", Value: apiextensionsv1.JSON{Raw: mdBuiltin}}}
		}
		req.Items = append(req.Items, item)
	}
	for _, p := range cc.Spec.Patches {
		resp, err := inline.NewGenerator(&p).Generate(context.Background(), nil, req)
		if err != nil {
			t.Fatalf("patch %s: %v", p.Name, err)
		}
		for _, item := range resp.Items {
			patch, err := jsonpatch.DecodePatch(item.Patch)
			if err != nil {
				t.Fatalf("patch %s: %v", p.Name, err)
			}
			if docs[item.UID], err = patch.Apply(docs[item.UID]); err != nil {
				t.Fatalf("patch %s on %s: %v\n%s", p.Name, item.UID, err, item.Patch)
			}
		}
	}
	var r rendered
	decode := func(uid string, into any) {
		dec := json.NewDecoder(bytes.NewReader(docs[types.UID(uid)]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(into); err != nil {
			t.Fatalf("%s after the patches: %v\n%s", uid, err, docs[types.UID(uid)])
		}
	}
	decode(objs[0].GetName(), &r.cluster)
	decode(objs[1].GetName(), &r.cp)
	decode(objs[2].GetName(), &r.worker)
	decode(objs[3].GetName(), &r.cpMach)
	decode(objs[4].GetName(), &r.workMach)
	return r
}

func baseSpec() Spec {
	return Spec{Name: "alpha", Namespace: "alpha", Prefix: "capi", KubernetesVersion: "v1.34.3",
		ControlPlaneCount: 1, WorkerCount: 3, ControlPlaneFlavor: "SCS-2V-4-20s", WorkerFlavor: "SCS-4V-8-20s",
		ImageName: "ubuntu-capi-image-v1.34.3", NodeCIDR: "10.8.0.0/20", PodCIDR: "192.168.0.0/16", ServiceCIDR: "10.96.0.0/12",
		ExternalNetwork: "public", IdentitySecret: "alpha-cloud-config", CloudName: "capi-alpha"}
}

func TestDefaultsRender(t *testing.T) {
	r := render(t, baseSpec())
	spec := r.cluster.Spec.Template.Spec
	if spec.IdentityRef.Name != "alpha-cloud-config" || spec.IdentityRef.CloudName != "capi-alpha" {
		t.Errorf("identityRef %+v", spec.IdentityRef)
	}
	if len(spec.ManagedSubnets) != 1 || spec.ManagedSubnets[0].CIDR != "10.8.0.0/20" || len(spec.ManagedSubnets[0].DNSNameservers) != 0 {
		t.Errorf("managedSubnets %+v", spec.ManagedSubnets)
	}
	if spec.ExternalNetwork.Filter.Name != "public" {
		t.Errorf("externalNetwork %+v", spec.ExternalNetwork)
	}
	if spec.NetworkMTU != nil || spec.APIServerLoadBalancer.AllowedCIDRs != nil || spec.APIServerLoadBalancer.Provider != nil {
		t.Errorf("unset knobs were patched in: %+v", spec)
	}
	if got := strings.Join(spec.Tags, ","); got != "capilab-lab=capi,capilab-cluster=alpha" {
		t.Errorf("tags %s", got)
	}
	if *r.cpMach.Spec.Template.Spec.Flavor != "SCS-2V-4-20s" || *r.workMach.Spec.Template.Spec.Flavor != "SCS-4V-8-20s" {
		t.Errorf("flavors %s %s", *r.cpMach.Spec.Template.Spec.Flavor, *r.workMach.Spec.Template.Spec.Flavor)
	}
	for _, m := range []capov1.OpenStackMachineSpec{r.cpMach.Spec.Template.Spec, r.workMach.Spec.Template.Spec} {
		if *m.Image.Filter.Name != "ubuntu-capi-image-v1.34.3" || m.ServerGroup != nil || m.RootVolume != nil || m.ServerMetadata != nil {
			t.Errorf("machine %+v", m)
		}
	}
	kcs := r.cp.Spec.Template.Spec.KubeadmConfigSpec
	if len(kcs.Files) != 0 || len(kcs.PreKubeadmCommands) != 0 || len(kcs.InitConfiguration.NodeRegistration.IgnorePreflightErrors) != 0 {
		t.Errorf("control plane got files, commands or preflight settings without a knob: %+v", kcs)
	}
	if args := argNames(kcs.InitConfiguration.NodeRegistration.KubeletExtraArgs); args != "cloud-provider,provider-id" {
		t.Errorf("kubelet args %s", args)
	}
}

func argNames(args []bootstrapv1.Arg) string {
	var n []string
	for _, a := range args {
		n = append(n, a.Name)
	}
	return strings.Join(n, ",")
}

// Every knob reaches its field (table-driven).
func TestEveryKnobRenders(t *testing.T) {
	tests := []struct {
		name  string
		set   func(*Spec)
		check func(t *testing.T, r rendered)
	}{
		{"dns_nameservers", func(s *Spec) { s.DNSNameservers = []string{"9.9.9.9"} }, func(t *testing.T, r rendered) {
			if d := r.cluster.Spec.Template.Spec.ManagedSubnets[0].DNSNameservers; len(d) != 1 || d[0] != "9.9.9.9" {
				t.Errorf("dns %v", d)
			}
		}},
		{"mtu", func(s *Spec) { s.MTU = 1400 }, func(t *testing.T, r rendered) {
			if m := r.cluster.Spec.Template.Spec.NetworkMTU; m == nil || *m != 1400 {
				t.Errorf("mtu %v", m)
			}
		}},
		{"restrict_kubeapi cidrs", func(s *Spec) { s.RestrictKubeAPI = []string{"10.0.0.0/8"} }, func(t *testing.T, r rendered) {
			if c := r.cluster.Spec.Template.Spec.APIServerLoadBalancer.AllowedCIDRs; len(c) != 1 || c[0] != "10.0.0.0/8" {
				t.Errorf("allowedCIDRs %v", c)
			}
		}},
		{"restrict_kubeapi none", func(s *Spec) { s.RestrictKubeAPI = []string{"none"} }, func(t *testing.T, r rendered) {
			if d := r.cluster.Spec.Template.Spec.DisableAPIServerFloatingIP; d == nil || !*d {
				t.Errorf("disableAPIServerFloatingIP %v", d)
			}
		}},
		{"use_ovn_lb_provider", func(s *Spec) { s.OVNLoadBalancer = true }, func(t *testing.T, r rendered) {
			if p := r.cluster.Spec.Template.Spec.APIServerLoadBalancer.Provider; p == nil || *p != "ovn" {
				t.Errorf("provider %v", p)
			}
		}},
		{"availability_zone", func(s *Spec) { s.AvailabilityZone = "az1"; s.WorkerRootVolumeGiB = 30 }, func(t *testing.T, r rendered) {
			if z := r.cluster.Spec.Template.Spec.ControlPlaneAvailabilityZones; len(z) != 1 || z[0] != "az1" {
				t.Errorf("zones %v", z)
			}
			rv := r.workMach.Spec.Template.Spec.RootVolume
			if rv == nil || rv.AvailabilityZone == nil || rv.AvailabilityZone.Name == nil || *rv.AvailabilityZone.Name != "az1" {
				t.Errorf("root volume zone %+v", rv)
			}
		}},
		{"server groups", func(s *Spec) { s.ControlPlaneServerGroupID = "sg-cp"; s.WorkerServerGroupID = "sg-w" }, func(t *testing.T, r rendered) {
			if g := r.cpMach.Spec.Template.Spec.ServerGroup; g == nil || *g.ID != "sg-cp" {
				t.Errorf("cp group %+v", g)
			}
			if g := r.workMach.Spec.Template.Spec.ServerGroup; g == nil || *g.ID != "sg-w" {
				t.Errorf("worker group %+v", g)
			}
		}},
		{"root volumes", func(s *Spec) { s.ControlPlaneRootVolumeGiB = 25; s.WorkerRootVolumeGiB = 30 }, func(t *testing.T, r rendered) {
			if v := r.cpMach.Spec.Template.Spec.RootVolume; v == nil || v.SizeGiB != 25 || v.AvailabilityZone != nil {
				t.Errorf("cp root volume %+v", v)
			}
			if v := r.workMach.Spec.Template.Spec.RootVolume; v == nil || v.SizeGiB != 30 {
				t.Errorf("worker root volume %+v", v)
			}
		}},
		{"metadata", func(s *Spec) {
			s.ControlPlaneMetadata = map[string]string{"a": "1", "b": "2"}
			s.WorkerMetadata = map[string]string{"w": "x"}
		}, func(t *testing.T, r rendered) {
			if m := r.cpMach.Spec.Template.Spec.ServerMetadata; len(m) != 2 || m[0].Key != "a" || m[1].Value != "2" {
				t.Errorf("cp metadata %+v", m)
			}
			if m := r.workMach.Spec.Template.Spec.ServerMetadata; len(m) != 1 || m[0].Key != "w" {
				t.Errorf("worker metadata %+v", m)
			}
		}},
		{"cilium security group", func(s *Spec) { s.ExtraSecurityGroups = []string{"capi-alpha-cilium"} }, func(t *testing.T, r rendered) {
			for _, m := range []capov1.OpenStackMachineSpec{r.cpMach.Spec.Template.Spec, r.workMach.Spec.Template.Spec} {
				if g := m.SecurityGroups; len(g) != 1 || g[0].Filter.Name != "capi-alpha-cilium" {
					t.Errorf("security groups %+v", g)
				}
			}
		}},
		{"etcd_unsafe_fs", func(s *Spec) { s.EtcdUnsafeNoFsync = true }, func(t *testing.T, r rendered) {
			args := r.cp.Spec.Template.Spec.KubeadmConfigSpec.ClusterConfiguration.Etcd.Local.ExtraArgs
			if argNames(args) != "unsafe-no-fsync" {
				t.Errorf("etcd args %+v", args)
			}
		}},
		{"http_proxy", func(s *Spec) { s.HTTPProxy = "http://proxy:3128"; s.NoProxy = "10.0.0.0/8" }, func(t *testing.T, r rendered) {
			for _, spec := range []bootstrapv1.KubeadmConfigSpec{r.cp.Spec.Template.Spec.KubeadmConfigSpec, r.worker.Spec.Template.Spec} {
				if len(spec.Files) != 1 || !strings.Contains(spec.Files[0].Content, `"HTTP_PROXY=http://proxy:3128"`) || !strings.Contains(spec.Files[0].Content, `"NO_PROXY=10.0.0.0/8"`) {
					t.Errorf("proxy files %+v", spec.Files)
				}
				if strings.Join(spec.PreKubeadmCommands, ";") != "systemctl daemon-reload;systemctl restart containerd" {
					t.Errorf("commands %v", spec.PreKubeadmCommands)
				}
			}
		}},
		{"registry_mirrors", func(s *Spec) {
			s.RegistryMirrorFiles = mirrorFiles(t)
		}, func(t *testing.T, r rendered) {
			files := r.worker.Spec.Template.Spec.Files
			if len(files) != 2 || files[0].Path != "/etc/containerd/certs.d/docker.io/hosts.toml" ||
				!strings.Contains(files[1].Content, `[host."http://172.24.4.1:5001/v2/registry.k8s.io"]`) || !strings.Contains(files[1].Content, `server = "https://registry.k8s.io"`) {
				t.Errorf("mirror files %+v", files)
			}
			if len(r.cp.Spec.Template.Spec.KubeadmConfigSpec.Files) != 2 || len(r.worker.Spec.Template.Spec.PreKubeadmCommands) != 0 {
				t.Error("control plane lacks the mirror files, or commands were added outside the local lab without a proxy")
			}
		}},
		{"registry_mirrors in the local lab", func(s *Spec) {
			s.RegistryMirrorFiles = mirrorFiles(t)
			s.LocalLab = true
			s.HTTPProxy = "http://proxy:3128"
		}, func(t *testing.T, r rendered) {
			for _, cmds := range [][]string{r.worker.Spec.Template.Spec.PreKubeadmCommands, r.cp.Spec.Template.Spec.KubeadmConfigSpec.PreKubeadmCommands} {
				joined := strings.Join(cmds, "\n")
				if !strings.Contains(joined, `config_path = "/etc/containerd/certs.d"`) || !strings.HasSuffix(joined, "systemctl daemon-reload\nsystemctl restart containerd") {
					t.Errorf("pre-kubeadm commands %q", cmds)
				}
			}
		}},
		{"local lab", func(s *Spec) { s.LocalLab = true }, func(t *testing.T, r rendered) {
			kcs := r.cp.Spec.Template.Spec.KubeadmConfigSpec
			for _, nr := range []bootstrapv1.NodeRegistrationOptions{kcs.InitConfiguration.NodeRegistration, kcs.JoinConfiguration.NodeRegistration, r.worker.Spec.Template.Spec.JoinConfiguration.NodeRegistration} {
				if !strings.Contains(argNames(nr.KubeletExtraArgs), "fail-cgroupv1") || len(nr.IgnorePreflightErrors) == 0 || nr.CRISocket != "unix:///run/containerd/containerd.sock" {
					t.Errorf("node registration %+v", nr)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSpec()
			tt.set(&s)
			tt.check(t, render(t, s))
		})
	}
}

func mirrorFiles(t *testing.T) []MirrorFile {
	files, err := mirror.ContainerdHostsFiles(mirror.Namespaced("http://172.24.4.1:5001", "docker.io", "registry.k8s.io"))
	if err != nil {
		t.Fatal(err)
	}
	var out []MirrorFile
	for _, f := range files {
		out = append(out, MirrorFile{Path: f.Path, Content: f.Content})
	}
	return out
}

func TestClusterTopology(t *testing.T) {
	s := baseSpec()
	c := s.Cluster()
	topo := c.Spec.Topology
	if topo.ClassRef.Name != ClassName || topo.Version != "v1.34.3" || *topo.ControlPlane.Replicas != 1 ||
		len(topo.Workers.MachineDeployments) != 1 || *topo.Workers.MachineDeployments[0].Replicas != 3 {
		t.Errorf("topology %+v", topo)
	}
	if c.Spec.ClusterNetwork.Pods.CIDRBlocks[0] != "192.168.0.0/16" || c.Spec.ClusterNetwork.Services.CIDRBlocks[0] != "10.96.0.0/12" {
		t.Errorf("network %+v", c.Spec.ClusterNetwork)
	}
	// Every variable the Cluster sets is declared by the class.
	declared := map[string]bool{}
	for _, n := range VariableNames() {
		declared[n] = true
	}
	for _, v := range topo.Variables {
		if !declared[v.Name] {
			t.Errorf("variable %s is not declared by the ClusterClass", v.Name)
		}
	}
}

func TestTemplateNamesFollowContent(t *testing.T) {
	a, b := ClassObjects("x"), ClassObjects("y")
	for i := range a[:5] {
		if a[i].GetName() != b[i].GetName() {
			t.Errorf("template %d: name depends on the namespace", i)
		}
		if !strings.HasPrefix(a[i].GetName(), "capilab-") {
			t.Errorf("template name %s", a[i].GetName())
		}
	}
}

func TestRootVolumeRule(t *testing.T) {
	tests := []struct {
		disk  int
		image int64
		ram   int
		want  int
	}{
		{20, 5 << 30, 4096, 0},
		{0, 5 << 30, 4096, 10},     // 5 + 2 = 7 -> 10
		{0, 3 << 30, 8192, 10},     // 3 + 4 = 7 -> 10
		{0, 9 << 30, 16384, 20},    // 9 + 8 = 17 -> 20
		{0, 50 << 30, 262144, 125}, // capped
		{0, 0, 0, 5},
	}
	for _, tt := range tests {
		if got := RootVolumeGiB(tt.disk, tt.image, tt.ram); got != tt.want {
			t.Errorf("RootVolumeGiB(%d, %d, %d) = %d, want %d", tt.disk, tt.image, tt.ram, got, tt.want)
		}
	}
}
