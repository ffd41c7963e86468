//go:build integration

// Package remote_test proves the remote management node (MGMT_MODE=remote)
// against devcloud as its member user: terraform/ validates and is
// formatted under OpenTofu built from its module (and Terraform when one is
// on PATH), the provider comes from a local build without any registry,
// bad input is refused before anything is planned, an apply creates every
// resource under its SCS name, the node's cloud-init passes cloud-init's
// schema, a second apply changes nothing, another lab's node of the same
// prefix is refused, fullclean claims every resource, and clean (destroy)
// leaves nothing. devcloud boots no general-purpose VM: the bootstrap on
// the node is proven to give up within its bound, nothing more
// (docs/remote.md).
package remote_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/capilab/capilab/internal/lab"
	"github.com/capilab/capilab/internal/remote"
	"github.com/capilab/capilab/tests/devcloudtest"
)

// TestModuleValidatesAndIsFormatted runs `validate` (after an init that
// can only use the local provider build) and `fmt -check` with OpenTofu
// built from its module, and with Terraform when a terraform binary is on
// PATH.
func TestModuleValidatesAndIsFormatted(t *testing.T) {
	tofu, mirror := builtTools(t)
	bins := []remote.Binary{tofu}
	if p, err := exec.LookPath("terraform"); err == nil {
		tools := &remote.Tools{Binary: p}
		tf, err := tools.Find(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		bins = append(bins, tf)
	} else {
		t.Log("no terraform on PATH: the module is checked with OpenTofu only")
	}
	for _, bin := range bins {
		t.Run(bin.Kind, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			module := filepath.Join(repoRoot(t), "terraform")
			out, err := exec.CommandContext(ctx, bin.Path, "fmt", "-check", "-diff", "-no-color", module).CombinedOutput()
			if err != nil {
				t.Fatalf("%s fmt -check: %v\n%s", bin.Kind, err, out)
			}
			ws := &remote.Workspace{Dir: filepath.Join(t.TempDir(), "terraform"), Module: module, Name: "validate", Bin: bin,
				ProviderVersion: pins(t).OpenStackProvider, CLIConfig: mirrorConfig(mirror),
				Env: append(os.Environ(), "TF_PLUGIN_CACHE_DIR=")}
			if err := ws.Sync(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := ws.Init(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s init (provider from the local mirror) in %s", bin.Kind, bin.Version, time.Since(start).Round(time.Millisecond))
			if err := ws.Validate(ctx); err != nil {
				t.Fatal(err)
			}
			lock, err := os.ReadFile(filepath.Join(ws.Dir, ".terraform.lock.hcl"))
			if err != nil || !strings.Contains(string(lock), `version     = "`+strings.TrimPrefix(pins(t).OpenStackProvider, "v")+`"`) {
				t.Fatalf("lock file does not record the pinned provider: %v\n%s", err, lock)
			}
		})
	}
}

// mirrorConfig is the CLI configuration capilab writes for the mirror.
func mirrorConfig(mirror string) string {
	return `provider_installation {
  filesystem_mirror {
    path    = "` + mirror + `"
    include = ["registry.opentofu.org/terraform-provider-openstack/openstack", "registry.terraform.io/terraform-provider-openstack/openstack"]
  }
}
`
}

// TestRemoteNodeOnDevcloud is the node's life with OpenTofu built from its
// module: bad input, apply, every resource checked with the openstack CLI,
// cloud-init's schema, the bounded bootstrap, a no-op second apply, another
// lab's refusal, leakcheck claiming it all, get-kubeconfig failing clearly,
// and make clean leaving nothing.
func TestRemoteNodeOnDevcloud(t *testing.T) {
	t.Parallel()
	tofu, _ := builtTools(t)
	prefix := uniquePrefix("rn")
	cidrs := []string{"192.0.2.0/24", "198.51.100.0/24"}
	l := newLab(t, prefix, "TOFU="+tofu.Path, "RESTRICT_MGMT_SERVER="+strings.Join(cidrs, ","), "MGMT_CIDR=10.77.0.0/24", "DNS_NAMESERVERS=192.0.2.53", "AVAILABILITY_ZONE=nova")
	member := devcloudtest.Member()
	ctx := context.Background()
	cleanupLab(t, l)
	names := remote.Names{Prefix: prefix}

	t.Run("bad input: nothing is planned", func(t *testing.T) {
		res := l.run(ctx, "mgmt:create", "EXTERNAL_NETWORK="+prefix+"-no-such-net", "MGMT_IMAGE="+prefix+"-no-such-image", "KIND_FLAVOR="+prefix+"-no-such-flavor")
		if res.code() != lab.ExitBadInput {
			t.Fatalf("want exit %d, got %v", lab.ExitBadInput, res.err)
		}
		lines := strings.Split(res.err.Error(), "\n")
		if len(lines) != 4 {
			t.Errorf("want a header and one line per problem, got:\n%v", res.err)
		}
		for _, want := range []string{"external_network: no network named", "mgmt_image: no image named", "kind_flavor: no flavor named"} {
			if !strings.Contains(res.err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, res.err)
			}
		}
		res = l.run(ctx, "mgmt:create", "RESTRICT_MGMT_SERVER=office")
		if res.code() != lab.ExitBadInput || !strings.Contains(res.err.Error(), `restrict_mgmt_server: "office" is not a CIDR`) {
			t.Fatalf("restrict_mgmt_server=office: %v", res.err)
		}
		if _, err := os.Stat(filepath.Join(l.stateDir, "terraform", "terraform.tfstate.d")); err == nil {
			t.Error("a workspace was created despite bad input")
		}
		if out := member.CLI(t, "network", "list", "--name", names.Network(), "-f", "value", "-c", "ID"); strings.TrimSpace(out) != "" {
			t.Errorf("network %s exists after bad input", names.Network())
		}
	})

	var serverID, fip string
	t.Run("apply, then the bootstrap gives up within its bound", func(t *testing.T) {
		res := l.run(ctx, "mgmt:create", "REMOTE_TIMEOUT=20s")
		if res.code() != 1 || !strings.Contains(res.err.Error(), "timed out after 20s waiting for ssh to ubuntu@") {
			t.Fatalf("want exit 1 and the ssh wait timing out (devcloud boots no general-purpose VM), got %v", res.err)
		}
		apply := stepTime(t, res.log, "plan and apply")
		t.Logf("MEASURED apply of the management node on devcloud (%s %s): %s", tofu.Kind, tofu.Version, apply)
		if !strings.Contains(res.log, "waiting for ssh to ubuntu@") {
			t.Error("the bootstrap wait logged no progress")
		}
		fip = outputOf(t, l, "floating_ip")
		serverID = outputOf(t, l, "server_id")
		if !strings.Contains(res.log, "no provider registry answers: the OpenStack provider comes from a local build") {
			t.Error("the log does not say the provider came from the local build")
		}
		checkPrivate(t, l.stateDir, prefix)
	})
	if t.Failed() {
		return
	}

	t.Run("every resource exists under its name (openstack CLI)", func(t *testing.T) {
		checkResources(t, member, names, serverID, fip, cidrs)
	})

	t.Run("cloud-init passes cloud-init schema and holds no secret", func(t *testing.T) {
		admin := devcloudtest.Admin().Compute(t)
		var server struct {
			UserData string `json:"OS-EXT-SRV-ATTR:user_data"`
		}
		if err := servers.Get(ctx, admin, serverID).ExtractInto(&server); err != nil {
			t.Fatal(err)
		}
		encoded := server.UserData
		userData, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil || len(userData) == 0 {
			t.Fatalf("user data of %s as Nova stores it: %v (%d bytes)", serverID, err, len(userData))
		}
		file := filepath.Join(t.TempDir(), "user-data")
		if err := os.WriteFile(file, userData, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := cloudInitSchema(t, file)
		if err != nil || !strings.Contains(out, "Valid cloud-config") {
			t.Fatalf("cloud-init schema: %v\n%s\n--- user data ---\n%s", err, out, userData)
		}
		t.Logf("cloud-init schema (Debian's cloud-init): %s", strings.TrimSpace(out))
		secret := labSecret(t, l)
		if secret == "" || strings.Contains(string(userData), secret) {
			t.Fatalf("the lab credential's secret is in the user data (or unknown: %q)", secret)
		}
	})

	t.Run("a second apply changes nothing", func(t *testing.T) {
		res := l.run(ctx, "mgmt:create", "REMOTE_TIMEOUT=5s")
		if res.code() != 1 || !strings.Contains(res.log, "nothing to change") {
			t.Fatalf("second create: %v; log says nothing about 'nothing to change'", res.err)
		}
		if id := outputOf(t, l, "server_id"); id != serverID {
			t.Fatalf("the server changed: %s -> %s", serverID, id)
		}
		t.Logf("MEASURED no-op plan on devcloud: %s", stepTime(t, res.log, "plan and apply"))
	})

	t.Run("another lab with this prefix is refused, nothing changes", func(t *testing.T) {
		other := newLab(t, prefix, "TOFU="+tofu.Path)
		res := other.run(ctx, "mgmt:create", "REMOTE_TIMEOUT=5s")
		if res.code() != lab.ExitBadInput || !strings.Contains(res.err.Error(), "server "+names.Server()+" ("+serverID+") exists in this project but is not in capilab's state") {
			t.Fatalf("want exit 2 naming the server, got %v", res.err)
		}
		out := member.CLI(t, "server", "list", "--name", "^"+names.Server()+"$", "-f", "value", "-c", "ID")
		if ids := strings.Fields(out); len(ids) != 1 || ids[0] != serverID {
			t.Fatalf("servers named %s: %v", names.Server(), ids)
		}
	})

	t.Run("leakcheck claims every resource of the node", func(t *testing.T) {
		res := l.run(ctx, "clean:check", "LEAK_SCOPE=lab")
		if res.code() != lab.ExitLeaks {
			t.Fatalf("leakcheck: want exit %d, got %v", lab.ExitLeaks, res.err)
		}
		for _, want := range []string{names.Server(), names.Network(), names.Subnet(), names.Router(), names.SecurityGroup(), names.Keypair(), fip, prefix + "-appcred"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("leakcheck does not list %s:\n%s", want, res.stdout)
			}
		}
	})

	t.Run("get-kubeconfig says the node cannot be reached", func(t *testing.T) {
		res := l.run(ctx, "cluster:kubeconfig")
		if res.code() != 1 || !strings.Contains(res.err.Error(), "reading the management cluster's kubeconfig") {
			t.Fatalf("get-kubeconfig: %v", res.err)
		}
	})

	t.Run("clean destroys everything", func(t *testing.T) {
		res := l.run(ctx, "clean:all")
		if res.err != nil {
			t.Fatal(res.err)
		}
		t.Logf("MEASURED destroy of the management node on devcloud: %s", stepTime(t, res.log, "destroy"))
		if !strings.Contains(res.log, "make create never started on the management node") {
			t.Error("clean did not say why it skipped make clean on the node")
		}
		checkGone(t, member, names, fip)
		if _, err := os.Stat(filepath.Join(l.stateDir, "terraform", "terraform.tfstate.d", prefix)); err == nil {
			t.Error("the workspace is still there")
		}
		for _, f := range []string{"id_ed25519", "terraform.tfvars.json"} {
			if _, err := os.Stat(filepath.Join(l.stateDir, "terraform", prefix, f)); err == nil {
				t.Errorf("%s is still in the state", f)
			}
		}
		if res := l.run(ctx, "clean:check", "LEAK_SCOPE=lab"); res.err != nil {
			t.Fatalf("leakcheck after clean: %v\n%s", res.err, res.stdout)
		}
	})
}

// TestRemoteNodeFullclean: fullclean alone removes a node (exact names),
// and a later make clean reconciles the OpenTofu state. With Terraform
// when one is on PATH, otherwise OpenTofu.
func TestRemoteNodeFullclean(t *testing.T) {
	t.Parallel()
	tofu, _ := builtTools(t)
	bin := tofu.Path
	if p, err := exec.LookPath("terraform"); err == nil {
		bin = p
	}
	prefix := uniquePrefix("rf")
	l := newLab(t, prefix, "TOFU="+bin)
	names := remote.Names{Prefix: prefix}
	ctx := context.Background()
	cleanupLab(t, l)

	res := l.run(ctx, "mgmt:create", "REMOTE_TIMEOUT=5s")
	if res.code() != 1 || !strings.Contains(res.err.Error(), "waiting for ssh") {
		t.Fatalf("create: %v", res.err)
	}
	t.Logf("MEASURED apply with %s: %s", bin, stepTime(t, res.log, "plan and apply"))
	fip := outputOf(t, l, "floating_ip")

	res = l.run(ctx, "clean:full")
	if res.err != nil {
		t.Fatalf("fullclean: %v\n%s", res.err, res.stdout)
	}
	for _, want := range []string{names.Server(), names.Network(), names.Router(), names.SecurityGroup(), names.Keypair()} {
		if !strings.Contains(res.stdout+res.log, want) {
			t.Errorf("fullclean's report does not name %s", want)
		}
	}
	checkGone(t, devcloudtest.Member(), names, fip)

	res = l.run(ctx, "clean:all")
	if res.err != nil {
		t.Fatalf("clean after fullclean: %v", res.err)
	}
	if _, err := os.Stat(filepath.Join(l.stateDir, "terraform", "terraform.tfstate.d", prefix)); err == nil {
		t.Error("the workspace is still there")
	}
	if res := l.run(ctx, "clean:check", "LEAK_SCOPE=lab"); res.err != nil {
		t.Fatalf("leakcheck: %v\n%s", res.err, res.stdout)
	}
}

// TestRootVolumePlan: a flavor without a disk (SCS-2V-4 on devcloud) gets a
// 30 GiB root volume from the image, and the server boots from it. Only
// planned: devcloud's Cinder cannot copy an image into a volume (its fake
// driver writes to a device mapper path that does not exist).
func TestRootVolumePlan(t *testing.T) {
	t.Parallel()
	tofu, _ := builtTools(t)
	prefix := uniquePrefix("rv")
	l := newLab(t, prefix, "TOFU="+tofu.Path, "KIND_FLAVOR=SCS-2V-4")
	res := l.run(context.Background(), "mgmt:create", "DRY_RUN=1")
	if res.err != nil {
		t.Fatal(res.err)
	}
	planned := map[string]string{}
	for _, line := range strings.Split(res.stdout, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "create" {
			planned[f[1]] = strings.Join(f[2:], " ")
		}
	}
	for addr, name := range map[string]string{
		"openstack_blockstorage_volume_v3.root[0]": prefix + "-mgmtcluster",
		"openstack_compute_instance_v2.mgmt":       prefix + "-mgmtcluster",
		"openstack_networking_network_v2.mgmt":     prefix + "-net",
	} {
		if got, ok := planned[addr]; !ok || got != name {
			t.Errorf("dry run plans %s as %q, want %q:\n%s", addr, got, name, res.stdout)
		}
	}
	if !strings.Contains(res.stdout, "nothing applied") {
		t.Errorf("dry run does not say nothing was applied:\n%s", res.stdout)
	}
	vars, err := os.ReadFile(filepath.Join(l.stateDir, "terraform", prefix, "terraform.tfvars.json"))
	if err != nil || !strings.Contains(string(vars), `"root_volume_size": 30`) {
		t.Fatalf("variables: %v\n%s", err, vars)
	}
	if out := devcloudtest.Member().CLI(t, "network", "list", "--name", prefix+"-net", "-f", "value", "-c", "ID"); strings.TrimSpace(out) != "" {
		t.Error("a dry run created a network")
	}
}

// cleanupLab makes sure nothing of the lab outlives the test, whatever failed.
func cleanupLab(t *testing.T, l *labRun) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		if res := l.run(ctx, "clean:all", "REMOTE_TIMEOUT=1m"); res.err != nil {
			t.Errorf("cleanup: clean: %v", res.err)
		}
		if res := l.run(ctx, "clean:check", "LEAK_SCOPE=lab"); res.err != nil {
			if res := l.run(ctx, "clean:full"); res.err != nil {
				t.Errorf("cleanup: fullclean: %v\n%s", res.err, res.stdout)
			}
		}
	})
}

// checkPrivate: the OpenTofu working directory and the lab's directory in
// it are 0700; the workspace's state, the variables and the ssh private key
// are 0600; the workspace is named after the prefix.
func checkPrivate(t *testing.T, stateDir, prefix string) {
	t.Helper()
	tf := filepath.Join(stateDir, "terraform")
	for path, want := range map[string]os.FileMode{
		tf:                        0o700,
		filepath.Join(tf, prefix): 0o700,
		filepath.Join(tf, "terraform.tfstate.d", prefix):                      0o700,
		filepath.Join(tf, "terraform.tfstate.d", prefix, "terraform.tfstate"): 0o600,
		filepath.Join(tf, prefix, "terraform.tfvars.json"):                    0o600,
		filepath.Join(tf, prefix, "id_ed25519"):                               0o600,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), want)
		}
	}
}

// outputOf reads an output of the lab's workspace state.
func outputOf(t *testing.T, l *labRun, name string) string {
	t.Helper()
	ws := &remote.Workspace{Dir: filepath.Join(l.stateDir, "terraform"), Name: envOf(l, "PREFIX")}
	st, err := ws.ReadState()
	if err != nil {
		t.Fatal(err)
	}
	var v string
	if ok, err := st.Output(name, &v); !ok || err != nil || v == "" {
		t.Fatalf("output %s: %v %v %q", name, ok, err, v)
	}
	return v
}

func envOf(l *labRun, key string) string {
	for i := len(l.env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(l.env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// labSecret is the lab credential's secret from the state's clouds.yaml.
func labSecret(t *testing.T, l *labRun) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(l.stateDir, "clouds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "application_credential_secret:"); ok {
			return strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return ""
}

// checkResources looks at each resource of the node with the openstack CLI.
// The commands run in one openstack process: one start and one
// authentication instead of nine (each took 40-50 s at a load average of
// 15-30 on this 2-core machine).
func checkResources(t *testing.T, c devcloudtest.Cloud, n remote.Names, serverID, fip string, cidrs []string) {
	var server, network, subnet, router, sg, port, keypair map[string]any
	var fips, volumes []map[string]any
	cliBatch(t, c, []cliCmd{
		{&server, []string{"server", "show", n.Server()}},
		{&network, []string{"network", "show", n.Network()}},
		{&subnet, []string{"subnet", "show", n.Subnet()}},
		{&router, []string{"router", "show", n.Router()}},
		{&sg, []string{"security", "group", "show", n.SecurityGroup()}},
		{&port, []string{"port", "show", n.Server()}},
		{&keypair, []string{"keypair", "show", n.Keypair()}},
		{&fips, []string{"floating", "ip", "list", "--tags", n.FloatingIPTag()}},
		{&volumes, []string{"volume", "list", "--name", n.Server()}},
	})
	if server["id"] != serverID || server["status"] != "ACTIVE" || server["key_name"] != n.Keypair() {
		t.Errorf("server %s: id %v status %v key %v", n.Server(), server["id"], server["status"], server["key_name"])
	}
	if fl, _ := server["flavor"].(string); !strings.Contains(fl, "SCS-2V-4-20s") {
		t.Errorf("server flavor %v, want SCS-2V-4-20s", server["flavor"])
	}
	if img, _ := server["image"].(string); !strings.HasPrefix(img, "devcloud-tiny (") {
		t.Errorf("server image %v, want devcloud-tiny", server["image"])
	}
	if az := server["OS-EXT-AZ:availability_zone"]; az != "nova" {
		t.Errorf("server availability zone %v, want nova", az)
	}
	if !slices.Contains(anyStrings(network["tags"]), n.LabTag()) {
		t.Errorf("network %s: tags %v", n.Network(), network["tags"])
	}
	if subnet["cidr"] != "10.77.0.0/24" || subnet["network_id"] != network["id"] || !slices.Contains(anyStrings(subnet["dns_nameservers"]), "192.0.2.53") {
		t.Errorf("subnet %s: cidr %v network %v dns %v", n.Subnet(), subnet["cidr"], subnet["network_id"], subnet["dns_nameservers"])
	}
	if gw, _ := router["external_gateway_info"].(map[string]any); gw == nil || gw["network_id"] == nil {
		t.Errorf("router %s has no external gateway: %v", n.Router(), router["external_gateway_info"])
	}
	var ingress []string
	for _, r := range anyMaps(sg["rules"]) {
		if r["direction"] != "ingress" {
			continue
		}
		port := ""
		if p, ok := r["port_range_min"].(float64); ok {
			port = strconv.FormatFloat(p, 'f', -1, 64)
		}
		ingress = append(ingress, anyString(r["protocol"])+" "+port+" "+anyString(r["remote_ip_prefix"]))
	}
	var want []string
	for _, cidr := range cidrs {
		want = append(want, "tcp 22 "+cidr, "tcp 6443 "+cidr, "icmp  "+cidr)
	}
	sort.Strings(ingress)
	sort.Strings(want)
	if !slices.Equal(ingress, want) {
		t.Errorf("security group %s ingress rules:\n got %q\nwant %q", n.SecurityGroup(), ingress, want)
	}
	if port["device_id"] != serverID || port["network_id"] != network["id"] || !slices.Contains(anyStrings(port["security_group_ids"]), anyString(sg["id"])) {
		t.Errorf("port %s: device %v network %v groups %v", n.Server(), port["device_id"], port["network_id"], port["security_group_ids"])
	}
	if keypair["name"] != n.Keypair() || anyString(keypair["fingerprint"]) == "" {
		t.Errorf("keypair: %v", keypair)
	}
	if len(fips) != 1 || fips[0]["Floating IP Address"] != fip || fips[0]["Port"] != port["id"] {
		t.Errorf("floating IPs tagged %s: %v (want %s on port %v)", n.FloatingIPTag(), fips, fip, port["id"])
	}
	if len(volumes) != 0 {
		t.Errorf("a flavor with a disk got a root volume: %v", volumes)
	}
}

// cliCmd is one openstack command of a batch and where its JSON output goes.
type cliCmd struct {
	into any
	args []string
}

// cliBatch runs cmds (each with -f json) in one openstack process: its
// interactive mode reads them from standard input, one a line, and prints
// one JSON document each. A command that fails prints nothing there: the
// test fails with the CLI's standard error. Bounded by 10 minutes; retried
// (three attempts) only when the CLI could not connect.
func cliBatch(t *testing.T, c devcloudtest.Cloud, cmds []cliCmd) {
	t.Helper()
	var script strings.Builder
	for _, cmd := range cmds {
		for _, a := range cmd.args {
			if strings.ContainsAny(a, " \t\n'\"\\#") {
				t.Fatalf("cliBatch: argument %q would need quoting", a)
			}
		}
		script.WriteString(strings.Join(cmd.args, " ") + " -f json\n")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	var docs []json.RawMessage
	var stderr bytes.Buffer
	for attempt := 1; ; attempt++ {
		cmd := exec.CommandContext(ctx, devcloudtest.OpenstackCLI)
		cmd.Env = append(cliEnv(), c.Env()...)
		cmd.Stdin = strings.NewReader(script.String())
		var stdout bytes.Buffer
		stderr.Reset()
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = 5 * time.Second
		err := cmd.Run()
		docs = nil
		dec := json.NewDecoder(&stdout)
		for {
			var doc json.RawMessage
			if derr := dec.Decode(&doc); derr != nil {
				if derr != io.EOF {
					t.Fatalf("openstack (OS_CLOUD=%s) printed something that is not JSON: %v\nstderr: %s", c.Name, derr, stderr.String())
				}
				break
			}
			docs = append(docs, doc)
		}
		if err == nil && len(docs) == len(cmds) {
			break
		}
		if attempt == 3 || !strings.Contains(stderr.String(), "Unable to establish connection") || ctx.Err() != nil {
			t.Fatalf("openstack (OS_CLOUD=%s) with the commands\n%s: %v; %d of %d answered\nstderr: %s", c.Name, script.String(), err, len(docs), len(cmds), stderr.String())
		}
	}
	for i, cmd := range cmds {
		if err := json.Unmarshal(docs[i], cmd.into); err != nil {
			t.Fatalf("openstack %s: decode JSON: %v\noutput: %s", strings.Join(cmd.args, " "), err, docs[i])
		}
	}
}

// cliEnv is this process's environment without OS_* variables (the cloud
// comes from clouds.yaml only) and with Debian's tools first in PATH.
func cliEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OS_") || strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "PYTHONPATH=") || strings.HasPrefix(kv, "VIRTUAL_ENV=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
}

// checkGone proves that no resource with the node's names is left: one
// list per resource type, filtered by the exact name (the floating IP by
// its tag and its address), through the APIs; a transient error is retried
// within the wait's bound.
func checkGone(t *testing.T, c devcloudtest.Cloud, n remote.Names, fip string) {
	t.Helper()
	compute, network, volume := c.Compute(t), c.Network(t), c.BlockStorage(t)
	var left []string
	devcloudtest.WaitFor(t, 3*time.Minute, "a complete listing of what is left of "+n.Prefix+"'s node", func(ctx context.Context) (bool, error) {
		found, err := leftOf(ctx, compute, network, volume, n, fip)
		if err != nil {
			t.Logf("listing what is left (retried): %v", err)
			return false, nil
		}
		left = found
		return true, nil
	})
	for _, l := range left {
		t.Errorf("left after the node was removed: %s", l)
	}
}

// leftOf lists every resource that carries one of the node's names.
func leftOf(ctx context.Context, compute, network, volume *gophercloud.ServiceClient, n remote.Names, fip string) ([]string, error) {
	var left []string
	allServers, err := servers.List(compute, servers.ListOpts{Name: "^" + n.Server() + "$"}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	srvs, err := servers.ExtractServers(allServers)
	if err != nil {
		return nil, err
	}
	for _, s := range srvs {
		// Nova lists a deleted server as DELETED until its allocations are released.
		if s.Name == n.Server() && s.Status != "DELETED" {
			left = append(left, "server "+s.Name+" ("+s.ID+", "+s.Status+")")
		}
	}
	allKeys, err := keypairs.List(compute, nil).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("keypairs: %w", err)
	}
	keys, err := keypairs.ExtractKeyPairs(allKeys)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.Name == n.Keypair() {
			left = append(left, "keypair "+k.Name)
		}
	}
	lists := []struct {
		what string
		ids  func() ([]string, error)
	}{
		{"network " + n.Network(), func() ([]string, error) {
			p, err := networks.List(network, networks.ListOpts{Name: n.Network()}).AllPages(ctx)
			if err != nil {
				return nil, err
			}
			l, err := networks.ExtractNetworks(p)
			return idsOf(len(l), func(i int) string { return l[i].ID }), err
		}},
		{"subnet " + n.Subnet(), func() ([]string, error) {
			p, err := subnets.List(network, subnets.ListOpts{Name: n.Subnet()}).AllPages(ctx)
			if err != nil {
				return nil, err
			}
			l, err := subnets.ExtractSubnets(p)
			return idsOf(len(l), func(i int) string { return l[i].ID }), err
		}},
		{"router " + n.Router(), func() ([]string, error) {
			p, err := routers.List(network, routers.ListOpts{Name: n.Router()}).AllPages(ctx)
			if err != nil {
				return nil, err
			}
			l, err := routers.ExtractRouters(p)
			return idsOf(len(l), func(i int) string { return l[i].ID }), err
		}},
		{"security group " + n.SecurityGroup(), func() ([]string, error) {
			p, err := groups.List(network, groups.ListOpts{Name: n.SecurityGroup()}).AllPages(ctx)
			if err != nil {
				return nil, err
			}
			l, err := groups.ExtractGroups(p)
			return idsOf(len(l), func(i int) string { return l[i].ID }), err
		}},
		{"port " + n.Server(), func() ([]string, error) {
			p, err := ports.List(network, ports.ListOpts{Name: n.Server()}).AllPages(ctx)
			if err != nil {
				return nil, err
			}
			l, err := ports.ExtractPorts(p)
			return idsOf(len(l), func(i int) string { return l[i].ID }), err
		}},
		{"floating IP tagged " + n.FloatingIPTag(), func() ([]string, error) {
			p, err := floatingips.List(network, floatingips.ListOpts{Tags: n.FloatingIPTag()}).AllPages(ctx)
			if err != nil {
				return nil, err
			}
			l, err := floatingips.ExtractFloatingIPs(p)
			return idsOf(len(l), func(i int) string { return l[i].ID }), err
		}},
		{"floating IP " + fip, func() ([]string, error) {
			p, err := floatingips.List(network, floatingips.ListOpts{FloatingIP: fip}).AllPages(ctx)
			if err != nil {
				return nil, err
			}
			l, err := floatingips.ExtractFloatingIPs(p)
			return idsOf(len(l), func(i int) string { return l[i].ID }), err
		}},
		{"volume " + n.Server(), func() ([]string, error) {
			p, err := volumes.List(volume, volumes.ListOpts{Name: n.Server()}).AllPages(ctx)
			if err != nil {
				return nil, err
			}
			l, err := volumes.ExtractVolumes(p)
			return idsOf(len(l), func(i int) string { return l[i].ID }), err
		}},
	}
	for _, l := range lists {
		ids, err := l.ids()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.what, err)
		}
		for _, id := range ids {
			left = append(left, l.what+" ("+id+")")
		}
	}
	return left, nil
}

func idsOf(n int, id func(int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = id(i)
	}
	return out
}

// cloudInitSchema runs `cloud-init schema` of Debian's cloud-init package,
// unpacked (not installed) into the test cache, on file.
func cloudInitSchema(t *testing.T, file string) (string, error) {
	t.Helper()
	dir := filepath.Join(toolCache(t), "..", "cloud-init-deb")
	lib := filepath.Join(dir, "root", "usr", "lib", "python3", "dist-packages")
	if _, err := os.Stat(filepath.Join(lib, "cloudinit")); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		dl := exec.Command("apt-get", "download", "cloud-init")
		dl.Dir = dir
		if out, err := dl.CombinedOutput(); err != nil {
			t.Fatalf("apt-get download cloud-init: %v\n%s", err, out)
		}
		debs, _ := filepath.Glob(filepath.Join(dir, "cloud-init_*.deb"))
		if len(debs) == 0 {
			t.Fatal("apt-get download cloud-init left no package")
		}
		if out, err := exec.Command("dpkg-deb", "-x", debs[0], filepath.Join(dir, "root")).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
		}
	}
	cmd := exec.Command("/usr/bin/python3", "-c", "import sys; from cloudinit.cmd.main import main; sys.exit(main())", "schema", "--config-file", file)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+lib)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func anyString(v any) string {
	s, _ := v.(string)
	return s
}

func anyStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			out = append(out, anyString(e))
		}
	case string: // older clients print lists as "a, b"
		for _, e := range strings.Split(x, ",") {
			out = append(out, strings.TrimSpace(e))
		}
	}
	return out
}

func anyMaps(v any) []map[string]any {
	var out []map[string]any
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}
