package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// load runs Load in a fresh directory holding the given files.
func load(t *testing.T, files map[string]string, environ ...string) (*Loaded, error) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Load(Options{Dir: dir, Environ: environ})
}

func TestDefaultsAreValid(t *testing.T) {
	l, err := load(t, nil)
	if err != nil {
		t.Fatalf("defaults must validate: %v", err)
	}
	if l.Settings.Prefix != "capi" || l.Sources["prefix"] != "default" {
		t.Fatalf("prefix = %q from %q", l.Settings.Prefix, l.Sources["prefix"])
	}
	if l.Settings.KubernetesVersion != l.Versions.Workload.KubernetesDefault {
		t.Fatalf("kubernetes_version default %q does not come from versions.yaml (%q)", l.Settings.KubernetesVersion, l.Versions.Workload.KubernetesDefault)
	}
}

func TestEveryKnobHasKeyGroupDocAndDefaultSource(t *testing.T) {
	groups := map[string]bool{}
	for _, g := range groupTitles {
		groups[g.group] = true
	}
	seenEnv := map[string]string{}
	for _, k := range Knobs() {
		if k.Key == "" || k.Doc == "" || !groups[k.Group] {
			t.Errorf("knob %+v lacks key, doc or a known group", k)
		}
		for _, e := range k.Env {
			if other, ok := seenEnv[e]; ok {
				t.Errorf("environment name %s used by %s and %s", e, other, k.Key)
			}
			seenEnv[e] = k.Key
		}
	}
}

func TestSourcePrecedence(t *testing.T) {
	files := map[string]string{
		"lab.yaml":                    "prefix: lab1\nworker_count: 2\ncluster: alpha\n",
		"clusters/alpha/cluster.yaml": "worker_count: 5\nnode_cidr: 10.9.0.0/20\n",
		"clusters/beta/cluster.yaml":  "worker_count: 7\n",
	}
	tests := []struct {
		name        string
		env         []string
		wantPrefix  string
		wantWorkers int
		wantSource  string
	}{
		{name: "file then cluster file", wantPrefix: "lab1", wantWorkers: 5, wantSource: "clusters/alpha/cluster.yaml:1"},
		{name: "env beats files", env: []string{"WORKER_COUNT=9", "PREFIX=lab2"}, wantPrefix: "lab2", wantWorkers: 9, wantSource: "env WORKER_COUNT"},
		{name: "env picks the cluster file", env: []string{"CLUSTER=beta"}, wantPrefix: "lab1", wantWorkers: 7, wantSource: "clusters/beta/cluster.yaml:1"},
		{name: "SCS alias TESTCLUSTER", env: []string{"TESTCLUSTER=beta"}, wantPrefix: "lab1", wantWorkers: 7, wantSource: "clusters/beta/cluster.yaml:1"},
		{name: "empty env is unset", env: []string{"WORKER_COUNT="}, wantPrefix: "lab1", wantWorkers: 5, wantSource: "clusters/alpha/cluster.yaml:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := load(t, files, tt.env...)
			if err != nil {
				t.Fatal(err)
			}
			if l.Settings.Prefix != tt.wantPrefix || l.Settings.WorkerCount != tt.wantWorkers || l.Sources["worker_count"] != tt.wantSource {
				t.Fatalf("prefix=%q workers=%d source=%q", l.Settings.Prefix, l.Settings.WorkerCount, l.Sources["worker_count"])
			}
		})
	}
}

func TestLabConfigEnvNamesTheFile(t *testing.T) {
	l, err := load(t, map[string]string{"other.yaml": "prefix: other\n"}, "LAB_CONFIG=other.yaml")
	if err != nil || l.Settings.Prefix != "other" || l.Sources["prefix"] != "other.yaml:1" {
		t.Fatalf("got %v %q %q", err, l.Settings.Prefix, l.Sources["prefix"])
	}
	_, err = load(t, nil, "LAB_CONFIG=missing.yaml")
	assertProblems(t, err, "missing.yaml: cannot read settings file")
}

func TestValueTypes(t *testing.T) {
	l, err := load(t, map[string]string{"lab.yaml": `
clusters: [a, b-2]
dns_nameservers: 1.1.1.1, 9.9.9.9
controller_metadata: {team: k8s}
older_than: 7d
dry_run: yes
deploy_metrics: v0.8.0
`}, "RESTRICT_KUBEAPI=10.0.0.0/8,192.168.0.0/16", "WORKER_METADATA=a=1,b=2", "DELETE_TIMEOUT=90s")
	if err != nil {
		t.Fatal(err)
	}
	s := l.Settings
	checks := []struct {
		name      string
		got, want string
	}{
		{"clusters", strings.Join(s.Clusters, "|"), "a|b-2"},
		{"dns", strings.Join(s.DNSNameservers, "|"), "1.1.1.1|9.9.9.9"},
		{"controller_metadata", s.ControllerMetadata["team"], "k8s"},
		{"worker_metadata", s.WorkerMetadata["b"], "2"},
		{"older_than", s.OlderThan.String(), (7 * 24 * time.Hour).String()},
		{"restrict", strings.Join(s.RestrictKubeAPI, "|"), "10.0.0.0/8|192.168.0.0/16"},
		{"delete_timeout", s.DeleteTimeout.String(), "1m30s"},
		{"deploy_metrics", s.DeployMetrics, "v0.8.0"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !s.DryRun {
		t.Error("dry_run: yes must be true")
	}
}

// TestBadInput covers every class of bad input the issue names. Each must
// produce exactly the expected problem lines, each naming source and key.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		env   []string
		want  []string // substrings, one per expected problem line, in order
	}{
		{name: "unknown key with suggestion", files: map[string]string{"lab.yaml": "prefx: a\n"}, want: []string{`lab.yaml:1: prefx: unknown setting (did you mean prefix?)`}},
		{name: "unknown key in cluster file", files: map[string]string{"clusters/testcluster/cluster.yaml": "\nbogus_knob: 1\n"}, want: []string{`clusters/testcluster/cluster.yaml:2: bogus_knob: unknown setting`}},
		{name: "lab knob in cluster file", files: map[string]string{"clusters/testcluster/cluster.yaml": "prefix: x\n"}, want: []string{`cluster.yaml:1: prefix: is a lab-wide or per-run setting`}},
		{name: "not yaml", files: map[string]string{"lab.yaml": "prefix: [\n"}, want: []string{`lab.yaml: not valid YAML`}},
		{name: "not a mapping", files: map[string]string{"lab.yaml": "- a\n"}, want: []string{`lab.yaml:1: must be a mapping`}},
		{name: "malformed CIDR", env: []string{"NODE_CIDR=10.8.0.0/33"}, want: []string{`env NODE_CIDR: node_cidr: "10.8.0.0/33" is not a CIDR`}},
		{name: "host bits", env: []string{"POD_CIDR=192.168.1.0/16"}, want: []string{`pod_cidr: "192.168.1.0/16" has host bits set; did you mean 192.168.0.0/16?`}},
		{name: "overlapping CIDRs: said on the key the user set", env: []string{"NODE_CIDR=10.96.0.0/20"}, want: []string{`env NODE_CIDR: node_cidr: 10.96.0.0/20 overlaps service_cidr 10.96.0.0/12`}},
		{name: "mgmt_cidr overlapping", env: []string{"MGMT_CIDR=10.8.1.0/24"}, want: []string{`env MGMT_CIDR: mgmt_cidr: 10.8.1.0/24 overlaps node_cidr 10.8.0.0/20`}},
		{name: "both set: said on the second", env: []string{"NODE_CIDR=10.20.0.0/16", "POD_CIDR=10.20.0.0/20"}, want: []string{`env POD_CIDR: pod_cidr: 10.20.0.0/20 overlaps node_cidr 10.20.0.0/16`}},
		{name: "pod overlaps node", files: map[string]string{"lab.yaml": "pod_cidr: 10.8.0.0/16\n"}, want: []string{`lab.yaml:1: pod_cidr: 10.8.0.0/16 overlaps node_cidr 10.8.0.0/20`}},
		{name: "restrict_kubeapi", env: []string{"RESTRICT_KUBEAPI=10.0.0.0/8,nonsense"}, want: []string{`restrict_kubeapi: "nonsense" is not a CIDR`}},
		{name: "cluster not DNS label", env: []string{"CLUSTER=My_Cluster"}, want: []string{`env CLUSTER: cluster: "My_Cluster" is not a valid cluster name`}},
		{name: "cluster trailing dash", env: []string{"CLUSTER=alpha-"}, want: []string{`"alpha-" is not a valid cluster name`}},
		{name: "cluster too long once prefixed", env: []string{"CLUSTER=" + strings.Repeat("a", 41)}, want: []string{`is 41 characters; a cluster name may have at most 40`}},
		{name: "prefix too long", env: []string{"PREFIX=" + strings.Repeat("p", 21)}, want: []string{`prefix: "ppppppppppppppppppppp" is 21 characters`}},
		{name: "bad clusters list", env: []string{"CLUSTERS=a,B,a"}, want: []string{`clusters: "B" is not a valid cluster name`, `clusters: "a" is listed twice`}},
		{name: "unparsable version", env: []string{"KUBERNETES_VERSION=1.34"}, want: []string{`kubernetes_version: not a version like v1.2.3 or v1.2.x`}},
		{name: "version not in catalog", env: []string{"KUBERNETES_VERSION=v1.20.1"}, want: []string{`kubernetes_version: no image in the catalog`}},
		{name: "addon toggle", env: []string{"DEPLOY_METRICS=maybe"}, want: []string{`deploy_metrics: "maybe" is not true, false or a version`}},
		{name: "cni", env: []string{"CNI=flannel"}, want: []string{`cni: "flannel" is not one of cilium, calico`}},
		{name: "controller count even", env: []string{"CONTROLLER_COUNT=2"}, want: []string{`controller_count: 2 is not 0, 1, 3, 5 or 7`}},
		{name: "worker count range", env: []string{"WORKER_COUNT=101"}, want: []string{`worker_count: 101 is out of range 0-100`}},
		{name: "count not a number", env: []string{"WORKER_COUNT=three"}, want: []string{`env WORKER_COUNT: worker_count: "three" is not a whole number`}},
		{name: "mtu range", env: []string{"MTU_VALUE=500"}, want: []string{`env MTU_VALUE: mtu: 500 is out of range`}},
		{name: "duration", env: []string{"OLDER_THAN=yesterday"}, want: []string{`older_than: "yesterday" is not a duration`}},
		{name: "bool", env: []string{"DRY_RUN=perhaps"}, want: []string{`dry_run: "perhaps" is not true or false`}},
		{name: "http image without checksum", env: []string{"IMAGE_URL=https://example.org/x.qcow2", "KUBERNETES_VERSION=v1.34.3"}, want: []string{`image_sha256: is required with an http(s) image_url`}},
		{name: "harbor", env: []string{"DEPLOY_HARBOR=true"}, want: []string{`deploy_harbor: Harbor is not supported`}},
		{name: "bad registry mirror", env: []string{"REGISTRY_MIRRORS=docker.io=ftp://m,Bad=http://m"}, want: []string{`registry_mirrors: registry "Bad": not a registry host name`, `registry_mirrors: registry docker.io: mirror "ftp://m": scheme must be http or https`}},
		{name: "reserved image attribute", env: []string{"IMAGE_EXTRA_PROPERTIES=min_disk=5"}, want: []string{`image_extra_properties: "min_disk" is a Glance image attribute`}},
		{name: "capilab image property", env: []string{"IMAGE_EXTRA_PROPERTIES=capilab_source_sha256=x"}, want: []string{`image_extra_properties: "capilab_source_sha256": properties starting with capilab_`}},
		{name: "appcred scope", env: []string{"APPCRED_SCOPE=all"}, want: []string{`appcred_scope: "all" is not one of cluster, lab`}},
		{name: "SCS ENVIRONMENT is never ignored", env: []string{"ENVIRONMENT=gx-scs"}, want: []string{`env ENVIRONMENT: "gx-scs" is SCS's environment selector`}},
		{name: "SCS ENVIRONMENT naming another cloud", env: []string{"ENVIRONMENT=gx-scs", "OS_CLOUD=devcloud"}, want: []string{`select the cloud with OS_CLOUD=`}},
		{name: "empty list item", env: []string{"CLUSTERS=a,,b"}, want: []string{`env CLUSTERS: clusters: "a,,b" has an empty item`}},
		{name: "trailing comma", files: map[string]string{"lab.yaml": "dns_nameservers: 1.1.1.1,\n"}, want: []string{`lab.yaml:1: dns_nameservers: "1.1.1.1," has an empty item`}},
		{name: "aliases naming different clusters", env: []string{"TESTCLUSTER=foo", "CLUSTER=bar"}, want: []string{`env CLUSTER, env TESTCLUSTER: cluster: CLUSTER=bar and TESTCLUSTER=foo name different values`}},
		{name: "several at once", env: []string{"CLUSTER=Bad", "WORKER_COUNT=-1", "NODE_CIDR=x"}, want: []string{`cluster: "Bad"`, `node_cidr: "x" is not a CIDR`, `worker_count: -1 is out of range`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.files, tt.env...)
			assertProblems(t, err, tt.want...)
		})
	}
}

func assertProblems(t *testing.T, err error, want ...string) {
	t.Helper()
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("want *InvalidError, got %v", err)
	}
	if len(ie.Problems) != len(want) {
		t.Fatalf("want %d problem(s), got %d:\n%s", len(want), len(ie.Problems), err)
	}
	for i, w := range want {
		line := ie.Problems[i].String()
		if strings.Contains(line, "\n") {
			t.Errorf("problem %d spans lines: %q", i, line)
		}
		if !strings.Contains(line, w) {
			t.Errorf("problem %d = %q, want it to contain %q", i, line, w)
		}
	}
}

func TestWriteTableShowsSourcesAndRedactsProxyCredentials(t *testing.T) {
	l, err := load(t, map[string]string{"lab.yaml": "prefix: lab9\n"}, "LAB_HTTP_PROXY=http://alice:s3cretpass@proxy:3128")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := l.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"prefix", "lab9", "lab.yaml:1", "env LAB_HTTP_PROXY", "alice:<redacted>@proxy:3128"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cretpass") {
		t.Fatalf("proxy password leaked:\n%s", out)
	}
}

func TestEnvironmentNamingTheSelectedCloudPasses(t *testing.T) {
	if _, err := load(t, nil, "ENVIRONMENT=gx-scs", "OS_CLOUD=gx-scs"); err != nil {
		t.Fatal(err)
	}
}

func TestEnvName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		known bool
		hint  string
	}{
		{"DRY_RUN", true, ""}, {"TESTCLUSTER", true, ""}, {"MTU_VALUE", true, ""}, {"OS_CLOUD", true, ""},
		{"OS_CLIENT_CONFIG_FILE", true, ""}, {"LAB_CONFIG", true, ""}, {"LAB_HTTP_PROXY", true, ""},
		{"DRYRUN", false, "did you mean DRY_RUN?"}, {"CLUSTR", false, "did you mean CLUSTER?"},
		{"ENVIRONMENT", false, "SCS's environment selector"}, {"GITREFERENCE", false, "is not a capilab setting"},
		{"prefix", false, "did you mean PREFIX?"},
	} {
		known, hint := EnvName(tc.name)
		if known != tc.known || !strings.Contains(hint, tc.hint) {
			t.Errorf("EnvName(%s) = %v, %q; want %v, %q", tc.name, known, hint, tc.known, tc.hint)
		}
	}
}

// TestImageURLWithTheDefaultVersion: README's air-gapped recipe sets only
// IMAGE_URL and IMAGE_SHA256; the default v1.N.x resolves through the
// catalog as it does without image_url.
func TestImageURLWithTheDefaultVersion(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	if _, err := load(t, nil, "IMAGE_URL=/srv/node.qcow2", "IMAGE_SHA256="+sum); err != nil {
		t.Fatalf("IMAGE_URL + IMAGE_SHA256 with the default version: %v", err)
	}
	if _, err := load(t, nil, "IMAGE_URL=/srv/node.qcow2", "IMAGE_SHA256="+sum, "KUBERNETES_VERSION=v1.2.3"); err != nil {
		t.Fatalf("with a full version outside the catalog: %v", err)
	}
	_, err := load(t, nil, "IMAGE_URL=/srv/node.qcow2", "IMAGE_SHA256="+sum, "KUBERNETES_VERSION=v1.99.x")
	assertProblems(t, err, `kubernetes_version: "v1.99.x" is not a version like v1.2.3, nor v1.N.x with a patch in the catalog`)
}

func TestAliasesWithTheSameValuePass(t *testing.T) {
	l, err := load(t, nil, "TESTCLUSTER=foo", "CLUSTER=foo", "MTU=1400", "MTU_VALUE=1400")
	if err != nil {
		t.Fatal(err)
	}
	if l.Settings.Cluster != "foo" || l.Settings.MTU != 1400 {
		t.Fatalf("cluster %q, mtu %d", l.Settings.Cluster, l.Settings.MTU)
	}
}
