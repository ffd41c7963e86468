//go:build integration

// Package workload_test proves workload clusters end to end on the local
// lab (devcloud, its data plane, the management cluster with the real
// controllers): `make create_cluster` of two clusters in parallel up to
// Ready nodes, their OpenStack resources under the names CAPO gives them,
// a LoadBalancer Service and a PVC inside a cluster, `make delete_cluster`
// removing what OCCM and Cinder CSI made, `make leakcheck`, and an
// interrupted create that a re-run finishes.
package workload_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/tests/devcloudtest"
)

const labCloud = "devcloud-lab"

func TestWorkloadClusters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Minute)
	defer cancel()
	l := newLabWithManagement(ctx, t, "itwl", "integration-workload", 20*time.Minute)
	a, b := "a"+l.Prefix[len(l.Prefix)-6:], "b"+l.Prefix[len(l.Prefix)-6:]

	// Two clusters in parallel: a create interrupted once their objects are
	// applied, then a re-run that finishes the job, up to Ready nodes.
	interruptedCreate(ctx, t, l, "CLUSTERS="+a+","+b)
	out, code, elapsed := l.Make(ctx, "create_cluster", "CLUSTERS="+a+","+b)
	if code != 0 {
		t.Fatalf("make create_cluster CLUSTERS=%s,%s (re-run after the interrupt): exit %d", a, b, code)
	}
	t.Logf("TIMING two clusters in parallel (re-run after the interrupt): %s", elapsed)
	for _, name := range []string{a, b} {
		if !strings.Contains(out, name) {
			t.Errorf("the summary does not name %s", name)
		}
		wl := workloadCluster(t, l, name)
		if err := wl.NodesReady(ctx, kube.Wait{Name: "t", What: name + " nodes", Timeout: 2 * time.Minute}, 2); err != nil {
			t.Errorf("cluster %s: %v", name, err)
		}
		assertCAPOResources(ctx, t, name)
	}

	// Inside cluster a: a LoadBalancer Service (OCCM) and a PVC (Cinder CSI).
	wl := workloadCluster(t, l, a)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt(8080)}}}}
	if err := wl.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	if err := wl.Client.Create(ctx, pvc); err != nil {
		t.Fatal(err)
	}
	lbName := "kube_service_" + a + "_default_web"
	member := devcloudtest.Member()
	devcloudtest.WaitFor(t, 5*time.Minute, "OCCM's load balancer "+lbName, func(ctx context.Context) (bool, error) {
		pages, err := loadbalancers.List(member.LoadBalancer(t), loadbalancers.ListOpts{Name: lbName}).AllPages(ctx)
		if err != nil {
			return false, err
		}
		list, err := loadbalancers.ExtractLoadBalancers(pages)
		return len(list) == 1, err
	})

	// Delete both: OCCM's load balancer is gone, and nothing is left.
	if _, code, _ := l.Make(ctx, "delete_cluster", "CLUSTERS="+a+","+b); code != 0 {
		t.Fatalf("make delete_cluster: exit %d", code)
	}
	pages, err := loadbalancers.List(member.LoadBalancer(t), loadbalancers.ListOpts{Name: lbName}).AllPages(ctx)
	if list, _ := loadbalancers.ExtractLoadBalancers(pages); err != nil || len(list) != 0 {
		t.Errorf("OCCM's load balancer %s left after delete_cluster: %v", lbName, err)
	}
	if _, code, _ := l.Make(ctx, "leakcheck"); code != 0 {
		t.Errorf("make leakcheck after delete_cluster: exit %d", code)
	}

}

// newLabWithManagement makes a local-lab lab (1 control plane + 1 worker
// per cluster) with its management cluster, removed with everything the
// lab owns when the test ends (bounded by cleanup).
func newLabWithManagement(ctx context.Context, tb testing.TB, kind, artifacts string, cleanup time.Duration) *devcloudtest.Lab {
	tb.Helper()
	l := devcloudtest.NewLab(tb, kind, artifacts, "OS_CLOUD="+labCloud, "PROVIDER_SOURCE=local",
		"CONTROLLER_COUNT=1", "WORKER_COUNT=1")
	tb.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), cleanup)
		defer ccancel()
		l.Make(cctx, "clean")
		l.Make(cctx, "fullclean")
	})
	if _, code, _ := l.Make(ctx, "create", "CONTROLLER_COUNT=0"); code != 0 {
		tb.Fatalf("make create: exit %d", code)
	}
	return l
}

func workloadCluster(t *testing.T, l *devcloudtest.Lab, name string) *kube.Cluster {
	t.Helper()
	c, err := kube.New(name, filepath.Join(l.State, "clusters", name, "kubeconfig"), kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// assertCAPOResources: the network CAPO names after the cluster and its API
// load balancer exist in devcloud.
func assertCAPOResources(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	member := devcloudtest.Member()
	res := "k8s-clusterapi-cluster-" + name + "-" + name
	pages, err := networks.List(member.Network(t), networks.ListOpts{Name: res}).AllPages(ctx)
	nets, _ := networks.ExtractNetworks(pages)
	if err != nil || len(nets) != 1 {
		t.Errorf("network %s: %d, %v", res, len(nets), err)
	}
	lp, err := loadbalancers.List(member.LoadBalancer(t), loadbalancers.ListOpts{Name: res + "-kubeapi"}).AllPages(ctx)
	lbs, _ := loadbalancers.ExtractLoadBalancers(lp)
	if err != nil || len(lbs) != 1 {
		t.Errorf("API load balancer %s-kubeapi: %d, %v", res, len(lbs), err)
	}
}

// interruptedCreate starts make create_cluster and sends it SIGINT (what
// Ctrl-C sends) once the cluster's objects are applied.
func interruptedCreate(ctx context.Context, t *testing.T, l *devcloudtest.Lab, clusters string) {
	t.Helper()
	args := append([]string{"-C", l.Repo, "create_cluster", clusters, "PREFIX=" + l.Prefix, "STATE_DIR=" + l.State, "ARTIFACTS_DIR=" + l.Artifacts}, l.Vars...)
	cmd := exec.CommandContext(ctx, "make", args...)
	out := &devcloudtest.LogWriter{T: t}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	devcloudtest.WaitFor(t, 10*time.Minute, "create_cluster to apply the cluster's objects", func(context.Context) (bool, error) {
		return strings.Contains(out.String(), "cluster objects applied"), nil
	})
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	err := cmd.Wait()
	t.Logf("interrupted create_cluster %s: %v", clusters, err)
	if err == nil {
		t.Fatal(fmt.Errorf("create_cluster finished although it was interrupted"))
	}
}
