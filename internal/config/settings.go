// Package config is capilab's one settings model: every knob a user can turn,
// its default, where its value came from, and the rules that make a value
// valid. Sources, lowest to highest: defaults → settings file (LAB_CONFIG,
// default ./lab.yaml, optional) → per-cluster file clusters/<name>/cluster.yaml
// → environment (UPPER_CASE names; `make VAR=value` passes them through).
//
// The knobs are the fields of Settings; their struct tags are the single
// source of the YAML key, the environment name, the group and the doc line
// that `make config` and the README table print.
package config

import "time"

// Settings holds every knob. Field tags:
//
//	key:"yaml_key"    YAML key; the environment name is its UPPER_CASE form
//	env:"NAME,ALIAS"  environment names when they differ from UPPER_CASE(key)
//	group:"..."       lab | cluster | addons | run (README and `make config` sections)
//	doc:"..."         one line for the README table and `make config`
//	secret:"true"     value is never printed
type Settings struct {
	// --- lab: the management side (SCS terraform variables) ---
	Cloud              string            `key:"cloud" env:"OS_CLOUD" group:"lab" doc:"clouds.yaml entry to use (standard OS_CLOUD lookup)"`
	Prefix             string            `key:"prefix" group:"lab" doc:"name prefix of everything the lab creates; identifies the lab in a project"`
	AvailabilityZone   string            `key:"availability_zone" group:"lab" doc:"Nova availability zone for servers and volumes (empty: cloud default)"`
	MgmtImage          string            `key:"mgmt_image" group:"lab" doc:"image of the optional remote management VM (SCS: image)"`
	SSHUsername        string            `key:"ssh_username" group:"lab" doc:"login user of the management VM image"`
	KindFlavor         string            `key:"kind_flavor" group:"lab" doc:"flavor of the optional remote management VM"`
	ExternalNetwork    string            `key:"external_network" group:"lab" doc:"external network name or ID for floating IPs (empty: auto-detect)"`
	DNSNameservers     []string          `key:"dns_nameservers" group:"lab" doc:"DNS servers for the lab's subnets"`
	KindMTU            int               `key:"kind_mtu" group:"lab" doc:"MTU of the kind network (0: auto)"`
	HTTPProxy          string            `key:"http_proxy" env:"LAB_HTTP_PROXY" group:"lab" doc:"HTTP proxy for the management node and clusters (credentials in it are redacted)"`
	NoProxy            string            `key:"no_proxy" env:"LAB_NO_PROXY" group:"lab" doc:"hosts that bypass http_proxy"`
	RestrictMgmtServer []string          `key:"restrict_mgmt_server" group:"lab" doc:"CIDRs allowed to reach the management VM"`
	MgmtCIDR           string            `key:"mgmt_cidr" group:"lab" doc:"subnet of the management VM's network"`
	KindNodeImage      string            `key:"kind_node_image" group:"lab" doc:"kind node image for the management cluster (empty: the pinned upstream image)"`
	RegistryMirrors    map[string]string `key:"registry_mirrors" group:"lab" doc:"containerd registry mirrors of kind and workload nodes: upstream registry → mirror URL (a path is a namespace in the mirror; devcloud: http://172.24.4.1:5001/<registry>)"`
	MgmtMode           string            `key:"mgmt_mode" group:"lab" doc:"where the management cluster runs: local (kind on this machine) or remote (kind on a VM in the cloud, built with OpenTofu/Terraform from terraform/)"`
	Tofu               string            `key:"tofu" group:"lab" doc:"OpenTofu or Terraform binary for mgmt_mode remote (empty: tofu or terraform from PATH, else OpenTofu built from its Go module)"`
	ProviderSource     string            `key:"provider_source" group:"lab" doc:"Cluster API providers: upstream (released components and images), local (built from their Go modules, no registry) or auto (upstream when registry.k8s.io resolves)"`
	StateDir           string            `key:"state_dir" group:"lab" doc:"local state: credentials (0600), kubeconfigs, per-cluster records"`
	ArtifactsDir       string            `key:"artifacts_dir" group:"lab" doc:"for CI: the JSON reports of fullclean and leakcheck, the reports of the checks (check/) and of the nightly run (nightly/), and what a cluster wait that timed out dumps (conditions, events, controller logs)"`

	// --- cluster: workload clusters (SCS clusterctl.yaml / terraform variables) ---
	KubernetesVersion          string            `key:"kubernetes_version" group:"cluster" doc:"workload Kubernetes version (v1.N.x = newest pinned patch)"`
	Namespace                  string            `key:"namespace" group:"cluster" doc:"Kubernetes namespace of the cluster's CAPI objects (empty: the cluster name)"`
	KubeImageRaw               bool              `key:"kube_image_raw" group:"cluster" doc:"convert the node image qcow2 to raw before upload (better on Ceph)"`
	ImageName                  string            `key:"image_name" group:"cluster" doc:"Glance name of the node image (empty: ubuntu-capi-image-<version>)"`
	ImageURL                   string            `key:"image_url" group:"cluster" doc:"node image source instead of the catalog: https://, file:// or a local path"`
	ImageSHA256                string            `key:"image_sha256" group:"cluster" doc:"sha256 of image_url (required with image_url)"`
	ImageExtraProperties       map[string]string `key:"image_extra_properties" group:"cluster" doc:"extra Glance properties for the node image (SCS: image_registration_extra_flags)"`
	ImageReuseForeign          bool              `key:"image_reuse_foreign" group:"cluster" doc:"use an active image of that name that capilab did not register (one the cloud publishes, as SCS did) as it is: its source and checksum are not verified"`
	ControllerFlavor           string            `key:"controller_flavor" group:"cluster" doc:"flavor of control-plane nodes"`
	WorkerFlavor               string            `key:"worker_flavor" group:"cluster" doc:"flavor of worker nodes"`
	ControllerCount            int               `key:"controller_count" group:"cluster" doc:"control-plane nodes: 0 (no test cluster), 1, 3, 5 or 7"`
	WorkerCount                int               `key:"worker_count" group:"cluster" doc:"worker nodes (0-100)"`
	ControllerMetadata         map[string]string `key:"controller_metadata" group:"cluster" doc:"Nova metadata of control-plane servers"`
	WorkerMetadata             map[string]string `key:"worker_metadata" group:"cluster" doc:"Nova metadata of worker servers"`
	NodeCIDR                   string            `key:"node_cidr" group:"cluster" doc:"subnet of the cluster's nodes"`
	PodCIDR                    string            `key:"pod_cidr" group:"cluster" doc:"pod network"`
	ServiceCIDR                string            `key:"service_cidr" group:"cluster" doc:"service network"`
	MTU                        int               `key:"mtu" env:"MTU,MTU_VALUE" group:"cluster" doc:"MTU of the cluster network (0: cloud MTU - 50, rounded down to 8)"`
	CNI                        string            `key:"cni" group:"cluster" doc:"CNI: cilium or calico (SCS: use_cilium)"`
	CNIVersion                 string            `key:"cni_version" group:"cluster" doc:"CNI version (empty: the pinned one)"`
	AntiAffinity               bool              `key:"anti_affinity" group:"cluster" doc:"spread nodes with server groups <prefix>-<cluster>-controller/-worker"`
	SoftAntiAffinityController bool              `key:"soft_anti_affinity_controller" group:"cluster" doc:"soft instead of hard anti-affinity for control-plane nodes"`
	EtcdUnsafeFS               bool              `key:"etcd_unsafe_fs" group:"cluster" doc:"etcd --unsafe-no-fsync (test clusters on slow disks, where etcd leader changes fail conformance tests)"`
	UseOVNLBProvider           string            `key:"use_ovn_lb_provider" group:"cluster" doc:"Octavia OVN provider: false, auto or true"`
	RestrictKubeAPI            []string          `key:"restrict_kubeapi" group:"cluster" doc:"CIDRs allowed to reach the API load balancer ([] all, [none] internal only)"`
	CAPOInstanceCreateTimeout  int               `key:"capo_instance_create_timeout" group:"cluster" doc:"minutes CAPO waits for a server to become ACTIVE"`
	AppcredExpiry              time.Duration     `key:"appcred_expiry" group:"cluster" doc:"lifetime of per-cluster application credentials (0: no expiry)"`

	// --- addons: true, false or a version string (as SCS accepts) ---
	DeployMetrics      string `key:"deploy_metrics" group:"addons" doc:"metrics-server"`
	DeployNginxIngress string `key:"deploy_nginx_ingress" group:"addons" doc:"ingress-nginx"`
	DeployGatewayAPI   string `key:"deploy_gateway_api" group:"addons" doc:"Gateway API CRDs"`
	DeployCertManager  string `key:"deploy_cert_manager" group:"addons" doc:"cert-manager"`
	DeployFlux         string `key:"deploy_flux" group:"addons" doc:"flux"`
	DeployOCCM         string `key:"deploy_occm" group:"addons" doc:"OpenStack cloud controller manager"`
	DeployCinderCSI    string `key:"deploy_cindercsi" group:"addons" doc:"Cinder CSI and the snapshot controller"`
	DeployHarbor       string `key:"deploy_harbor" group:"addons" doc:"Harbor registry (not supported by capilab yet: must stay false)"`

	// --- run: what one invocation acts on ---
	Cluster           string        `key:"cluster" env:"CLUSTER,TESTCLUSTER" group:"run" doc:"workload cluster the cluster, check and appcred targets act on (SCS: testcluster_name)"`
	Clusters          []string      `key:"clusters" group:"run" doc:"fullclean/leakcheck: only these clusters (empty: every cluster of the lab and the lab itself)"`
	DryRun            bool          `key:"dry_run" group:"run" doc:"destructive targets print and record their plan and change nothing"`
	OlderThan         time.Duration `key:"older_than" group:"run" doc:"fullclean/leakcheck: only resources created longer ago than this (e.g. 24h; 0: any age); those whose age the cloud does not report follow their cluster"`
	LeakScope         string        `key:"leak_scope" group:"run" doc:"leakcheck counts: clusters (what outlives its cluster; the lab's own resources are living, not leaks) or lab (everything the lab owns)"`
	Sonomode          string        `key:"sonomode" group:"run" doc:"make check: quick, certified-conformance, storage or csi"`
	Parallelism       int           `key:"parallelism" group:"run" doc:"concurrent cloud operations (cleanup worker pool)"`
	ImageTimeout      time.Duration `key:"image_timeout" group:"run" doc:"bound on waiting for a node image to become active"`
	AppcredScope      string        `key:"appcred_scope" group:"run" doc:"appcred targets act on: cluster (create: the lab's and CLUSTER's credential; delete: CLUSTER's) or lab (the lab's only)"`
	DeleteTimeout     time.Duration `key:"delete_timeout" group:"run" doc:"bound on waiting for one asynchronous deletion (load balancer, volume, server)"`
	RemoteTimeout     time.Duration `key:"remote_timeout" group:"run" doc:"mgmt_mode remote: bound on waiting for the management node (its bootstrap and make create after apply, make clean on it)"`
	Kubeconfig        string        `key:"kubeconfig" group:"run" doc:"check targets: kubeconfig of the cluster to check (empty: <state_dir>/clusters/<cluster>/kubeconfig); a list like KUBECONFIG's is merged"`
	CheckTimeout      time.Duration `key:"check_timeout" group:"run" doc:"bound on a whole check run (0: the mode's default: quick 15m, certified-conformance 4h, storage 3h, csi 3h)"`
	E2EFocus          string        `key:"e2e_focus" group:"run" doc:"check targets: ginkgo focus regexp instead of the mode's"`
	E2ESkip           string        `key:"e2e_skip" group:"run" doc:"check targets: ginkgo skip regexp instead of the mode's"`
	E2EParallel       string        `key:"e2e_parallel" group:"run" doc:"check targets: false, true (the runner picks the process count) or a process count; parallel runs skip [Serial] tests unless E2E_SKIP is set"`
	E2EDryRun         bool          `key:"e2e_dryrun" group:"run" doc:"check targets: list the tests the selection picks, run none"`
	E2ERepoConfig     string        `key:"e2e_repo_config" group:"run" doc:"check targets: registry overrides of the e2e test images (KUBE_TEST_REPO_LIST file of the e2e framework), e.g. a registry mirror"`
	CSITestDriver     string        `key:"csi_test_driver" group:"run" doc:"check-csi: test-driver definition of the CSI driver under test (empty: capilab's Cinder CSI definition)"`
	LogFormat         string        `key:"log_format" group:"run" doc:"text or json"`
	LogLevel          string        `key:"log_level" group:"run" doc:"debug, info, warn or error"`
	WaitControllers   time.Duration `key:"wait_controllers" group:"run" doc:"bound on waiting for the management cluster's controllers to become Available"`
	WaitDeleteCluster time.Duration `key:"wait_delete_cluster" group:"run" doc:"bound on waiting for one workload cluster to be deleted through Cluster API"`
	WaitCluster       time.Duration `key:"wait_cluster" group:"run" doc:"bound on waiting for a workload cluster's infrastructure (network, router, security groups, API load balancer)"`
	WaitControlPlane  time.Duration `key:"wait_control_plane" group:"run" doc:"bound on waiting for a workload cluster's control plane to initialize, and again to become available"`
	WaitWorkers       time.Duration `key:"wait_workers" group:"run" doc:"bound on waiting for a workload cluster's workers to become available"`
	WaitAddons        time.Duration `key:"wait_addons" group:"run" doc:"bound on waiting for a workload cluster's addons to become Ready"`
}

// Defaults returns the value of every knob before any source is read. The
// workload Kubernetes version default comes from the pinned-versions file.
func Defaults(kubernetesDefault string) Settings {
	return Settings{
		Prefix:             "capi",
		MgmtImage:          "Ubuntu 22.04",
		SSHUsername:        "ubuntu",
		KindFlavor:         "SCS-2V-4",
		DNSNameservers:     []string{"5.1.66.255", "185.150.99.255"},
		RestrictMgmtServer: []string{"0.0.0.0/0"},
		MgmtCIDR:           "10.0.0.0/24",
		MgmtMode:           "local",
		ProviderSource:     "auto",
		StateDir:           "state",
		ArtifactsDir:       "artifacts",

		KubernetesVersion:         kubernetesDefault,
		KubeImageRaw:              true,
		ImageExtraProperties:      map[string]string{},
		RegistryMirrors:           map[string]string{},
		ControllerFlavor:          "SCS-2V-4-20s",
		WorkerFlavor:              "SCS-2V-4-20s",
		ControllerCount:           1,
		WorkerCount:               3,
		ControllerMetadata:        map[string]string{},
		WorkerMetadata:            map[string]string{},
		NodeCIDR:                  "10.8.0.0/20",
		PodCIDR:                   "192.168.0.0/16",
		ServiceCIDR:               "10.96.0.0/12",
		CNI:                       "cilium",
		AntiAffinity:              true,
		UseOVNLBProvider:          "false",
		RestrictKubeAPI:           []string{},
		CAPOInstanceCreateTimeout: 5,

		DeployMetrics:      "true",
		DeployNginxIngress: "true",
		DeployGatewayAPI:   "false",
		DeployCertManager:  "false",
		DeployFlux:         "false",
		DeployOCCM:         "true",
		DeployCinderCSI:    "true",
		DeployHarbor:       "false",

		Cluster:           "testcluster",
		Clusters:          []string{},
		LeakScope:         "clusters",
		Sonomode:          "quick",
		Parallelism:       8,
		ImageTimeout:      30 * time.Minute,
		AppcredScope:      "cluster",
		DeleteTimeout:     10 * time.Minute,
		RemoteTimeout:     60 * time.Minute,
		LogFormat:         "text",
		LogLevel:          "info",
		WaitControllers:   10 * time.Minute,
		WaitDeleteCluster: 20 * time.Minute,
		WaitCluster:       20 * time.Minute,
		WaitControlPlane:  30 * time.Minute,
		WaitWorkers:       30 * time.Minute,
		WaitAddons:        15 * time.Minute,
	}
}

// ClusterNamespace is the Kubernetes namespace of a workload cluster's CAPI
// objects: the namespace setting, or the cluster name (as SCS does).
func (s *Settings) ClusterNamespace() string {
	if s.Namespace != "" {
		return s.Namespace
	}
	return s.Cluster
}
