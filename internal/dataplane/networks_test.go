package dataplane

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/capilab/capilab/internal/dataplane/docker"
)

func TestNetSpecs(t *testing.T) {
	nets := []Network{
		{ID: "ext", Name: "public", External: true},
		{ID: "t1", Name: "k8s-net"},
		{ID: "nogw", Name: "isolated"},
		{ID: "two", Name: "two-subnets"},
		{ID: "v6", Name: "v6-only"},
		{ID: "badgw", Name: "bad-gateway"},
	}
	subnets := []Subnet{
		{ID: "s-ext", NetworkID: "ext", CIDR: "172.24.4.0/24", GatewayIP: "172.24.4.1", IPVersion: 4},
		{ID: "s-t1", NetworkID: "t1", CIDR: "10.6.0.0/24", GatewayIP: "10.6.0.1", IPVersion: 4},
		{ID: "s-nogw", NetworkID: "nogw", CIDR: "10.7.0.0/24", IPVersion: 4},
		{ID: "s-two-a", NetworkID: "two", CIDR: "10.8.0.0/24", GatewayIP: "10.8.0.1", IPVersion: 4},
		{ID: "s-two-b", NetworkID: "two", CIDR: "10.9.0.0/24", GatewayIP: "10.9.0.1", IPVersion: 4},
		{ID: "s-v6", NetworkID: "v6", CIDR: "fd00::/64", GatewayIP: "fd00::1", IPVersion: 6},
		{ID: "s-bad", NetworkID: "badgw", CIDR: "10.10.0.0/24", GatewayIP: "10.11.0.1", IPVersion: 4},
	}
	specs, problems := netSpecs(nets, subnets)
	want := map[string]NetSpec{
		"ext": {NetworkID: "ext", Name: "public", SubnetID: "s-ext", CIDR: netip.MustParsePrefix("172.24.4.0/24"), Gateway: netip.MustParseAddr("172.24.4.1"), External: true},
		"t1":  {NetworkID: "t1", Name: "k8s-net", SubnetID: "s-t1", CIDR: netip.MustParsePrefix("10.6.0.0/24"), Gateway: netip.MustParseAddr("10.6.0.1")},
		"two": {NetworkID: "two", Name: "two-subnets", SubnetID: "s-two-a", CIDR: netip.MustParsePrefix("10.8.0.0/24"), Gateway: netip.MustParseAddr("10.8.0.1")},
	}
	if len(specs) != len(want) {
		t.Errorf("got %d specs %v, want %d", len(specs), specs, len(want))
	}
	for id, w := range want {
		if specs[id] != w {
			t.Errorf("spec %s = %+v, want %+v", id, specs[id], w)
		}
	}
	for id, frag := range map[string]string{"nogw": "no IPv4 subnet with a gateway", "two": "not reachable: 10.9.0.0/24", "badgw": "is not an address in"} {
		if !strings.Contains(problems[id], frag) {
			t.Errorf("problem of %s = %q, want it to say %q", id, problems[id], frag)
		}
	}
	if _, ok := problems["v6"]; ok {
		t.Errorf("an IPv6-only network is not a problem, just not mirrored: %q", problems["v6"])
	}
}

func TestMirrorSpecNeverLetsDockerAllocate(t *testing.T) {
	s := NetSpec{NetworkID: "0123456789abcdef", Name: "k8s-clusterapi-cluster-default-a-very-long-cluster-name", CIDR: netip.MustParsePrefix("10.6.0.0/24"), Gateway: netip.MustParseAddr("10.6.0.1")}
	ds := mirrorSpec("devcloud", s)
	if got := ds.IPAM.Config[0]; got.IPRange != "10.6.0.1/32" || got.Gateway != "10.6.0.1" || got.Subnet != "10.6.0.0/24" {
		t.Errorf("IPAM %+v: the range must hold only the gateway", got)
	}
	if b := ds.Options["com.docker.network.bridge.name"]; len(b) > 15 || b != "dc-01234567" {
		t.Errorf("bridge name %q (at most 15 characters)", b)
	}
	if ds.Options["com.docker.network.bridge.enable_ip_masquerade"] != "false" {
		t.Error("masquerading must be off")
	}
	if len(ds.Name) > 64 || !strings.HasPrefix(ds.Name, "devcloud-") || !strings.HasSuffix(ds.Name, "-01234567") {
		t.Errorf("name %q", ds.Name)
	}
	m, ok := mirrorFromDocker(docker.Network{ID: "d", Name: ds.Name, Labels: ds.Labels, Options: ds.Options})
	if !ok || m.Spec.CIDR != s.CIDR || m.Spec.Gateway != s.Gateway || m.Spec.NetworkID != s.NetworkID || m.Bridge != "dc-01234567" {
		t.Errorf("round trip through labels: %+v", m)
	}
}

func TestOverlapping(t *testing.T) {
	nets := []docker.Network{
		{ID: "1", Name: "kind", IPAM: docker.IPAM{Config: []docker.IPAMConfig{{Subnet: "172.18.0.0/16"}, {Subnet: "fc00:f853:ccd:e793::/64"}}}},
		{ID: "2", Name: "devcloud-a", Labels: map[string]string{LabelOwner: "devcloud", LabelNetworkID: "net-a"}, IPAM: docker.IPAM{Config: []docker.IPAMConfig{{Subnet: "10.6.0.0/24"}}}},
		{ID: "3", Name: "host"},
	}
	tests := []struct {
		cidr string
		skip map[string]bool
		want []string
	}{
		{"10.6.0.0/24", nil, []string{"Neutron network net-a (10.6.0.0/24)"}},
		{"10.6.0.128/25", nil, []string{"Neutron network net-a (10.6.0.0/24)"}},
		{"10.0.0.0/8", nil, []string{"Neutron network net-a (10.6.0.0/24)"}},
		{"10.6.0.0/24", map[string]bool{"2": true}, nil},
		{"172.18.5.0/24", nil, []string{"Docker network kind (172.18.0.0/16)"}},
		{"10.7.0.0/24", nil, nil},
	}
	for _, tt := range tests {
		got := overlapping(nets, netip.MustParsePrefix(tt.cidr), tt.skip)
		if !slices.Equal(got, tt.want) {
			t.Errorf("overlapping(%s) = %v, want %v", tt.cidr, got, tt.want)
		}
	}
}

// fakeIPTables keeps DOCKER-USER as iptables -S prints it.
type fakeIPTables struct {
	lines []string
	calls []string
}

func (f *fakeIPTables) run(_ context.Context, args ...string) ([]byte, error) {
	f.calls = append(f.calls, strings.Join(args, " "))
	switch args[0] {
	case "-S":
		return []byte(strings.Join(append([]string{"-N DOCKER-USER"}, f.lines...), "\n") + "\n"), nil
	case "-I":
		rule := "-A DOCKER-USER " + strings.Join(args[3:], " ")
		f.lines = append([]string{rule}, f.lines...)
	case "-D":
		rule := "-A DOCKER-USER " + strings.Join(args[2:], " ")
		f.lines = slices.DeleteFunc(f.lines, func(l string) bool { return l == rule })
	}
	return nil, nil
}

func TestIPTablesSync(t *testing.T) {
	fake := &fakeIPTables{lines: []string{
		"-A DOCKER-USER -i br-other -o br-x -j DROP", // someone else's: never touched
		"-A DOCKER-USER -i dc-old -o dc-pub -m comment --comment capilab-dataplane:devcloud:devcloud-old -j ACCEPT",
		"-A DOCKER-USER -i dc-a -o dc-pub -m comment --comment capilab-dataplane:other:x -j ACCEPT", // another owner's
		"-A DOCKER-USER -j RETURN",
	}}
	fw := &IPTables{Owner: "devcloud", Run: fake.run}
	want := []Rule{{In: "dc-a", Out: "dc-pub", Network: "devcloud-a"}, {In: "dc-pub", Out: "dc-a", Network: "devcloud-a"}}
	ctx := context.Background()
	if err := fw.Sync(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err := fw.Rules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sameRules(got, want) {
		t.Errorf("rules %v, want %v", got, want)
	}
	for _, keep := range []string{"-A DOCKER-USER -i br-other -o br-x -j DROP", "-A DOCKER-USER -j RETURN", "capilab-dataplane:other:x"} {
		if !slices.ContainsFunc(fake.lines, func(l string) bool { return strings.Contains(l, keep) }) {
			t.Errorf("rule %q of someone else was removed: %v", keep, fake.lines)
		}
	}
	if fake.lines[len(fake.lines)-1] != "-A DOCKER-USER -j RETURN" {
		t.Errorf("our rules must come before Docker's RETURN: %v", fake.lines)
	}
	n := len(fake.calls)
	if err := fw.Sync(ctx, want); err != nil {
		t.Fatal(err)
	}
	if len(fake.calls) != n+1 {
		t.Errorf("a second Sync changed something: %v", fake.calls[n:])
	}
	if err := fw.RemoveAll(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := fw.Rules(ctx); len(got) != 0 {
		t.Errorf("RemoveAll left %v", got)
	}
	if len(fake.lines) != 3 {
		t.Errorf("RemoveAll touched other rules: %v", fake.lines)
	}
}

func TestParseRulesQuotedComment(t *testing.T) {
	got := parseRules(`-A DOCKER-USER -i dc-a -o dc-b -m comment --comment "capilab-dataplane:devcloud:devcloud-public-1234" -j ACCEPT`, "capilab-dataplane:devcloud:")
	if len(got) != 1 || got[0] != (Rule{In: "dc-a", Out: "dc-b", Network: "devcloud-public-1234"}) {
		t.Errorf("got %v", got)
	}
}

func sameRules(a, b []Rule) bool {
	if len(a) != len(b) {
		return false
	}
	for _, r := range a {
		if !slices.Contains(b, r) {
			return false
		}
	}
	return true
}
