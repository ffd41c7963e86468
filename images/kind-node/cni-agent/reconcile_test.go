package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name, cidr, ip string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if cidr != "" {
		n.Spec.PodCIDR = cidr
		n.Spec.PodCIDRs = []string{cidr}
	}
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: name},
			{Type: corev1.NodeInternalIP, Address: ip},
		}
	}
	return n
}

func TestDesiredRoutes(t *testing.T) {
	nodes := []*corev1.Node{
		node("cp", "10.244.0.0/24", "172.18.0.2"),
		node("w1", "10.244.1.0/24", "172.18.0.3"),
		node("w2", "", "172.18.0.4"),                 // no podCIDR yet: no route
		node("w3", "10.244.3.0/24", ""),              // no address yet: no route
		node("w4", "fd00:10:244::/64", "172.18.0.5"), // family mismatch: no route
	}
	got := desiredRoutes("cp", nodes)
	want := []route{{Dst: "10.244.1.0/24", Via: "172.18.0.3"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("desiredRoutes = %v, want %v", got, want)
	}
}

func TestConflist(t *testing.T) {
	b, err := conflist([]string{"10.244.1.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		CNIVersion string `json:"cniVersion"`
		Plugins    []struct {
			Type string `json:"type"`
			IPAM struct {
				Type   string                `json:"type"`
				Ranges [][]map[string]string `json:"ranges"`
				Routes []map[string]string   `json:"routes"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("conflist is not JSON: %v\n%s", err, b)
	}
	if doc.CNIVersion == "" || len(doc.Plugins) != 2 || doc.Plugins[0].Type != "bridge" || doc.Plugins[1].Type != "portmap" {
		t.Fatalf("unexpected plugin chain:\n%s", b)
	}
	ipam := doc.Plugins[0].IPAM
	if ipam.Type != "host-local" || ipam.Ranges[0][0]["subnet"] != "10.244.1.0/24" || ipam.Routes[0]["dst"] != "0.0.0.0/0" {
		t.Fatalf("unexpected ipam:\n%s", b)
	}
	if _, err := conflist([]string{"not-a-cidr"}); err == nil {
		t.Fatal("conflist accepted an invalid CIDR")
	}
}

func TestParseIPRoutes(t *testing.T) {
	got, err := parseIPRoutes([]byte(`[{"dst":"10.244.1.0/24","gateway":"172.18.0.3","dev":"eth0","protocol":"250","flags":[]}]`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []route{{Dst: "10.244.1.0/24", Via: "172.18.0.3"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got, err := parseIPRoutes([]byte("\n")); err != nil || got != nil {
		t.Fatalf("empty output: got %v, %v", got, err)
	}
}

type fakeHost struct {
	routes map[route]bool
	masq   []string
}

func (f *fakeHost) Routes(context.Context) ([]route, error) {
	var out []route
	for r := range f.routes {
		out = append(out, r)
	}
	return out, nil
}
func (f *fakeHost) ReplaceRoute(_ context.Context, r route) error { f.routes[r] = true; return nil }
func (f *fakeHost) DeleteRoute(_ context.Context, r route) error  { delete(f.routes, r); return nil }
func (f *fakeHost) EnsureMasquerade(_ context.Context, src *net.IPNet, _ []*net.IPNet) error {
	f.masq = append(f.masq, src.String())
	return nil
}

func TestReconcile(t *testing.T) {
	dir := t.TempDir()
	stale := route{Dst: "10.244.9.0/24", Via: "172.18.0.9"}
	h := &fakeHost{routes: map[route]bool{stale: true}}
	subnets, err := parseCIDRs("10.244.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	r := &reconciler{
		log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		cfg:            config{NodeName: "w1", ConfDir: dir},
		clusterSubnets: subnets,
		host:           h,
	}
	ctx := context.Background()

	// before the podCIDR is allocated nothing is written
	if err := r.reconcile(ctx, []*corev1.Node{node("w1", "", "172.18.0.3")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, confName)); !os.IsNotExist(err) {
		t.Fatalf("CNI config written before the podCIDR was known: %v", err)
	}

	nodes := []*corev1.Node{node("cp", "10.244.0.0/24", "172.18.0.2"), node("w1", "10.244.1.0/24", "172.18.0.3")}
	for range 2 { // twice: the second pass must change nothing
		if err := r.reconcile(ctx, nodes); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, confName)); err != nil {
		t.Fatalf("CNI config not written: %v", err)
	}
	if want := map[route]bool{{Dst: "10.244.0.0/24", Via: "172.18.0.2"}: true}; !reflect.DeepEqual(h.routes, want) {
		t.Fatalf("routes = %v, want %v (stale one pruned)", h.routes, want)
	}
	if !reflect.DeepEqual(h.masq, []string{"10.244.1.0/24"}) {
		t.Fatalf("masquerade ensured for %v, want once for 10.244.1.0/24", h.masq)
	}
	if err := r.reconcile(ctx, nodes[:1]); err == nil {
		t.Fatal("reconcile without its own node succeeded")
	}
}
