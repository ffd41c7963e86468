package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/capilab/capilab/internal/kube"
)

type fakeCloud struct {
	flavors map[string]Flavor
	images  map[string]bool
	quota   Quota
	calls   []string
	faults  map[string]string // server ID → Nova's fault message
}

func (f *fakeCloud) Name() string { return "testcloud" }
func (f *fakeCloud) Flavor(_ context.Context, name string) (Flavor, error) {
	if fl, ok := f.flavors[name]; ok {
		return fl, nil
	}
	return Flavor{}, fmt.Errorf("flavor %s on cloud testcloud: %w", name, ErrNotFound)
}
func (f *fakeCloud) Image(_ context.Context, name string) (Image, error) {
	if f.images[name] {
		return Image{Name: name}, nil
	}
	return Image{}, fmt.Errorf("active image %s on cloud testcloud: %w", name, ErrNotFound)
}
func (f *fakeCloud) ExternalNetwork(_ context.Context, n string) (string, error) {
	if n == "public" || n == "" {
		return "public", nil
	}
	return "", fmt.Errorf("external network %s on cloud testcloud: %w", n, ErrNotFound)
}
func (f *fakeCloud) Quota(context.Context) (Quota, error) { return f.quota, nil }
func (f *fakeCloud) EnsureServerGroup(_ context.Context, name, policy string) (string, error) {
	f.calls = append(f.calls, "sg "+name+" "+policy)
	return "id-" + name, nil
}
func (f *fakeCloud) DeleteServerGroups(_ context.Context, name string) error {
	f.calls = append(f.calls, "delete sg "+name)
	return nil
}
func (f *fakeCloud) EnsureSecurityGroup(_ context.Context, name, _ string, _ []Rule) error {
	f.calls = append(f.calls, "secgroup "+name)
	return nil
}
func (f *fakeCloud) SubnetCIDRs(context.Context) ([]string, error) { return nil, nil }

func (f *fakeCloud) ServerFault(_ context.Context, id string) (string, error) {
	return f.faults[id], nil
}

func (f *fakeCloud) DeleteSecurityGroups(_ context.Context, name string) error {
	f.calls = append(f.calls, "delete secgroup "+name)
	return nil
}

func unlimited() Quota {
	u := Usage{-1, 0}
	return Quota{u, u, u, u, u, u, u, u, u}
}

func testManager(t *testing.T, cloud *fakeCloud, existing ...*clusterv1.Cluster) *Manager {
	b := crfake.NewClientBuilder().WithScheme(kube.Scheme())
	for _, c := range existing {
		b = b.WithObjects(c)
	}
	return &Manager{Prefix: "capi", Cloud: cloud, Mgmt: &kube.Cluster{Name: "mgmt", Client: b.Build(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func goodCloud() *fakeCloud {
	return &fakeCloud{flavors: map[string]Flavor{"SCS-2V-4-20s": {Name: "SCS-2V-4-20s", VCPUs: 2, RAMMiB: 4096, DiskGiB: 20}, "SCS-4V-8-20s": {VCPUs: 4, RAMMiB: 8192, DiskGiB: 20}},
		images: map[string]bool{"ubuntu-capi-image-v1.34.3": true}, quota: unlimited()}
}

func TestPreflightPasses(t *testing.T) {
	m := testManager(t, goodCloud())
	if err := m.Preflight(context.Background(), []Spec{baseSpec()}); err != nil {
		t.Fatal(err)
	}
}

// Every problem is one line, all of them at once, before anything is made.
func TestPreflightReportsEveryProblem(t *testing.T) {
	cloud := goodCloud()
	s := baseSpec()
	s.WorkerFlavor = "no-such-flavor"
	s.ImageName = "no-such-image"
	s.ExternalNetwork = "nowhere"
	m := testManager(t, cloud)
	err := m.Preflight(context.Background(), []Spec{s})
	var bad *BadInputError
	if !errors.As(err, &bad) || len(bad.Problems) != 3 {
		t.Fatalf("err = %v, want 3 problems", err)
	}
	for i, want := range []string{"flavor no-such-flavor", "node image", "external network nowhere"} {
		if !strings.Contains(bad.Problems[i], want) {
			t.Errorf("problem %d: %q lacks %q", i, bad.Problems[i], want)
		}
	}
	if len(cloud.calls) != 0 {
		t.Errorf("preflight changed the cloud: %v", cloud.calls)
	}
}

func TestPreflightOverlappingNodeCIDRs(t *testing.T) {
	other := &clusterv1.Cluster{ObjectMeta: metav1.ObjectMeta{Name: "beta", Namespace: "beta", Labels: map[string]string{"capilab.dev/lab": "capi"}},
		Spec: clusterv1.ClusterSpec{Topology: clusterv1.Topology{Variables: []clusterv1.ClusterVariable{{Name: VarNodeCIDR, Value: *rawJSON("10.8.0.0/20")}}}}}
	m := testManager(t, goodCloud(), other)
	m.Options.DistinctNodeCIDRs = true
	a, c := baseSpec(), baseSpec()
	c.Name, c.NodeCIDR = "gamma", "10.8.8.0/24"
	a.NodeCIDR = "10.9.0.0/20"
	err := m.Preflight(context.Background(), []Spec{a, c})
	var bad *BadInputError
	if !errors.As(err, &bad) || len(bad.Problems) != 1 || !strings.Contains(bad.Problems[0], "cluster gamma: node_cidr 10.8.8.0/24 overlaps cluster beta's 10.8.0.0/20") {
		t.Fatalf("err = %v", err)
	}
	// The same CIDRs on a real cloud (separate networks) are fine.
	m.Options.DistinctNodeCIDRs = false
	if err := m.Preflight(context.Background(), []Spec{a, c}); err != nil {
		t.Fatal(err)
	}
}

func TestQuotaRefusesNamingTheResource(t *testing.T) {
	cloud := goodCloud()
	cloud.quota.Cores = Usage{Limit: 20, InUse: 10}
	cloud.quota.FloatingIPs = Usage{Limit: 5, InUse: 4}
	m := testManager(t, cloud)
	a, b := baseSpec(), baseSpec() // 1x2 + 3x4 = 14 cores each
	b.Name = "beta"
	err := m.Preflight(context.Background(), []Spec{a, b})
	var bad *BadInputError
	if !errors.As(err, &bad) || len(bad.Problems) != 2 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(bad.Problems[0], "cores: clusters alpha,beta need 28, 10 of 20 are free") || !strings.Contains(bad.Problems[1], "floating IPs: clusters alpha,beta need 2, 1 of 5 are free") {
		t.Errorf("problems %q", bad.Problems)
	}
}

func TestNeedOf(t *testing.T) {
	s := baseSpec()
	s.ControlPlaneCount, s.WorkerCount = 3, 2
	s.WorkerRootVolumeGiB = 30
	cp := Flavor{VCPUs: 2, RAMMiB: 4096}
	w := Flavor{VCPUs: 4, RAMMiB: 8192}
	n := NeedOf(s, cp, w, true, true)
	want := Need{Cluster: "alpha", Instances: 5, Cores: 14, RAMMiB: 28672, Volumes: 2, GigabytesVolumes: 60, LoadBalancers: 1, FloatingIPs: 1, SecurityGroups: 3, ServerGroups: 2}
	if n != want {
		t.Errorf("NeedOf = %+v, want %+v", n, want)
	}
	s.RestrictKubeAPI = []string{"none"}
	if NeedOf(s, cp, w, false, false).FloatingIPs != 0 {
		t.Error("an internal-only API needs no floating IP")
	}
}
