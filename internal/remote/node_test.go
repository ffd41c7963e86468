package remote

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/versions"
)

const kindAdminConf = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://lab7-mgmt-control-plane:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
`

func TestRewriteKubeconfig(t *testing.T) {
	out, err := RewriteKubeconfig([]byte(kindAdminConf), "203.0.113.7", "6443", "lab7-mgmt")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Clusters []struct {
			Name    string
			Cluster map[string]string
		}
		Contexts []struct {
			Name    string
			Context map[string]string
		}
		CurrentContext string `yaml:"current-context"`
		Users          []struct {
			Name string
			User map[string]string
		}
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	c := doc.Clusters[0]
	if c.Name != "lab7-mgmt" || c.Cluster["server"] != "https://203.0.113.7:6443" || c.Cluster["tls-server-name"] != "kubernetes" || c.Cluster["certificate-authority-data"] != "Q0E=" {
		t.Errorf("cluster: %+v", c)
	}
	if doc.CurrentContext != "lab7-mgmt" || len(doc.Contexts) != 1 || doc.Contexts[0].Context["cluster"] != "lab7-mgmt" || doc.Contexts[0].Context["user"] != "lab7-mgmt-admin" {
		t.Errorf("contexts: %+v, current %q", doc.Contexts, doc.CurrentContext)
	}
	if doc.Users[0].Name != "lab7-mgmt-admin" || doc.Users[0].User["client-key-data"] != "S0VZ" {
		t.Errorf("users: %+v", doc.Users)
	}
	v6, err := RewriteKubeconfig([]byte(kindAdminConf), "2001:db8::7", "6443", "x")
	if err != nil || !strings.Contains(string(v6), "https://[2001:db8::7]:6443") {
		t.Errorf("IPv6 server: %v\n%s", err, v6)
	}
	for _, bad := range []string{"", "clusters: []\nusers: []\n", "not: [yaml"} {
		if _, err := RewriteKubeconfig([]byte(bad), "h", "1", "x"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestPublishedPort(t *testing.T) {
	for _, tt := range []struct {
		in, addr, port string
		outside, err   bool
	}{
		{"0.0.0.0:6443\n[::]:6443\n", "0.0.0.0", "6443", true, false},
		{"127.0.0.1:41234\n", "127.0.0.1", "41234", false, false},
		{"", "", "", false, true},
	} {
		addr, port, err := publishedPort(tt.in)
		if (err != nil) != tt.err || addr != tt.addr || port != tt.port {
			t.Errorf("%q: %q %q %v", tt.in, addr, port, err)
		}
		if err == nil && reachableFromOutside(addr) != tt.outside {
			t.Errorf("%q: reachable from outside = %v", tt.in, !tt.outside)
		}
	}
}

const stateDoc = `{
  "version": 4,
  "outputs": {"floating_ip": {"value": "172.24.4.9", "type": "string"}},
  "resources": [
    {"mode": "data", "type": "openstack_images_image_v2", "name": "x", "instances": [{"attributes": {"id": "d"}}]},
    {"mode": "managed", "type": "openstack_compute_instance_v2", "name": "mgmt", "instances": [{"attributes": {"id": "srv-1", "name": "lab7-mgmtcluster"}}]},
    {"mode": "managed", "type": "openstack_blockstorage_volume_v3", "name": "root", "instances": [{"index_key": 0, "attributes": {"id": "vol-1", "name": "lab7-mgmtcluster"}}]},
    {"mode": "managed", "type": "openstack_networking_secgroup_rule_v2", "name": "mgmt", "instances": [{"index_key": "ssh 0.0.0.0/0", "attributes": {"id": "r1"}}]}
  ]
}`

func TestParseState(t *testing.T) {
	st, err := parseState([]byte(stateDoc))
	if err != nil {
		t.Fatal(err)
	}
	want := []StateResource{
		{Address: "openstack_blockstorage_volume_v3.root[0]", Type: "openstack_blockstorage_volume_v3", ID: "vol-1", Name: "lab7-mgmtcluster"},
		{Address: "openstack_compute_instance_v2.mgmt", Type: "openstack_compute_instance_v2", ID: "srv-1", Name: "lab7-mgmtcluster"},
		{Address: `openstack_networking_secgroup_rule_v2.mgmt["ssh 0.0.0.0/0"]`, Type: "openstack_networking_secgroup_rule_v2", ID: "r1"},
	}
	if !reflect.DeepEqual(st.Resources, want) {
		t.Fatalf("got %+v", st.Resources)
	}
	var fip string
	if ok, err := st.Output("floating_ip", &fip); !ok || err != nil || fip != "172.24.4.9" {
		t.Errorf("floating_ip: %v %v %q", ok, err, fip)
	}
	if ok, _ := st.Output("nope", &fip); ok {
		t.Error("missing output found")
	}
	if _, err := parseState([]byte(`{"version": 3}`)); err == nil {
		t.Error("version 3 accepted")
	}
	// A workspace never applied has an empty state.
	w := &Workspace{Dir: t.TempDir(), Name: "lab7"}
	if st, err := w.ReadState(); err != nil || len(st.Resources) != 0 {
		t.Errorf("empty workspace: %v %+v", err, st)
	}
}

func TestWorkspaceSync(t *testing.T) {
	module, dir := t.TempDir(), filepath.Join(t.TempDir(), "terraform")
	mustWrite(t, filepath.Join(module, "a.tf"), "# a\n", 0o644)
	mustWrite(t, filepath.Join(module, "README"), "not HCL\n", 0o644)
	w := &Workspace{Dir: dir, Module: module, Name: "lab7", ProviderVersion: "v9.8.7"}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	override, err := os.ReadFile(filepath.Join(dir, overrideFile))
	if err != nil || !strings.Contains(string(override), `version = "9.8.7"`) || !strings.Contains(string(override), `source  = "terraform-provider-openstack/openstack"`) {
		t.Fatalf("override: %v\n%s", err, override)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("working directory mode %v, want 0700", st.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err == nil {
		t.Error("a non-.tf file was copied")
	}
	// A module file gone from the checkout goes from the copy; the lock
	// file goes when the provider source changes (its checksums differ).
	mustWrite(t, filepath.Join(dir, "stale.tf"), "# old\n", 0o644)
	mustWrite(t, filepath.Join(dir, ".terraform.lock.hcl"), "# lock\n", 0o644)
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stale.tf")); err == nil {
		t.Error("stale.tf survived")
	}
	if _, err := os.Stat(filepath.Join(dir, ".terraform.lock.hcl")); err != nil {
		t.Error("lock file removed although the provider source did not change")
	}
	w.CLIConfig = mirrorCLIConfig("/cache/mirror")
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".terraform.lock.hcl")); err == nil {
		t.Error("lock file kept across a provider source change")
	}
	if cli, err := os.ReadFile(filepath.Join(dir, ".capilab-cli.tfrc")); err != nil || !strings.Contains(string(cli), `path    = "/cache/mirror"`) {
		t.Errorf("CLI config: %v\n%s", err, cli)
	}
	if got := w.cmd(true, "plan").String(); !strings.Contains(got, "TF_CLI_CONFIG_FILE="+filepath.Join(dir, ".capilab-cli.tfrc")) || !strings.Contains(got, "TF_WORKSPACE=lab7") {
		t.Errorf("command: %s", got)
	}
	if err := os.RemoveAll(module); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err == nil {
		t.Error("an empty module synced")
	}
}

// The node's lab.yaml carries every setting of this run, loads on the
// node, and switches it to a local management cluster with the lab's
// credential.
func TestNodeSettings(t *testing.T) {
	l, err := config.Load(config.Options{Dir: t.TempDir(), Environ: []string{"PREFIX=lab7", "MGMT_MODE=remote", "WORKER_COUNT=2", "OS_CLOUD=mine", "TOFU=/opt/tofu", "RESTRICT_MGMT_SERVER=192.0.2.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	pins, err := versions.Load()
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{Settings: &l.Settings, StateDir: t.TempDir(), RepoDir: "/src", Pins: pins.Remote})
	if err != nil {
		t.Fatal(err)
	}
	data, err := n.NodeSettings("lab7")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "lab.yaml"), string(data), 0o600)
	node, err := config.Load(config.Options{Dir: dir})
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	got := node.Settings
	if got.MgmtMode != "local" || got.Cloud != "lab7" || got.Tofu != "" || got.StateDir != "/home/ubuntu/capilab-state" || got.ArtifactsDir != "/home/ubuntu/capilab-artifacts" {
		t.Errorf("overrides: %+v", got)
	}
	if got.Prefix != "lab7" || got.WorkerCount != 2 || !reflect.DeepEqual(got.RestrictMgmtServer, []string{"192.0.2.0/24"}) {
		t.Errorf("settings not carried over: %+v", got)
	}
}

func TestNodeNeedsItsInputs(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("no error")
	}
	s := testSettings(t)
	n, err := New(Options{Settings: s, StateDir: t.TempDir(), RepoDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// No node yet: the targets that need one say so.
	if _, err := n.Kubeconfig(context.Background()); err == nil || !strings.Contains(err.Error(), "has no remote management node") {
		t.Errorf("Kubeconfig: %v", err)
	}
	if err := n.SSH(context.Background()); err == nil || !strings.Contains(err.Error(), "make create MGMT_MODE=remote") {
		t.Errorf("SSH: %v", err)
	}
	if st, err := n.Status(context.Background()); err != nil || st.Exists {
		t.Errorf("Status: %+v %v", st, err)
	}
}

func TestParsePlan(t *testing.T) {
	doc := `{"format_version":"1.2","resource_changes":[
	  {"address":"openstack_blockstorage_volume_v3.root[0]","mode":"managed","change":{"actions":["create"],"after":{"name":"lab7-mgmtcluster","size":30}}},
	  {"address":"data.x.y","mode":"data","change":{"actions":["read"]}},
	  {"address":"openstack_compute_instance_v2.mgmt","mode":"managed","change":{"actions":["no-op"],"after":{"name":"lab7-mgmtcluster"}}}]}`
	changes, err := parsePlan([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[0].Address != "openstack_blockstorage_volume_v3.root[0]" || changes[0].After["size"] != float64(30) || changes[1].Actions[0] != "no-op" {
		t.Fatalf("got %+v", changes)
	}
	if _, err := parsePlan([]byte("not json")); err == nil {
		t.Error("no error for garbage")
	}
}
