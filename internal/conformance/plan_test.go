package conformance

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vmware-tanzu/sonobuoy/pkg/client"
	sonoconfig "github.com/vmware-tanzu/sonobuoy/pkg/config"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func basePlan(mode Mode) Plan {
	return Plan{
		Mode: mode, Selection: mode.Selection(), KubeVersion: "v1.2.3",
		WorkerImage: "sonobuoy/sonobuoy:v9.9.9", SonobuoyVersion: "v9.9.9", Timeout: 30 * time.Minute,
	}
}

// manifest generates the YAML sonobuoy would apply and returns the
// documents by kind/name.
func genManifest(t *testing.T, p Plan) map[string]string {
	t.Helper()
	gen, err := p.GenConfig()
	if err != nil {
		t.Fatal(err)
	}
	var sc client.SonobuoyClient
	out, err := sc.GenerateManifest(gen)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, d := range strings.Split(string(out), "\n---\n") {
		var meta struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := yaml.Unmarshal([]byte(d), &meta); err != nil || meta.Kind == "" {
			continue
		}
		docs[meta.Kind+"/"+meta.Metadata.Name] = d
	}
	return docs
}

func TestGenConfigQuick(t *testing.T) {
	p := basePlan(ModeQuick)
	p.Annotations = map[string]string{AnnotationOwner: "host pid 1"}
	docs := genManifest(t, p)
	agg := docs["Pod/sonobuoy"]
	for _, want := range []string{"image: sonobuoy/sonobuoy:v9.9.9", "--level=info", AnnotationOwner + ": host pid 1"} {
		if !strings.Contains(agg, want) {
			t.Errorf("aggregator pod lacks %q:\n%s", want, agg)
		}
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal([]byte(docs["ConfigMap/sonobuoy-plugins-cm"]), &cm); err != nil {
		t.Fatal(err)
	}
	if len(cm.Data) != 1 {
		t.Fatalf("%d plugins, want only e2e: %v", len(cm.Data), cm.Data)
	}
	plugin := cm.Data["plugin-0.yaml"]
	for _, want := range []string{
		"image: registry.k8s.io/conformance:v1.2.3",
		"value: Pods should be submitted and removed",
		"--progress-report-url=http://localhost:8099/progress",
		"name: E2E_USE_GO_RUNNER",
	} {
		if !strings.Contains(plugin, want) {
			t.Errorf("e2e plugin lacks %q:\n%s", want, plugin)
		}
	}
	for _, unwanted := range []string{"storage.testdriver", "E2E_PARALLEL\n      value: \"true\"", "systemd-logs", "KUBE_TEST_REPO_LIST", "E2E_PROVIDER"} {
		if strings.Contains(plugin, unwanted) {
			t.Errorf("e2e plugin has %q:\n%s", unwanted, plugin)
		}
	}
	var ccm corev1.ConfigMap
	if err := yaml.Unmarshal([]byte(docs["ConfigMap/sonobuoy-config-cm"]), &ccm); err != nil {
		t.Fatal(err)
	}
	var cfg sonoconfig.Config
	if err := json.Unmarshal([]byte(ccm.Data["config.json"]), &cfg); err != nil {
		t.Fatal(err)
	}
	// the worker sidecar the aggregator adds to plugin pods is the pinned
	// image, not the library's compiled-in default
	if cfg.WorkerImage != "sonobuoy/sonobuoy:v9.9.9" || cfg.Version != "v9.9.9" || cfg.Aggregation.TimeoutSeconds != 28*60 {
		t.Errorf("sonobuoy config: worker %q, version %q, aggregator timeout %ds", cfg.WorkerImage, cfg.Version, cfg.Aggregation.TimeoutSeconds)
	}
	for _, kind := range []string{"Namespace/sonobuoy", "ClusterRole/sonobuoy-serviceaccount-sonobuoy", "ClusterRoleBinding/sonobuoy-serviceaccount-sonobuoy"} {
		if docs[kind] == "" {
			t.Errorf("manifest lacks %s", kind)
		}
	}
}

func TestGenConfigCSI(t *testing.T) {
	p := basePlan(ModeCSI)
	p.TestDriver = CinderTestDriver
	p.RepoList = []byte("e2eRegistry: mirror.example/e2e\n")
	p.Provider = "openstack"
	p.Selection.Parallel = "4"
	docs := genManifest(t, p)
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal([]byte(docs["ConfigMap/plugin-e2e-cm"]), &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data[testDriverFile] != string(CinderTestDriver) || cm.Data[repoListFile] == "" {
		t.Fatalf("plugin config map = %v", cm.Data)
	}
	var plugins corev1.ConfigMap
	if err := yaml.Unmarshal([]byte(docs["ConfigMap/sonobuoy-plugins-cm"]), &plugins); err != nil {
		t.Fatal(err)
	}
	plugin := plugins.Data["plugin-0.yaml"]
	for _, want := range []string{
		"--progress-report-url=http://localhost:8099/progress --storage.testdriver=/tmp/sonobuoy/config/test-driver.yaml",
		"mountPath: /tmp/sonobuoy/config",
		"value: /tmp/sonobuoy/config/repo-list.yaml",
		"value: openstack",
		"value: -v --procs=4",
		"External.Storage",
	} {
		if !strings.Contains(plugin, want) {
			t.Errorf("e2e plugin lacks %q:\n%s", want, plugin)
		}
	}
}

func TestPlanValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Plan)
		want string
	}{
		{"bad focus", func(p *Plan) { p.Selection.Focus = "[" }, "focus"},
		{"bad parallel", func(p *Plan) { p.Selection.Parallel = "many" }, "parallel"},
		{"no timeout", func(p *Plan) { p.Timeout = 0 }, "bounded"},
		{"csi without driver", func(p *Plan) { p.Mode = ModeCSI }, "test-driver"},
		{"driver without name", func(p *Plan) { p.TestDriver = []byte("Capabilities: {}\n") }, "DriverInfo.Name"},
		{"no version", func(p *Plan) { p.KubeVersion = "" }, "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := basePlan(ModeQuick)
			tt.edit(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error about %s", err, tt.want)
			}
		})
	}
	if err := basePlan(ModeQuick).Validate(); err != nil {
		t.Errorf("valid plan: %v", err)
	}
}

func TestParallel(t *testing.T) {
	tests := []struct {
		in       string
		parallel bool
		procs    int
		bad      bool
	}{
		{"", false, 0, false}, {"false", false, 0, false}, {"1", false, 0, false},
		{"true", true, 0, false}, {"Y", true, 0, false}, {"8", true, 8, false},
		{"-2", false, 0, true}, {"lots", false, 0, true},
	}
	for _, tt := range tests {
		par, procs, err := ParseParallel(tt.in)
		if par != tt.parallel || procs != tt.procs || (err != nil) != tt.bad {
			t.Errorf("ParseParallel(%q) = %t, %d, %v", tt.in, par, procs, err)
		}
	}
	env := Plan{Selection: Selection{Parallel: "true"}}.Env()
	if env["E2E_PARALLEL"] != "true" || env["E2E_EXTRA_GINKGO_ARGS"] != "-v" {
		t.Errorf("parallel=true env = %v", env)
	}
}

func TestAggregatorTimeout(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		15 * time.Minute: 13*time.Minute + 30*time.Second,
		4 * time.Hour:    4*time.Hour - 2*time.Minute,
		time.Minute:      time.Minute,
	} {
		if got := (Plan{Timeout: in}).AggregatorTimeout(); got != want {
			t.Errorf("AggregatorTimeout(%s) = %s, want %s", in, got, want)
		}
	}
}
