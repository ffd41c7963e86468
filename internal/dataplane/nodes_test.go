package dataplane

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNodeContainerSpec(t *testing.T) {
	a, err := New(Options{Network: nil, Docker: nil, StateDir: "x"})
	if err == nil || !strings.Contains(err.Error(), "Network") || !strings.Contains(err.Error(), "Docker") {
		t.Fatalf("New without clients: %v", err)
	}
	a = &Agent{opts: Options{Owner: "devcloud"}}
	n := &node{
		server: Server{ID: "0f6e2c1a-aaaa-bbbb-cccc-000000000001", Name: "Cluster A / CP 1", Hostname: "cluster-a-cp-1", Created: time.Now()},
		image:  "kindest/node:test", ip: "10.6.0.10", network: "net-1",
		port: Port{ID: "p1", MACAddress: "fa:16:3e:00:00:01"},
	}
	spec := a.nodeContainerSpec(n, mirror{DockerName: "devcloud-net-1"})
	if spec.Name != "devcloud-cluster-a-cp-1-0f6e2c1a" || spec.Hostname != "cluster-a-cp-1" {
		t.Errorf("name %q hostname %q", spec.Name, spec.Hostname)
	}
	if !spec.Privileged || spec.CgroupnsMode != "private" || spec.Tmpfs["/run"] == "" || spec.Tmpfs["/tmp"] == "" ||
		!slices.Equal(spec.Volumes, []string{"/var"}) || !slices.Contains(spec.Binds, "/lib/modules:/lib/modules:ro") ||
		spec.Init == nil || *spec.Init || !spec.Tty {
		t.Errorf("not a kind-style node: %+v", spec)
	}
	if spec.IPv4 != "10.6.0.10" || spec.MAC != "fa:16:3e:00:00:01" || spec.Network != "devcloud-net-1" {
		t.Errorf("placement: %+v", spec)
	}
	if spec.Labels[LabelOwner] != "devcloud" || spec.Labels[LabelServerID] != n.server.ID || spec.Labels[LabelSpec] == "" {
		t.Errorf("labels %v", spec.Labels)
	}
	// The spec hash changes with what requires a new container.
	h := n.specHash("devcloud-net-1")
	n2 := *n
	n2.ip = "10.6.0.11"
	if n2.specHash("devcloud-net-1") == h || n.specHash("other-net") == h {
		t.Error("spec hash must change with the address or network")
	}
}

func TestServerGoneAndUserData(t *testing.T) {
	del := "deleting"
	for _, tt := range []struct {
		s    Server
		gone bool
	}{
		{Server{Status: "ACTIVE"}, false}, {Server{Status: "DELETED"}, true}, {Server{Status: "SOFT_DELETED"}, true},
		{Server{Status: "ACTIVE", TaskState: &del}, true}, {Server{Status: "ERROR"}, false},
	} {
		if got := serverGone(tt.s); got != tt.gone {
			t.Errorf("serverGone(%+v) = %t", tt.s, got)
		}
	}
	s := Server{UserData: "I2Nsb3VkLWNvbmZpZwo=", Image: []byte(`{"id": "img-1", "links": []}`)}
	ud, err := s.DecodedUserData()
	if err != nil || string(ud) != "#cloud-config\n" {
		t.Errorf("user data %q %v", ud, err)
	}
	if s.ImageID() != "img-1" || (Server{Image: []byte(`""`)}).ImageID() != "" {
		t.Error("image id")
	}
	if (Server{Name: "n"}).HostnameOrName() != "n" {
		t.Error("hostname falls back to the name")
	}
}

func TestFIPScript(t *testing.T) {
	s := fipScript("172.24.4.50", "10.6.0.10")
	for _, want := range []string{
		"iptables -t nat -A PREROUTING -d 172.24.4.50 -j DNAT --to-destination 10.6.0.10",
		"iptables -t nat -A POSTROUTING -d 10.6.0.10 -j SNAT --to-source 172.24.4.50",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
}

func TestLastLine(t *testing.T) {
	if got := lastLine("=== runcmd\nerror: kubeadm failed\n=== runcmd FAILED: exit 1\n", 100); got != "error: kubeadm failed" {
		t.Errorf("%q", got)
	}
}
