package addons

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/dirhash"

	"github.com/capilab/capilab/internal/versions"
)

// Small stand-ins for the upstream modules, written for these tests: the
// same layout and the objects the edits reach, nothing else. (The real
// manifests are rendered by the integration tests.)

var fakeCPO = map[string]string{
	"manifests/controller-manager/cloud-controller-manager-roles.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:cloud-controller-manager
rules: []
`,
	"manifests/controller-manager/cloud-controller-manager-role-bindings.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:cloud-controller-manager
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:cloud-controller-manager}
subjects: [{kind: ServiceAccount, name: cloud-controller-manager, namespace: kube-system}]
`,
	"manifests/controller-manager/openstack-cloud-controller-manager-ds.yaml": `apiVersion: v1
kind: ServiceAccount
metadata: {name: cloud-controller-manager, namespace: kube-system}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: openstack-cloud-controller-manager, namespace: kube-system}
spec:
  selector: {matchLabels: {k8s-app: occm}}
  template:
    metadata: {labels: {k8s-app: occm}}
    spec:
      containers:
        - name: openstack-cloud-controller-manager
          image: registry.k8s.io/provider-os/openstack-cloud-controller-manager:v1.36.0
          args: [/bin/openstack-cloud-controller-manager, --cluster-name=$(CLUSTER_NAME), --cloud-config=$(CLOUD_CONFIG)]
          env:
            - {name: CLOUD_CONFIG, value: /etc/config/cloud.conf}
            - {name: CLUSTER_NAME, value: kubernetes}
      volumes:
        - {name: cloud-config-volume, secret: {secretName: cloud-config}}
`,
	"manifests/cinder-csi-plugin/cinder-csi-controllerplugin-rbac.yaml": `apiVersion: v1
kind: ServiceAccount
metadata: {name: csi-cinder-controller-sa, namespace: kube-system}
`,
	"manifests/cinder-csi-plugin/cinder-csi-controllerplugin.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: csi-cinder-controllerplugin, namespace: kube-system}
spec:
  selector: {matchLabels: {app: ctrl}}
  template:
    metadata: {labels: {app: ctrl}}
    spec:
      containers:
        - {name: csi-attacher, image: "registry.k8s.io/sig-storage/csi-attacher:v4.10.0"}
        - {name: csi-provisioner, image: "registry.k8s.io/sig-storage/csi-provisioner:v5.3.0"}
        - {name: liveness-probe, image: "registry.k8s.io/sig-storage/livenessprobe:v2.17.0"}
        - name: cinder-csi-plugin
          image: registry.k8s.io/provider-os/cinder-csi-plugin:v1.36.0
          args: [/bin/cinder-csi-plugin, "--cluster=$(CLUSTER_NAME)"]
          env: [{name: CLUSTER_NAME, value: kubernetes}]
          livenessProbe: {httpGet: {path: /healthz, port: healthz}}
`,
	"manifests/cinder-csi-plugin/cinder-csi-nodeplugin-rbac.yaml": `apiVersion: v1
kind: ServiceAccount
metadata: {name: csi-cinder-node-sa, namespace: kube-system}
`,
	"manifests/cinder-csi-plugin/cinder-csi-nodeplugin.yaml": `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: csi-cinder-nodeplugin, namespace: kube-system}
spec:
  selector: {matchLabels: {app: node}}
  template:
    metadata: {labels: {app: node}}
    spec:
      containers:
        - {name: node-driver-registrar, image: "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.15.0"}
        - {name: cinder-csi-plugin, image: "registry.k8s.io/provider-os/cinder-csi-plugin:v1.36.0", args: [/bin/cinder-csi-plugin]}
`,
	"manifests/cinder-csi-plugin/csi-cinder-driver.yaml": `apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata: {name: cinder.csi.openstack.org}
spec: {attachRequired: true}
`,
	"manifests/cinder-csi-plugin/csi-secret-cinderplugin.yaml": `apiVersion: v1
kind: Secret
metadata: {name: cloud-config, namespace: kube-system}
data: {cloud.conf: c2FtcGxl}
`,
}

var fakeMetricsServer = map[string]string{
	"manifests/base/kustomization.yaml": "resources: [deployment.yaml]\n",
	"manifests/base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: metrics-server, namespace: kube-system}
spec:
  selector: {matchLabels: {k8s-app: metrics-server}}
  template:
    metadata: {labels: {k8s-app: metrics-server}}
    spec:
      containers:
        - {name: metrics-server, image: "gcr.io/staging/metrics-server:master", args: [--secure-port=10250]}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec: {group: metrics.k8s.io, version: v1beta1, service: {name: metrics-server, namespace: kube-system}}
`,
	"manifests/overlays/release/kustomization.yaml": `resources: [../../base]
images:
  - {name: gcr.io/staging/metrics-server, newName: registry.k8s.io/metrics-server/metrics-server, newTag: v0.8.0}
`,
}

func crdYAML(group, plural, kind string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[2]s.%[1]s}
spec:
  group: %[1]s
  names: {plural: %[2]s, kind: %[3]s}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
`, group, plural, kind)
}

var fakeGatewayAPI = map[string]string{
	"config/crd/kustomization.yaml":     "resources: [standard/gateways.yaml]\n",
	"config/crd/standard/gateways.yaml": crdYAML("gateway.networking.k8s.io", "gateways", "Gateway"),
}

var fakeSnapshotter = map[string]string{
	"deploy/kubernetes/snapshot-controller/kustomization.yaml": "resources: [setup.yaml]\n",
	"deploy/kubernetes/snapshot-controller/setup.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: snapshot-controller, namespace: kube-system}
spec:
  selector: {matchLabels: {app: snapshot-controller}}
  template:
    metadata: {labels: {app: snapshot-controller}}
    spec:
      containers: [{name: snapshot-controller, image: "registry.k8s.io/sig-storage/snapshot-controller:v8.2.1"}]
`,
}

var fakeSnapshotCRDs = map[string]string{
	"config/crd/kustomization.yaml": "resources: [vs.yaml]\n",
	"config/crd/vs.yaml":            crdYAML("snapshot.storage.k8s.io", "volumesnapshots", "VolumeSnapshot"),
}

// fakeModules is a ModuleFetcher over directories written by the test.
type fakeModules struct {
	dirs  map[string]string // module@version -> dir
	calls int
}

func (f *fakeModules) ModuleDir(_ context.Context, module, version string) (string, error) {
	f.calls++
	if d, ok := f.dirs[module+"@"+version]; ok {
		return d, nil
	}
	return "", fmt.Errorf("%s@%s: not served", module, version)
}

// writeModule writes files into a directory and returns it with its go.sum hash.
func writeModule(t *testing.T, module, version string, files map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := dirhash.HashDir(dir, module+"@"+version, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	return dir, sum
}

// fixture is a renderer over fake modules, with pins whose sums match them.
type fixture struct {
	pins    versions.Addons
	modules *fakeModules
	cache   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{modules: &fakeModules{dirs: map[string]string{}}, cache: t.TempDir()}
	add := func(module, version string, files map[string]string) string {
		dir, sum := writeModule(t, module, version, files)
		f.modules.dirs[module+"@"+version] = dir
		return sum
	}
	f.pins = versions.Addons{
		Helm: versions.Tool{Module: "example.com/helm", Version: "v3.0.0"},
		CloudProviderOpenStack: versions.AddonSource{Module: "example.com/cpo", Releases: []versions.AddonRelease{
			{Version: "v1.36.0", Sum: add("example.com/cpo", "v1.36.0", fakeCPO)}}},
		MetricsServer: versions.AddonSource{Pin: "v0.8.0", Module: "example.com/ms", Releases: []versions.AddonRelease{
			{Version: "v0.8.0", Sum: add("example.com/ms", "v0.8.0", fakeMetricsServer)}}},
		GatewayAPI: versions.AddonSource{Pin: "v1.4.0", Module: "example.com/gw", Releases: []versions.AddonRelease{
			{Version: "v1.4.0", Sum: add("example.com/gw", "v1.4.0", fakeGatewayAPI)}}},
		SnapshotController: versions.AddonSource{Pin: "v8.4.0", Module: "example.com/snap", CRDModule: "example.com/snap/client", Releases: []versions.AddonRelease{
			{Version: "v8.4.0", Sum: add("example.com/snap", "v8.4.0", fakeSnapshotter), CRDSum: add("example.com/snap/client", "v8.4.0", fakeSnapshotCRDs)}}},
		LocalImages: versions.LocalImages{CSIAttacher: versions.LocalImage{Substitute: map[string]string{"v4.10.0": "v4.12.0"}}},
	}
	return f
}

func (f *fixture) renderer(t *testing.T) *Renderer {
	return &Renderer{Pins: f.pins, Sources: &Sources{Modules: f.modules, CacheDir: f.cache, HTTP: offline}}
}

// offline is an HTTP client that never reaches the network (unit tests are hermetic).
var offline = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
	return nil, &net.DNSError{Err: "no network in unit tests", Name: r.URL.Host, IsNotFound: true}
})}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var testCluster = ClusterInfo{Name: "alpha", Namespace: "alpha", KubernetesVersion: "v1.37.2", PodCIDR: "10.244.0.0/16",
	CloudConf: []byte("[Global]\napplication-credential-secret=\"s3cr3t\"\n")}
