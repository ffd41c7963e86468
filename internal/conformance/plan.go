package conformance

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vmware-tanzu/sonobuoy/pkg/client"
	sonoconfig "github.com/vmware-tanzu/sonobuoy/pkg/config"
	"github.com/vmware-tanzu/sonobuoy/pkg/plugin/manifest"
)

// Names inside the e2e plugin pod. Files of the plugin's ConfigMap are
// mounted by sonobuoy at pluginConfigDir; the worker sidecar receives the
// e2e framework's progress reports on the progress port (sonobuoy's default).
const (
	pluginName      = "e2e"
	pluginConfigDir = "/tmp/sonobuoy/config"
	testDriverFile  = "test-driver.yaml"
	repoListFile    = "repo-list.yaml"
	progressURL     = "http://localhost:" + sonoconfig.DefaultProgressUpdatesPort + "/progress"
)

// DefaultNamespace is where sonobuoy's aggregator runs.
const DefaultNamespace = sonoconfig.DefaultNamespace

// Plan is one run, fully decided: everything GenConfig needs, nothing that
// needs a cluster.
type Plan struct {
	Mode      Mode
	Selection Selection
	// KubeVersion is the cluster's version (v1.2.3); it names the
	// conformance image sonobuoy uses by default.
	KubeVersion string
	// Provider is the e2e framework's --provider (E2E_PROVIDER); "" keeps
	// the conformance image's default (local).
	Provider string
	// WorkerImage is the sonobuoy image of the aggregator and of the worker
	// sidecar: the one that was built or pulled, never the library's default
	// (its compiled-in version can differ from the module's).
	WorkerImage string
	// SonobuoyVersion is written into sonobuoy's config.
	SonobuoyVersion string
	// ConformanceImage overrides the e2e plugin's image ("": sonobuoy's
	// registry.k8s.io/conformance:<KubeVersion>).
	ConformanceImage string
	// TestDriver is a test-driver definition for the external storage suite
	// (csi mode); it is mounted into the plugin and passed to the e2e binary.
	TestDriver []byte
	// RepoList overrides the registries of the e2e test images
	// (KUBE_TEST_REPO_LIST of the e2e framework), for registry mirrors.
	RepoList []byte
	// DryRun lists the selected tests instead of running them.
	DryRun bool
	// Timeout bounds the whole run.
	Timeout time.Duration
	// Namespace of the aggregator ("": sonobuoy).
	Namespace string
	// Annotations go onto the aggregator pod: the run's ownership marker.
	Annotations map[string]string
}

// Validate checks what can be checked without a cluster: one line per
// problem, joined.
func (p Plan) Validate() error {
	var errs []error
	if _, ok := modes[p.Mode]; !ok {
		errs = append(errs, fmt.Errorf("unknown mode %q", p.Mode))
	}
	for name, re := range map[string]string{"focus": p.Selection.Focus, "skip": p.Selection.Skip} {
		if _, err := regexp.Compile(re); err != nil {
			errs = append(errs, fmt.Errorf("%s %q is not a regular expression: %v", name, re, err))
		}
	}
	if _, _, err := ParseParallel(p.Selection.Parallel); err != nil {
		errs = append(errs, err)
	}
	if p.Timeout <= 0 {
		errs = append(errs, errors.New("no timeout: every run must be bounded"))
	}
	if p.WorkerImage == "" {
		errs = append(errs, errors.New("no sonobuoy worker image"))
	}
	if p.KubeVersion == "" && p.ConformanceImage == "" {
		errs = append(errs, errors.New("neither the cluster's Kubernetes version nor a conformance image"))
	}
	if p.Mode.NeedsTestDriver() && len(p.TestDriver) == 0 {
		errs = append(errs, fmt.Errorf("mode %s needs a test-driver definition", p.Mode))
	}
	if len(p.TestDriver) > 0 && testDriverName(p.TestDriver) == "" {
		errs = append(errs, errors.New("the test-driver definition is not YAML with DriverInfo.Name"))
	}
	return errors.Join(errs...)
}

// ParseParallel reads E2E_PARALLEL: "", "false", "0" and "1" run serially;
// "true" lets the runner pick the number of processes; a number N > 1 runs
// N processes.
func ParseParallel(s string) (parallel bool, procs int, err error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "", "false", "no", "n", "0", "1":
		return false, 0, nil
	case "true", "yes", "y":
		return true, 0, nil
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 64 {
			return false, 0, fmt.Errorf("parallel %q is not true, false or a process count 1-64", s)
		}
		return true, n, nil
	}
}

// Env is the e2e plugin's environment as the conformance image's runner
// reads it.
func (p Plan) Env() map[string]string {
	env := map[string]string{
		"E2E_FOCUS": p.Selection.Focus,
		"E2E_SKIP":  p.Selection.Skip,
	}
	// Verbose: Ginkgo then names each test as it starts and gives its
	// verdict on a line of its own, which is what progress is read from.
	ginkgoArgs := []string{"-v"}
	if parallel, procs, _ := ParseParallel(p.Selection.Parallel); parallel {
		env["E2E_PARALLEL"] = "true"
		if procs > 0 {
			ginkgoArgs = append(ginkgoArgs, "--procs="+strconv.Itoa(procs))
		}
	}
	env["E2E_EXTRA_GINKGO_ARGS"] = strings.Join(ginkgoArgs, " ")
	if p.Provider != "" {
		env["E2E_PROVIDER"] = p.Provider
	}
	if p.DryRun {
		env["E2E_DRYRUN"] = "true"
	}
	// Setting E2E_EXTRA_ARGS replaces sonobuoy's own value, which only
	// holds the progress URL: keep it, or progress reports stop.
	args := []string{"--progress-report-url=" + progressURL}
	if len(p.TestDriver) > 0 {
		args = append(args, "--storage.testdriver="+pluginConfigDir+"/"+testDriverFile)
	}
	env["E2E_EXTRA_ARGS"] = strings.Join(args, " ")
	if len(p.RepoList) > 0 {
		env["KUBE_TEST_REPO_LIST"] = pluginConfigDir + "/" + repoListFile
	}
	return env
}

// AggregatorTimeout is the aggregator's own bound on the plugins: a little
// shorter than the run's, so a plugin that overruns is reported as timed
// out by the aggregator, with the logs and resources it gathers, before
// the run's bound cuts everything short.
func (p Plan) AggregatorTimeout() time.Duration {
	margin := min(2*time.Minute, p.Timeout/10)
	return max(p.Timeout-margin, time.Minute)
}

// GenConfig is the sonobuoy library's configuration of the run: only the
// e2e plugin, the images and environment of the plan, the test-driver and
// repo-list files in the plugin's ConfigMap.
func (p Plan) GenConfig() (*client.GenConfig, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	cfg := sonoconfig.New()
	if p.Namespace != "" {
		cfg.Namespace = p.Namespace
	}
	cfg.WorkerImage = p.WorkerImage
	if p.SonobuoyVersion != "" {
		cfg.Version = p.SonobuoyVersion
	}
	cfg.Aggregation.TimeoutSeconds = int(p.AggregatorTimeout().Seconds())
	if len(p.Annotations) > 0 {
		cfg.CustomAnnotations = maps.Clone(p.Annotations)
	}
	gen := &client.GenConfig{
		Config:             cfg,
		EnableRBAC:         true,
		ImagePullPolicy:    string(sonoconfig.DefaultSonobuoyPullPolicy),
		DynamicPlugins:     []string{pluginName},
		PluginEnvOverrides: map[string]map[string]string{pluginName: p.Env()},
		KubeVersion:        p.KubeVersion,
	}
	files := map[string]string{}
	if len(p.TestDriver) > 0 {
		files[testDriverFile] = string(p.TestDriver)
	}
	if len(p.RepoList) > 0 {
		files[repoListFile] = string(p.RepoList)
	}
	image := p.ConformanceImage
	if len(files) > 0 || image != "" {
		gen.PluginTransforms = map[string][]func(*manifest.Manifest) error{
			pluginName: {func(m *manifest.Manifest) error {
				if image != "" {
					m.Spec.Image = image
				}
				if len(files) > 0 {
					if m.ConfigMap == nil {
						m.ConfigMap = map[string]string{}
					}
					maps.Copy(m.ConfigMap, files)
				}
				return nil
			}},
		}
	}
	return gen, nil
}

// Properties describe the plan for reports, in a fixed order.
func (p Plan) Properties() [][2]string {
	props := [][2]string{
		{"mode", string(p.Mode)},
		{"focus", p.Selection.Focus},
		{"skip", p.Selection.Skip},
	}
	if p.Selection.Parallel != "" {
		props = append(props, [2]string{"parallel", p.Selection.Parallel})
	}
	if p.Provider != "" {
		props = append(props, [2]string{"provider", p.Provider})
	}
	props = append(props, [2]string{"timeout", p.Timeout.String()})
	if p.DryRun {
		props = append(props, [2]string{"dry run", "true (tests listed, not run)"})
	}
	images := []string{p.WorkerImage}
	if p.ConformanceImage != "" {
		images = append(images, p.ConformanceImage)
	} else if p.KubeVersion != "" {
		images = append(images, sonoconfig.UpstreamKubeConformanceImageURL+":"+p.KubeVersion)
	}
	props = append(props, [2]string{"images", strings.Join(slices.Compact(images), " ")})
	if len(p.TestDriver) > 0 {
		props = append(props, [2]string{"test driver", testDriverName(p.TestDriver)})
	}
	return props
}

// testDriverName is DriverInfo.Name of a test-driver definition.
func testDriverName(def []byte) string {
	var d struct {
		DriverInfo struct {
			Name string `yaml:"Name"`
		} `yaml:"DriverInfo"`
	}
	if err := yaml.Unmarshal(def, &d); err != nil {
		return ""
	}
	return d.DriverInfo.Name
}
