package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mkNode(name, cidr, ip string) node {
	var n node
	n.Metadata.Name = name
	if cidr != "" {
		n.Spec.PodCIDR = cidr
		n.Spec.PodCIDRs = []string{cidr}
	}
	if ip != "" {
		n.Status.Addresses = append(n.Status.Addresses,
			struct {
				Type    string `json:"type"`
				Address string `json:"address"`
			}{"Hostname", name},
			struct {
				Type    string `json:"type"`
				Address string `json:"address"`
			}{"InternalIP", ip})
	}
	return n
}

func TestDesiredRoutes(t *testing.T) {
	nodes := []node{
		mkNode("cp", "10.244.0.0/24", "172.18.0.2"),
		mkNode("w1", "10.244.1.0/24", "172.18.0.3"),
		mkNode("w2", "", "172.18.0.4"),                 // no podCIDR yet: no route
		mkNode("w3", "10.244.3.0/24", ""),              // no address yet: no route
		mkNode("w4", "fd00:10:244::/64", "172.18.0.5"), // family mismatch: no route
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
	if err := r.reconcile(ctx, []node{mkNode("w1", "", "172.18.0.3")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, confName)); !os.IsNotExist(err) {
		t.Fatalf("CNI config written before the podCIDR was known: %v", err)
	}

	nodes := []node{mkNode("cp", "10.244.0.0/24", "172.18.0.2"), mkNode("w1", "10.244.1.0/24", "172.18.0.3")}
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

func TestListNodes(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/nodes" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, `{"kind":"NodeList","items":[{"metadata":{"name":"cp"},"spec":{"podCIDR":"10.244.0.0/24","podCIDRs":["10.244.0.0/24"]},"status":{"addresses":[{"type":"InternalIP","address":"172.18.0.2"}]}}]}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	c := newAPIClient(srv.URL, tokenFile, &tls.Config{RootCAs: pool})
	nodes, err := c.listNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].Metadata.Name != "cp" || podCIDRs(&nodes[0])[0] != "10.244.0.0/24" || nodes[0].Status.Addresses[0].Address != "172.18.0.2" {
		t.Fatalf("decoded %+v", nodes)
	}
	if err := os.WriteFile(tokenFile, []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.listNodes(context.Background()); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a rejected token gave %v", err)
	}
}
