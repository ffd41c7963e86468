package remote

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/capilab/capilab/internal/config"
)

const moduleDir = "../../terraform"

// declaredVariables reads terraform/variables.tf: each top-level variable
// block and whether it has a default. The module is formatted (tofu fmt
// is checked in the integration tier), so blocks start and end at column 0.
func declaredVariables(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(moduleDir, "variables.tf"))
	if err != nil {
		t.Fatal(err)
	}
	start := regexp.MustCompile(`^variable "([a-z_]+)" \{$`)
	vars := map[string]bool{}
	current := ""
	for _, line := range strings.Split(string(data), "\n") {
		if m := start.FindStringSubmatch(line); m != nil {
			current = m[1]
			vars[current] = false
			continue
		}
		if line == "}" {
			current = ""
			continue
		}
		if current != "" && regexp.MustCompile(`^  default\s+=`).MatchString(line) {
			vars[current] = true
		}
	}
	if len(vars) < 10 {
		t.Fatalf("found only %d variables in variables.tf", len(vars))
	}
	return vars
}

func testSettings(t *testing.T, environ ...string) *config.Settings {
	t.Helper()
	l, err := config.Load(config.Options{Dir: t.TempDir(), Environ: environ})
	if err != nil {
		t.Fatal(err)
	}
	return &l.Settings
}

// Every variable capilab passes is declared, and every declared variable
// without a default is passed: a renamed variable fails here, not at the
// first apply.
func TestVariablesMatchModule(t *testing.T) {
	declared := declaredVariables(t)
	v := NewVariables(testSettings(t), Resolved{}, "ssh-ed25519 AAAA test", "#cloud-config\n")
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var passed map[string]any
	if err := json.Unmarshal(data, &passed); err != nil {
		t.Fatal(err)
	}
	for name := range passed {
		if _, ok := declared[name]; !ok {
			t.Errorf("capilab passes %s, which variables.tf does not declare", name)
		}
	}
	for name, hasDefault := range declared {
		if _, ok := passed[name]; !ok && !hasDefault {
			t.Errorf("variables.tf requires %s, which capilab does not pass", name)
		}
	}
}

func TestNewVariables(t *testing.T) {
	res := func(disk, minDisk int) Resolved {
		return Resolved{
			ExternalNetwork: Ref{ID: "ext-id", Name: "public"},
			Image:           Image{Ref: Ref{ID: "img-id", Name: "Ubuntu 22.04"}, MinDiskGiB: minDisk},
			Flavor:          Flavor{Ref: Ref{ID: "flv-id", Name: "SCS-2V-4"}, DiskGiB: disk},
		}
	}
	tests := []struct {
		name    string
		environ []string
		res     Resolved
		check   func(t *testing.T, v Variables)
	}{
		{"defaults, flavor without disk: a 30 GiB root volume", nil, res(0, 0), func(t *testing.T, v Variables) {
			want := Variables{
				Prefix: "capi", Cloud: "", AvailabilityZone: "", MgmtCIDR: "10.0.0.0/24",
				DNSNameservers: []string{"5.1.66.255", "185.150.99.255"}, RestrictMgmtServer: []string{"0.0.0.0/0"},
				KubeAPIPort: 6443, ExternalNetworkID: "ext-id", ExternalNetworkName: "public", ImageID: "img-id", FlavorID: "flv-id",
				RootVolumeSize: 30, SSHPublicKey: "ssh-ed25519 AAAA k", UserData: "#cloud-config\n",
			}
			if !reflect.DeepEqual(v, want) {
				t.Fatalf("got  %+v\nwant %+v", v, want)
			}
		}},
		{"flavor with a disk boots from it", nil, res(20, 0), func(t *testing.T, v Variables) {
			if v.RootVolumeSize != 0 {
				t.Fatalf("root volume %d, want 0", v.RootVolumeSize)
			}
		}},
		{"image min_disk above 30 GiB sizes the root volume", nil, res(0, 50), func(t *testing.T, v Variables) {
			if v.RootVolumeSize != 50 {
				t.Fatalf("root volume %d, want 50", v.RootVolumeSize)
			}
		}},
		{"settings from the environment", []string{"PREFIX=lab7", "OS_CLOUD=mycloud", "AVAILABILITY_ZONE=az2", "MGMT_CIDR=10.9.0.0/24",
			"RESTRICT_MGMT_SERVER=192.0.2.0/24,2001:db8::/32", "DNS_NAMESERVERS=9.9.9.9"}, res(0, 0), func(t *testing.T, v Variables) {
			if v.Prefix != "lab7" || v.Cloud != "mycloud" || v.AvailabilityZone != "az2" || v.MgmtCIDR != "10.9.0.0/24" ||
				!slices.Equal(v.RestrictMgmtServer, []string{"192.0.2.0/24", "2001:db8::/32"}) || !slices.Equal(v.DNSNameservers, []string{"9.9.9.9"}) {
				t.Fatalf("got %+v", v)
			}
		}},
		{"no DNS servers is an empty list, not null", nil, res(0, 0), func(t *testing.T, v Variables) {
			if len(v.DNSNameservers) != 2 {
				t.Fatalf("defaults: %v", v.DNSNameservers)
			}
			s := testSettings(t)
			s.DNSNameservers = nil
			v = NewVariables(s, res(0, 0), "k", "u")
			data, _ := json.Marshal(v)
			if !strings.Contains(string(data), `"dns_nameservers":[]`) {
				t.Fatalf("got %s", data)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, NewVariables(testSettings(t, tt.environ...), tt.res, "ssh-ed25519 AAAA k", "#cloud-config\n"))
		})
	}
}

func TestVariablesFileIsPrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lab", "terraform.tfvars.json")
	if err := (Variables{Prefix: "x"}).Write(p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
}

// moduleAttributes returns, per resource type, the top-level attributes
// of its resource blocks in terraform/*.tf, whitespace normalised
// ("name = \"${var.prefix}-net\"").
func moduleAttributes(t *testing.T) map[string][]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(moduleDir, "*.tf"))
	start := regexp.MustCompile(`^resource "([a-z0-9_]+)" "[a-z0-9_]+" \{$`)
	attr := regexp.MustCompile(`^  ([a-z_]+)\s+=\s+(.*)$`)
	out := map[string][]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		current := ""
		for _, line := range strings.Split(string(data), "\n") {
			if m := start.FindStringSubmatch(line); m != nil {
				current = m[1]
				continue
			}
			if line == "}" {
				current = ""
			}
			if m := attr.FindStringSubmatch(line); m != nil && current != "" {
				out[current] = append(out[current], m[1]+" = "+m[2])
			}
		}
	}
	return out
}

// The module names its resources as Names does (and so as the cleanup
// rules expect).
func TestModuleUsesTheNames(t *testing.T) {
	attrs := moduleAttributes(t)
	n := Names{Prefix: "\x00"}
	expr := func(name string) string { return `"` + strings.ReplaceAll(name, "\x00", "${var.prefix}") + `"` }
	for typ, want := range map[string]string{
		"openstack_compute_instance_v2":      "name = " + expr(n.Server()),
		"openstack_networking_port_v2":       "name = " + expr(n.Server()),
		"openstack_blockstorage_volume_v3":   "name = " + expr(n.Server()),
		"openstack_networking_network_v2":    "name = " + expr(n.Network()),
		"openstack_networking_subnet_v2":     "name = " + expr(n.Subnet()),
		"openstack_networking_router_v2":     "name = " + expr(n.Router()),
		"openstack_networking_secgroup_v2":   "name = " + expr(n.SecurityGroup()),
		"openstack_compute_keypair_v2":       "name = " + expr(n.Keypair()),
		"openstack_networking_floatingip_v2": "tags = [" + expr(n.FloatingIPTag()) + ", " + expr(n.LabTag()) + "]",
	} {
		if !slices.Contains(attrs[typ], want) {
			t.Errorf("%s: the module lacks %s (has %q)", typ, want, attrs[typ])
		}
	}
}
