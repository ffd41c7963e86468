package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	capov1 "sigs.k8s.io/cluster-api-provider-openstack/api/v1beta1"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	controlplanev1 "sigs.k8s.io/cluster-api/api/controlplane/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capilab/capilab/internal/dataplane/labnode"
)

// ClassName is the ClusterClass of every capilab cluster; each cluster's
// namespace holds its own copy, so a cluster's objects stay together.
const ClassName = "capilab"

// WorkerClass is the MachineDeployment class of worker nodes.
const WorkerClass = "default-worker"

const (
	capoGroupVersion = "infrastructure.cluster.x-k8s.io/v1beta1"
	kcpGroupVersion  = "controlplane.cluster.x-k8s.io/v1beta2"
	bootGroupVersion = "bootstrap.cluster.x-k8s.io/v1beta2"
)

// Variable names of the ClusterClass. Every cluster knob of the settings
// model that a cluster's objects carry is one of them (Cluster renders
// them from the settings).
const (
	VarIdentityRef             = "identityRef"
	VarNodeCIDR                = "nodeCIDR"
	VarDNSNameservers          = "dnsNameservers"
	VarNetworkMTU              = "networkMTU"
	VarExternalNetwork         = "externalNetwork"
	VarAPIServerAllowedCIDRs   = "apiServerAllowedCIDRs"
	VarDisableAPIServerFIP     = "disableAPIServerFloatingIP"
	VarAPIServerLBProvider     = "apiServerLoadBalancerProvider"
	VarAvailabilityZone        = "availabilityZone"
	VarControlPlaneFlavor      = "controlPlaneFlavor"
	VarWorkerFlavor            = "workerFlavor"
	VarImageName               = "imageName"
	VarControlPlaneServerGroup = "controlPlaneServerGroupID"
	VarWorkerServerGroup       = "workerServerGroupID"
	VarControlPlaneRootVolume  = "controlPlaneRootVolumeGiB"
	VarWorkerRootVolume        = "workerRootVolumeGiB"
	VarControlPlaneMetadata    = "controlPlaneMetadata"
	VarWorkerMetadata          = "workerMetadata"
	VarExtraSecurityGroups     = "extraSecurityGroups"
	VarEtcdUnsafeNoFsync       = "etcdUnsafeNoFsync"
	VarHTTPProxy               = "httpProxy"
	VarNoProxy                 = "noProxy"
	VarRegistryMirrorFiles     = "registryMirrorFiles"
	VarTags                    = "tags"
	VarLocalLab                = "localLab"
)

func schema(typ, desc string) clusterv1.JSONSchemaProps {
	return clusterv1.JSONSchemaProps{Type: typ, Description: desc}
}

func stringList(desc string) clusterv1.JSONSchemaProps {
	s := schema("array", desc)
	item := schema("string", "")
	s.Items = &item
	return s
}

func stringMap(desc string) clusterv1.JSONSchemaProps {
	s := schema("object", desc)
	v := schema("string", "")
	s.AdditionalProperties = &v
	return s
}

func withDefault(s clusterv1.JSONSchemaProps, v any) clusterv1.JSONSchemaProps {
	s.Default = rawJSON(v)
	return s
}

func rawJSON(v any) *apiextensionsv1.JSON {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // static values only
	}
	return &apiextensionsv1.JSON{Raw: data}
}

// variables are the ClusterClass's variables with their schemas.
func variables() []clusterv1.ClusterClassVariable {
	req := func(name string, s clusterv1.JSONSchemaProps) clusterv1.ClusterClassVariable {
		return clusterv1.ClusterClassVariable{Name: name, Required: ptr.To(true), Schema: clusterv1.VariableSchema{OpenAPIV3Schema: s}}
	}
	opt := func(name string, s clusterv1.JSONSchemaProps) clusterv1.ClusterClassVariable {
		return clusterv1.ClusterClassVariable{Name: name, Required: ptr.To(false), Schema: clusterv1.VariableSchema{OpenAPIV3Schema: s}}
	}
	identity := schema("object", "the Secret with the cluster's clouds.yaml (its application credential) and the cloud's name in it")
	identity.Properties = map[string]clusterv1.JSONSchemaProps{"name": schema("string", "Secret name"), "cloudName": schema("string", "cloud in clouds.yaml")}
	identity.Required = []string{"name", "cloudName"}
	return []clusterv1.ClusterClassVariable{
		req(VarIdentityRef, identity),
		req(VarNodeCIDR, schema("string", "subnet of the cluster's nodes (node_cidr)")),
		opt(VarDNSNameservers, stringList("DNS servers of the node subnet (dns_nameservers)")),
		opt(VarNetworkMTU, withDefault(schema("integer", "MTU of the cluster network, 0 for the cloud's default (mtu)"), 0)),
		req(VarExternalNetwork, schema("string", "external network for the router and floating IPs (external_network)")),
		opt(VarAPIServerAllowedCIDRs, stringList("CIDRs allowed to reach the API load balancer (restrict_kubeapi)")),
		opt(VarDisableAPIServerFIP, withDefault(schema("boolean", "no floating IP for the API (restrict_kubeapi [none])"), false)),
		opt(VarAPIServerLBProvider, withDefault(schema("string", "Octavia provider of the API load balancer, e.g. ovn (use_ovn_lb_provider)"), "")),
		opt(VarAvailabilityZone, withDefault(schema("string", "Nova availability zone of servers and root volumes (availability_zone)"), "")),
		req(VarControlPlaneFlavor, schema("string", "flavor of control-plane nodes (controller_flavor)")),
		req(VarWorkerFlavor, schema("string", "flavor of worker nodes (worker_flavor)")),
		req(VarImageName, schema("string", "Glance image of the nodes (image_name)")),
		opt(VarControlPlaneServerGroup, withDefault(schema("string", "server group of control-plane nodes (anti_affinity)"), "")),
		opt(VarWorkerServerGroup, withDefault(schema("string", "server group of worker nodes (anti_affinity)"), "")),
		opt(VarControlPlaneRootVolume, withDefault(schema("integer", "root volume size of control-plane nodes in GiB, 0 for the flavor's disk"), 0)),
		opt(VarWorkerRootVolume, withDefault(schema("integer", "root volume size of worker nodes in GiB, 0 for the flavor's disk"), 0)),
		opt(VarControlPlaneMetadata, stringMap("Nova metadata of control-plane servers (controller_metadata)")),
		opt(VarWorkerMetadata, stringMap("Nova metadata of worker servers (worker_metadata)")),
		opt(VarExtraSecurityGroups, stringList("security groups added to every node (the cluster's cilium group)")),
		opt(VarEtcdUnsafeNoFsync, withDefault(schema("boolean", "etcd --unsafe-no-fsync (etcd_unsafe_fs)"), false)),
		opt(VarHTTPProxy, withDefault(schema("string", "HTTP proxy for containerd (http_proxy)"), "")),
		opt(VarNoProxy, withDefault(schema("string", "hosts that bypass the proxy (no_proxy)"), "")),
		opt(VarRegistryMirrorFiles, mirrorFilesSchema()),
		opt(VarTags, stringList("tags CAPO puts on the cluster's OpenStack resources (capilab-lab=<prefix>, capilab-cluster=<name>)")),
		opt(VarLocalLab, withDefault(schema("boolean", "nodes are kind-style containers of devcloud's data plane: kubelet/kubeadm settings such nodes need"), false)),
	}
}

// jp is one JSON patch with a variable or template value.
func jp(op, path string, from clusterv1.JSONPatchValue) clusterv1.JSONPatch {
	return clusterv1.JSONPatch{Op: op, Path: path, ValueFrom: &from}
}

func fromVar(name string) clusterv1.JSONPatchValue { return clusterv1.JSONPatchValue{Variable: name} }

func fromTemplate(t string) clusterv1.JSONPatchValue { return clusterv1.JSONPatchValue{Template: t} }

func selectInfraCluster() clusterv1.PatchSelector {
	return clusterv1.PatchSelector{APIVersion: capoGroupVersion, Kind: "OpenStackClusterTemplate",
		MatchResources: clusterv1.PatchSelectorMatch{InfrastructureCluster: ptr.To(true)}}
}

func selectControlPlane() clusterv1.PatchSelector {
	return clusterv1.PatchSelector{APIVersion: kcpGroupVersion, Kind: "KubeadmControlPlaneTemplate",
		MatchResources: clusterv1.PatchSelectorMatch{ControlPlane: ptr.To(true)}}
}

func selectControlPlaneMachine() clusterv1.PatchSelector {
	return clusterv1.PatchSelector{APIVersion: capoGroupVersion, Kind: "OpenStackMachineTemplate",
		MatchResources: clusterv1.PatchSelectorMatch{ControlPlane: ptr.To(true)}}
}

func selectWorkerMachine() clusterv1.PatchSelector {
	return clusterv1.PatchSelector{APIVersion: capoGroupVersion, Kind: "OpenStackMachineTemplate",
		MatchResources: clusterv1.PatchSelectorMatch{MachineDeploymentClass: &clusterv1.PatchSelectorMatchMachineDeploymentClass{Names: []string{WorkerClass}}}}
}

func selectWorkerBootstrap() clusterv1.PatchSelector {
	return clusterv1.PatchSelector{APIVersion: bootGroupVersion, Kind: "KubeadmConfigTemplate",
		MatchResources: clusterv1.PatchSelectorMatch{MachineDeploymentClass: &clusterv1.PatchSelectorMatchMachineDeploymentClass{Names: []string{WorkerClass}}}}
}

func patch(name, enabledIf string, sel clusterv1.PatchSelector, patches ...clusterv1.JSONPatch) clusterv1.ClusterClassPatch {
	return clusterv1.ClusterClassPatch{Name: name, EnabledIf: enabledIf, Definitions: []clusterv1.PatchDefinition{{Selector: sel, JSONPatches: patches}}}
}

const (
	osc  = "/spec/template/spec"
	kcp  = "/spec/template/spec/kubeadmConfigSpec"
	boot = "/spec/template/spec"
)

// filesTemplate renders the files every node gets: containerd's proxy
// drop-in (http_proxy) and the registry mirrors' host files.
const filesTemplate = `{{- $files := list -}}
{{- if .httpProxy -}}
{{- $files = append $files (dict "path" "/etc/systemd/system/containerd.service.d/http-proxy.conf" "owner" "root:root" "permissions" "0644" "content" (printf "[Service]\nEnvironment=\"HTTP_PROXY=%s\" \"HTTPS_PROXY=%s\" \"NO_PROXY=%s\"\n" .httpProxy .httpProxy .noProxy)) -}}
{{- end -}}
{{- range .registryMirrorFiles -}}
{{- $files = append $files (dict "path" .path "owner" "root:root" "permissions" "0644" "content" .content) -}}
{{- end -}}
{{ toJson $files }}`

// preKubeadmTemplate renders the commands that run before kubeadm: on a
// local-lab node with registry mirrors, containerd learns where the host
// files are (kind's node configuration has no config_path); with a proxy,
// containerd restarts to read its drop-in.
func preKubeadmTemplate() string {
	mirrorCmds, err := json.Marshal(labnode.PreKubeadmCommands(map[string]string{"registry.example": "http://mirror.example"}))
	if err != nil {
		panic(err)
	}
	return `{{- $cmds := list -}}
{{- if and .localLab .registryMirrorFiles -}}{{- $cmds = concat $cmds (fromJson ` + "`" + string(mirrorCmds) + "`" + `) -}}{{- end -}}
{{- if .httpProxy -}}{{- $cmds = concat $cmds (list "systemctl daemon-reload" "systemctl restart containerd") -}}{{- end -}}
{{ toJson $cmds }}`
}

func mirrorFilesSchema() clusterv1.JSONSchemaProps {
	file := schema("object", "")
	file.Properties = map[string]clusterv1.JSONSchemaProps{"path": schema("string", ""), "content": schema("string", "")}
	file.Required = []string{"path", "content"}
	s := schema("array", "containerd host files of the registry mirrors (registry_mirrors), /etc/containerd/certs.d/<registry>/hosts.toml")
	s.Items = &file
	return s
}

// localLabKubeletArgs are the kubelet settings a node container of
// devcloud's data plane needs (internal/dataplane/labnode says why).
func localLabKubeletArgs() []bootstrapv1.Arg {
	var out []bootstrapv1.Arg
	for _, a := range labnode.KubeletExtraArgs {
		out = append(out, bootstrapv1.Arg{Name: a.Name, Value: ptr.To(a.Value)})
	}
	return out
}

func patches() []clusterv1.ClusterClassPatch {
	var ps []clusterv1.ClusterClassPatch
	ps = append(ps,
		patch("identity", "", selectInfraCluster(), jp("replace", osc+"/identityRef", fromVar(VarIdentityRef))),
		patch("network", "", selectInfraCluster(),
			jp("replace", osc+"/managedSubnets", fromTemplate(`[{"cidr": {{ toJson .nodeCIDR }}{{ if .dnsNameservers }}, "dnsNameservers": {{ toJson .dnsNameservers }}{{ end }}}]`)),
			jp("replace", osc+"/externalNetwork", fromTemplate(`{"filter": {"name": {{ toJson .externalNetwork }}}}`))),
		patch("mtu", "{{ if .networkMTU }}true{{ end }}", selectInfraCluster(), jp("add", osc+"/networkMTU", fromVar(VarNetworkMTU))),
		patch("api-allowed-cidrs", "{{ if .apiServerAllowedCIDRs }}true{{ end }}", selectInfraCluster(),
			jp("add", osc+"/apiServerLoadBalancer/allowedCIDRs", fromVar(VarAPIServerAllowedCIDRs))),
		patch("api-floating-ip", "", selectInfraCluster(), jp("add", osc+"/disableAPIServerFloatingIP", fromVar(VarDisableAPIServerFIP))),
		patch("api-lb-provider", "{{ if .apiServerLoadBalancerProvider }}true{{ end }}", selectInfraCluster(),
			jp("add", osc+"/apiServerLoadBalancer/provider", fromVar(VarAPIServerLBProvider))),
		patch("availability-zone", "{{ if .availabilityZone }}true{{ end }}", selectInfraCluster(),
			jp("add", osc+"/controlPlaneAvailabilityZones", fromTemplate(`[{{ toJson .availabilityZone }}]`))),
		patch("tags", "{{ if .tags }}true{{ end }}", selectInfraCluster(), jp("add", osc+"/tags", fromVar(VarTags))),

		patch("control-plane-flavor", "", selectControlPlaneMachine(), jp("replace", osc+"/flavor", fromVar(VarControlPlaneFlavor))),
		patch("worker-flavor", "", selectWorkerMachine(), jp("replace", osc+"/flavor", fromVar(VarWorkerFlavor))),
	)
	for _, m := range []struct {
		role                     string
		sel                      clusterv1.PatchSelector
		group, volume, meta, tag string
	}{
		{"control-plane", selectControlPlaneMachine(), VarControlPlaneServerGroup, VarControlPlaneRootVolume, VarControlPlaneMetadata, "control-plane"},
		{"worker", selectWorkerMachine(), VarWorkerServerGroup, VarWorkerRootVolume, VarWorkerMetadata, "worker"},
	} {
		ps = append(ps,
			patch(m.role+"-image", "", m.sel, jp("replace", osc+"/image", fromTemplate(`{"filter": {"name": {{ toJson .imageName }}}}`))),
			patch(m.role+"-server-group", "{{ if ."+m.group+" }}true{{ end }}", m.sel,
				jp("add", osc+"/serverGroup", fromTemplate(`{"id": {{ toJson .`+m.group+` }}}`))),
			patch(m.role+"-root-volume", "{{ if ."+m.volume+" }}true{{ end }}", m.sel,
				jp("add", osc+"/rootVolume", fromTemplate(`{"sizeGiB": {{ .`+m.volume+` }}{{ if .availabilityZone }}, "availabilityZone": {"from": "Name", "name": {{ toJson .availabilityZone }}}{{ end }}}`))),
			patch(m.role+"-metadata", "{{ if ."+m.meta+" }}true{{ end }}", m.sel,
				jp("add", osc+"/serverMetadata", fromTemplate(`[{{ $first := true }}{{ range $k, $v := .`+m.meta+` }}{{ if not $first }},{{ end }}{{ $first = false }}{"key": {{ toJson $k }}, "value": {{ toJson $v }}}{{ end }}]`))),
			patch(m.role+"-security-groups", "{{ if .extraSecurityGroups }}true{{ end }}", m.sel,
				jp("add", osc+"/securityGroups", fromTemplate(`[{{ range $i, $g := .extraSecurityGroups }}{{ if $i }},{{ end }}{"filter": {"name": {{ toJson $g }}}}{{ end }}]`))),
		)
	}
	ps = append(ps,
		patch("etcd-unsafe-no-fsync", "{{ if .etcdUnsafeNoFsync }}true{{ end }}", selectControlPlane(),
			clusterv1.JSONPatch{Op: "add", Path: kcp + "/clusterConfiguration/etcd/local/extraArgs", Value: rawJSON([]bootstrapv1.Arg{{Name: "unsafe-no-fsync", Value: ptr.To("true")}})}),
		patch("files-control-plane", "{{ if or .httpProxy .registryMirrorFiles }}true{{ end }}", selectControlPlane(),
			jp("add", kcp+"/files", fromTemplate(filesTemplate))),
		patch("files-worker", "{{ if or .httpProxy .registryMirrorFiles }}true{{ end }}", selectWorkerBootstrap(),
			jp("add", boot+"/files", fromTemplate(filesTemplate))),
		patch("pre-kubeadm-control-plane", "{{ if or .httpProxy (and .localLab .registryMirrorFiles) }}true{{ end }}", selectControlPlane(),
			jp("add", kcp+"/preKubeadmCommands", fromTemplate(preKubeadmTemplate()))),
		patch("pre-kubeadm-worker", "{{ if or .httpProxy (and .localLab .registryMirrorFiles) }}true{{ end }}", selectWorkerBootstrap(),
			jp("add", boot+"/preKubeadmCommands", fromTemplate(preKubeadmTemplate()))),
	)
	ps = append(ps, localLabPatches()...)
	return ps
}

// localLabPatches add the kubelet and kubeadm settings kind-style node
// containers need, when the localLab variable is true.
func localLabPatches() []clusterv1.ClusterClassPatch {
	const on = "{{ if .localLab }}true{{ end }}"
	var cp, worker []clusterv1.JSONPatch
	node := func(nr string) []clusterv1.JSONPatch {
		ps := []clusterv1.JSONPatch{
			{Op: "add", Path: nr + "/ignorePreflightErrors", Value: rawJSON(labnode.IgnorePreflightErrors)},
			{Op: "add", Path: nr + "/criSocket", Value: rawJSON(labnode.CRISocket)},
		}
		for _, a := range localLabKubeletArgs() {
			ps = append(ps, clusterv1.JSONPatch{Op: "add", Path: nr + "/kubeletExtraArgs/-", Value: rawJSON(a)})
		}
		return ps
	}
	cp = append(node(kcp+"/initConfiguration/nodeRegistration"), node(kcp+"/joinConfiguration/nodeRegistration")...)
	worker = node(boot + "/joinConfiguration/nodeRegistration")
	return []clusterv1.ClusterClassPatch{
		patch("local-lab-control-plane", on, selectControlPlane(), cp...),
		patch("local-lab-worker", on, selectWorkerBootstrap(), worker...),
	}
}

// nodeRegistration is what every node registers with: the name and provider
// ID come from the instance, rendered by cloud-init from Nova's metadata
// (CAPO's convention), and the kubelet waits for the cloud controller.
func nodeRegistration() bootstrapv1.NodeRegistrationOptions {
	return bootstrapv1.NodeRegistrationOptions{
		Name: "{{ local_hostname }}",
		KubeletExtraArgs: []bootstrapv1.Arg{
			{Name: "cloud-provider", Value: ptr.To("external")},
			{Name: "provider-id", Value: ptr.To("openstack:///'{{ instance_id }}'")},
		},
	}
}

// Templates is the ClusterClass's templates in a namespace; names carry a
// hash of their content, because the providers treat templates as
// immutable: a changed template is a new one, and the ClusterClass's
// reference to it rolls the machines.
type Templates struct {
	Cluster      *capov1.OpenStackClusterTemplate
	ControlPlane *controlplanev1.KubeadmControlPlaneTemplate
	Worker       *bootstrapv1.KubeadmConfigTemplate
	CPMachine    *capov1.OpenStackMachineTemplate
	WorkerMach   *capov1.OpenStackMachineTemplate
}

func meta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "capilab"}}
}

func newTemplates(namespace string) Templates {
	machine := func() capov1.OpenStackMachineTemplateSpec {
		return capov1.OpenStackMachineTemplateSpec{Template: capov1.OpenStackMachineTemplateResource{Spec: capov1.OpenStackMachineSpec{
			Flavor: ptr.To("set-by-the-cluster-class"),
			Image:  capov1.ImageParam{Filter: &capov1.ImageFilter{Name: ptr.To("set-by-the-cluster-class")}},
		}}}
	}
	t := Templates{
		Cluster: &capov1.OpenStackClusterTemplate{
			TypeMeta: metav1.TypeMeta{APIVersion: capoGroupVersion, Kind: "OpenStackClusterTemplate"},
			Spec: capov1.OpenStackClusterTemplateSpec{Template: capov1.OpenStackClusterTemplateResource{Spec: capov1.OpenStackClusterSpec{
				IdentityRef:           capov1.OpenStackIdentityReference{Name: "set-by-the-cluster-class", CloudName: "set-by-the-cluster-class"},
				ManagedSubnets:        []capov1.SubnetSpec{{CIDR: "10.8.0.0/20"}},
				ExternalNetwork:       &capov1.NetworkParam{Filter: &capov1.NetworkFilter{Name: "set-by-the-cluster-class"}},
				APIServerLoadBalancer: &capov1.APIServerLoadBalancer{Enabled: ptr.To(true)},
				ManagedSecurityGroups: &capov1.ManagedSecurityGroups{AllowAllInClusterTraffic: true},
			}}},
		},
		ControlPlane: &controlplanev1.KubeadmControlPlaneTemplate{
			TypeMeta: metav1.TypeMeta{APIVersion: kcpGroupVersion, Kind: "KubeadmControlPlaneTemplate"},
			Spec: controlplanev1.KubeadmControlPlaneTemplateSpec{Template: controlplanev1.KubeadmControlPlaneTemplateResource{Spec: controlplanev1.KubeadmControlPlaneTemplateResourceSpec{
				KubeadmConfigSpec: bootstrapv1.KubeadmConfigSpec{
					// kubeadm's default, spelt out so that patches have a place for etcd's arguments.
					ClusterConfiguration: bootstrapv1.ClusterConfiguration{Etcd: bootstrapv1.Etcd{Local: bootstrapv1.LocalEtcd{DataDir: "/var/lib/etcd"}}},
					InitConfiguration:    bootstrapv1.InitConfiguration{NodeRegistration: nodeRegistration()},
					JoinConfiguration:    bootstrapv1.JoinConfiguration{NodeRegistration: nodeRegistration()},
					Format:               bootstrapv1.CloudConfig,
				},
			}}},
		},
		Worker: &bootstrapv1.KubeadmConfigTemplate{
			TypeMeta: metav1.TypeMeta{APIVersion: bootGroupVersion, Kind: "KubeadmConfigTemplate"},
			Spec: bootstrapv1.KubeadmConfigTemplateSpec{Template: bootstrapv1.KubeadmConfigTemplateResource{Spec: bootstrapv1.KubeadmConfigSpec{
				JoinConfiguration: bootstrapv1.JoinConfiguration{NodeRegistration: nodeRegistration()},
				Format:            bootstrapv1.CloudConfig,
			}}},
		},
		CPMachine:  &capov1.OpenStackMachineTemplate{TypeMeta: metav1.TypeMeta{APIVersion: capoGroupVersion, Kind: "OpenStackMachineTemplate"}, Spec: machine()},
		WorkerMach: &capov1.OpenStackMachineTemplate{TypeMeta: metav1.TypeMeta{APIVersion: capoGroupVersion, Kind: "OpenStackMachineTemplate"}, Spec: machine()},
	}
	name := func(role string, spec any) metav1.ObjectMeta {
		return meta(namespace, "capilab-"+role+"-"+contentHash(spec))
	}
	t.Cluster.ObjectMeta = name("cluster", t.Cluster.Spec)
	t.ControlPlane.ObjectMeta = name("control-plane", t.ControlPlane.Spec)
	t.Worker.ObjectMeta = name("worker", t.Worker.Spec)
	t.CPMachine.ObjectMeta = name("control-plane-machine", t.CPMachine.Spec)
	t.WorkerMach.ObjectMeta = name("worker-machine", t.WorkerMach.Spec)
	return t
}

func contentHash(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:8]
}

func ref(o client.Object, apiVersion, kind string) clusterv1.ClusterClassTemplateReference {
	return clusterv1.ClusterClassTemplateReference{APIVersion: apiVersion, Kind: kind, Name: o.GetName()}
}

// ClassObjects is the ClusterClass and its templates for one namespace, in
// apply order.
func ClassObjects(namespace string) []client.Object {
	t := newTemplates(namespace)
	cc := &clusterv1.ClusterClass{
		TypeMeta:   metav1.TypeMeta{APIVersion: clusterv1.GroupVersion.String(), Kind: "ClusterClass"},
		ObjectMeta: meta(namespace, ClassName),
		Spec: clusterv1.ClusterClassSpec{
			Infrastructure: clusterv1.InfrastructureClass{TemplateRef: ref(t.Cluster, capoGroupVersion, "OpenStackClusterTemplate")},
			ControlPlane: clusterv1.ControlPlaneClass{
				TemplateRef: ref(t.ControlPlane, kcpGroupVersion, "KubeadmControlPlaneTemplate"),
				MachineInfrastructure: clusterv1.ControlPlaneClassMachineInfrastructureTemplate{
					TemplateRef: ref(t.CPMachine, capoGroupVersion, "OpenStackMachineTemplate")},
			},
			Workers: clusterv1.WorkersClass{MachineDeployments: []clusterv1.MachineDeploymentClass{{
				Class:          WorkerClass,
				Bootstrap:      clusterv1.MachineDeploymentClassBootstrapTemplate{TemplateRef: ref(t.Worker, bootGroupVersion, "KubeadmConfigTemplate")},
				Infrastructure: clusterv1.MachineDeploymentClassInfrastructureTemplate{TemplateRef: ref(t.WorkerMach, capoGroupVersion, "OpenStackMachineTemplate")},
			}}},
			Variables: variables(),
			Patches:   patches(),
		},
	}
	return []client.Object{t.Cluster, t.ControlPlane, t.Worker, t.CPMachine, t.WorkerMach, cc}
}

// VariableNames lists the ClusterClass's variables.
func VariableNames() []string {
	var out []string
	for _, v := range variables() {
		out = append(out, v.Name)
	}
	return out
}
