//go:build integration

// Package mgmt_test proves the management cluster end to end, the way a
// user runs it: `make create CONTROLLER_COUNT=0` on devcloud with the
// providers built from their Go modules (no registry), the real
// controllers reconciling a real OpenStackCluster against devcloud through
// the lab's application credential, `make leakcheck` after deleting it, a
// second `make create` that changes nothing, and `make clean`.
package mgmt_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capilab/capilab/internal/kindcluster"
	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/internal/providers"
	"github.com/capilab/capilab/internal/versions"
	"github.com/capilab/capilab/tests/devcloudtest"
)

const labCloud = "devcloud-lab"

func TestManagementCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 75*time.Minute)
	defer cancel()
	l := devcloudtest.NewLab(t, "itmg", "integration-mgmt", "OS_CLOUD="+labCloud, "PROVIDER_SOURCE=local")
	mgmtName := l.Prefix + "-mgmt"
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer ccancel()
		if _, code, _ := l.Make(cctx, "clean"); code != 0 {
			t.Errorf("cleanup: make clean exit %d", code)
		}
		l.Make(cctx, "fullclean")
	})

	// 1. make create: kind, images built from modules, clusterctl init.
	out, code, cold := l.Make(ctx, "create", "CONTROLLER_COUNT=0")
	if code != 0 {
		t.Fatalf("make create: exit %d", code)
	}
	t.Logf("first make create: %s", cold)
	kubeconfig := filepath.Join(l.State, "mgmt", "kubeconfig")
	if st, err := os.Stat(kubeconfig); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig %s: %v (mode %v), want 0600", kubeconfig, err, st.Mode().Perm())
	}
	c, err := kube.New(mgmtName, kubeconfig, kube.Options{Context: mgmtName})
	if err != nil {
		t.Fatal(err)
	}

	// 2. The inventory lists the four providers and ORC at their pins,
	// and every controller Deployment is Available.
	pinned, err := versions.Load()
	if err != nil {
		t.Fatal(err)
	}
	want, err := providers.Pinned(pinned.Management)
	if err != nil {
		t.Fatal(err)
	}
	installed, err := providers.Inventory(ctx, c.Client)
	if err != nil {
		t.Fatal(err)
	}
	if d := providers.Compare(want, installed); !d.Empty() || len(installed) != len(want) {
		t.Fatalf("inventory %+v differs from the pins: %s", installed, d)
	}
	for _, p := range want {
		if err := c.DeploymentsAvailable(ctx, kube.Wait{Name: "t", What: p.Namespace(), Timeout: time.Minute}, p.Namespace(), nil, 1); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(out, "installed infrastructure-openstack") {
		t.Errorf("make create did not say it installed CAPO:\n%s", out)
	}

	// 3. A real OpenStackCluster through the management cluster, with the
	// lab's credential, becomes Ready; its resources exist in devcloud.
	name := "probe" + l.Prefix[len(l.Prefix)-6:]
	cluster, infra := probeCluster(name, l.Prefix)
	if err := c.Apply(ctx, infra, cluster); err != nil {
		t.Fatal(err)
	}
	// Record the cluster as the lab's, as make create_cluster does, so the
	// leak check below knows it.
	if err := os.MkdirAll(filepath.Join(l.State, "clusters", name), 0o700); err != nil {
		t.Fatal(err)
	}
	osc := schema.GroupVersionKind{Group: "infrastructure.cluster.x-k8s.io", Version: "v1beta1", Kind: "OpenStackCluster"}
	start := time.Now()
	if err := readyOpenStackCluster(ctx, c, osc, name); err != nil {
		t.Fatal(err)
	}
	t.Logf("OpenStackCluster Ready after %s", time.Since(start).Round(time.Second))
	member := devcloudtest.Member()
	resName := "k8s-clusterapi-cluster-" + kindNamespace + "-" + name
	assertExists(ctx, t, member, resName, "k8s-cluster-"+kindNamespace+"-"+name+"-secgroup-")

	// 4. Deleting it through Cluster API leaves nothing: make leakcheck.
	if err := c.Client.Delete(ctx, cluster); err != nil {
		t.Fatal(err)
	}
	if err := c.Gone(ctx, kube.Wait{Name: "t", What: "the probe Cluster to be deleted", Timeout: 10 * time.Minute}, cluster); err != nil {
		t.Fatal(err)
	}
	if _, code, _ := l.Make(ctx, "leakcheck", "CLUSTERS="+name, "NAMESPACE="+kindNamespace); code != 0 {
		t.Errorf("make leakcheck after deleting the probe cluster: exit %d, want 0", code)
	}

	// 5. A second make create changes nothing.
	out, code, warm := l.Make(ctx, "create", "CONTROLLER_COUNT=0")
	if code != 0 || !strings.Contains(out, "nothing to do") {
		t.Errorf("second make create: exit %d, want 0 and 'nothing to do'", code)
	}
	t.Logf("second make create: %s (first: %s)", warm, cold)

	// 6. make clean leaves no kind container.
	if _, code, _ := l.Make(ctx, "clean"); code != 0 {
		t.Fatalf("make clean: exit %d", code)
	}
	left, err := kindcluster.Containers(ctx, mgmtName)
	if err != nil || len(left) > 0 {
		t.Fatalf("kind containers left after make clean: %v %v", left, err)
	}
}

const kindNamespace = "capilab-system"

// probeCluster is a Cluster (no control plane) and its OpenStackCluster:
// managed network, subnet, router, security groups and an API load
// balancer, with the lab's credential.
func probeCluster(name, prefix string) (*unstructured.Unstructured, *unstructured.Unstructured) {
	infra := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1", "kind": "OpenStackCluster",
		"metadata": map[string]any{"name": name, "namespace": kindNamespace},
		"spec": map[string]any{
			"identityRef":           map[string]any{"name": prefix + "-cloud-config", "cloudName": prefix},
			"managedSubnets":        []any{map[string]any{"cidr": "10.66.0.0/24"}},
			"managedSecurityGroups": map[string]any{},
			"externalNetwork":       map[string]any{"filter": map[string]any{"name": "public"}},
			"apiServerLoadBalancer": map[string]any{"enabled": true},
		},
	}}
	cluster := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
		"metadata": map[string]any{"name": name, "namespace": kindNamespace},
		"spec": map[string]any{
			"infrastructureRef": map[string]any{"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "OpenStackCluster", "name": name},
		},
	}}
	return cluster, infra
}

func readyOpenStackCluster(ctx context.Context, c *kube.Cluster, gvk schema.GroupVersionKind, name string) error {
	return c.WaitFor(ctx, kube.Wait{Name: "wait-openstackcluster", What: "OpenStackCluster " + name + " to be Ready", Timeout: 10 * time.Minute},
		func(ctx context.Context) (bool, string, error) {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			if err := c.Client.Get(ctx, client.ObjectKey{Namespace: kindNamespace, Name: name}, u); err != nil {
				return false, err.Error(), nil
			}
			ready, _, _ := unstructured.NestedBool(u.Object, "status", "ready")
			return ready, kube.SummarizeConditions(kube.Conditions(u)), nil
		})
}

func assertExists(ctx context.Context, t *testing.T, cloud devcloudtest.Cloud, name, sgPrefix string) {
	t.Helper()
	net := cloud.Network(t)
	count := func(what string, n int, err error) {
		if err != nil || n != 1 {
			t.Errorf("%s %s: %d found, %v (want 1)", what, name, n, err)
		}
	}
	nets, err := networks.List(net, networks.ListOpts{Name: name}).AllPages(ctx)
	list, _ := networks.ExtractNetworks(nets)
	count("network", len(list), err)
	sp, err := subnets.List(net, subnets.ListOpts{Name: name}).AllPages(ctx)
	sl, _ := subnets.ExtractSubnets(sp)
	count("subnet", len(sl), err)
	rp, err := routers.List(net, routers.ListOpts{Name: name}).AllPages(ctx)
	rl, _ := routers.ExtractRouters(rp)
	count("router", len(rl), err)
	for _, role := range []string{"controlplane", "worker"} {
		gp, err := groups.List(net, groups.ListOpts{Name: sgPrefix + role}).AllPages(ctx)
		gl, _ := groups.ExtractGroups(gp)
		count("security group "+role, len(gl), err)
	}
	lp, err := loadbalancers.List(cloud.LoadBalancer(t), loadbalancers.ListOpts{Name: name + "-kubeapi"}).AllPages(ctx)
	ll, _ := loadbalancers.ExtractLoadBalancers(lp)
	count("load balancer", len(ll), err)
}
