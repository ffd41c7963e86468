package addons

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/capilab/capilab/internal/cleanup"
	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/internal/logging"
)

func fakeCluster(t *testing.T, reachable bool, objs ...client.Object) *kube.Cluster {
	t.Helper()
	cs := clientfake.NewClientset()
	if !reachable {
		cs.Discovery().(interface {
			PrependReactor(verb, resource string, fn k8stesting.ReactionFunc)
		}).PrependReactor("get", "version", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("dial tcp 172.24.4.10:6443: connect: no route to host")
		})
	}
	c := fake.NewClientBuilder().WithScheme(kube.Scheme()).WithObjects(objs...).WithStatusSubresource(&appsv1.Deployment{}, &appsv1.DaemonSet{}).Build()
	return &kube.Cluster{Name: "alpha", Client: c, Clientset: cs, Config: &rest.Config{Host: "https://172.24.4.10:6443"}, Log: logging.Discard()}
}

func pvc(ns, name, volume string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PersistentVolumeClaimSpec{VolumeName: volume}}
}

func pv(name, claimNS, claim, handle string, policy corev1.PersistentVolumeReclaimPolicy) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PersistentVolumeSpec{
		PersistentVolumeReclaimPolicy: policy,
		ClaimRef:                      &corev1.ObjectReference{Namespace: claimNS, Name: claim},
		PersistentVolumeSource:        corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: CinderDriver, VolumeHandle: handle}},
	}}
}

// fakeCloud plays OpenStack with OCCM and the CSI provisioner behind it:
// the cluster's load balancer and volume disappear after some polls, and
// the provisioner then removes the PV.
type fakeCloud struct {
	mu       sync.Mutex
	polls    int
	lbGone   int // poll from which the load balancer is gone (0: never)
	volGone  int
	onVolume func()
}

func (f *fakeCloud) List(_ context.Context, t cleanup.Type) ([]cleanup.Resource, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cleanup.Resource
	switch t {
	case cleanup.LoadBalancer:
		f.polls++
		if f.lbGone == 0 || f.polls < f.lbGone {
			out = append(out, cleanup.Resource{Type: t, ID: "lb1", Name: "kube_service_alpha_default_web"})
		}
		out = append(out, cleanup.Resource{Type: t, ID: "lb2", Name: "kube_service_alpha2_default_web"},
			cleanup.Resource{Type: t, ID: "lb3", Name: "k8s-clusterapi-cluster-alpha-alpha-kubeapi"})
	case cleanup.FloatingIP:
		out = append(out, cleanup.Resource{Type: t, ID: "fip2", Description: "Floating IP for Kubernetes external service default/web from cluster alpha2"})
	case cleanup.Volume:
		if f.volGone == 0 || f.polls < f.volGone {
			out = append(out, cleanup.Resource{Type: t, ID: "vol-1", Name: "pvc-1", Metadata: map[string]string{CSIClusterKey: "alpha"}})
		} else if f.onVolume != nil {
			f.onVolume()
			f.onVolume = nil
		}
		out = append(out, cleanup.Resource{Type: t, ID: "vol-2", Name: "pvc-2", Metadata: map[string]string{CSIClusterKey: "alpha"}},
			cleanup.Resource{Type: t, ID: "vol-3", Name: "pvc-3", Metadata: map[string]string{CSIClusterKey: "alpha2"}})
	case cleanup.Snapshot:
		out = append(out, cleanup.Resource{Type: t, ID: "snap-2", VolumeID: "vol-2", Metadata: map[string]string{CSIClusterKey: "alpha"}})
	}
	return out, nil
}

func TestTeardown(t *testing.T) {
	objs := []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "plain"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}},
		pvc("default", "data", "pv-1"), pvc("default", "keep", "pv-2"),
		pv("pv-1", "default", "data", "vol-1", corev1.PersistentVolumeReclaimDelete),
		pv("pv-2", "default", "keep", "vol-2", corev1.PersistentVolumeReclaimRetain),
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app"}, Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "d", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "other"}},
	}
	w := fakeCluster(t, true, objs...)
	cloud := &fakeCloud{lbGone: 2, volGone: 3}
	cloud.onVolume = func() {
		_ = w.Client.Delete(context.Background(), &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-1"}})
	}
	res, err := Teardown(context.Background(), w, "alpha", cloud, TeardownOptions{Timeout: time.Minute, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Services, ",") != "default/web" || strings.Join(res.Claims, ",") != "default/data,default/keep" ||
		strings.Join(res.Retained, ",") != "pv-2" || len(res.CloudMarked) != 0 || res.Skipped != "" {
		t.Errorf("result %+v", res)
	}
	ctx := context.Background()
	if err := w.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "plain"}, &corev1.Service{}); err != nil {
		t.Errorf("a ClusterIP Service was deleted: %v", err)
	}
	if err := w.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "other"}, &corev1.Pod{}); err != nil {
		t.Errorf("a pod without claims was deleted: %v", err)
	}
	if err := w.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "app"}, &corev1.Pod{}); kube.IgnoreNotFound(err) != nil || err == nil {
		t.Errorf("the pod mounting a deleted claim is still there: %v", err)
	}
	if cloud.polls < 3 {
		t.Errorf("returned after %d polls, before the volume was gone", cloud.polls)
	}
}

func TestTeardownTimesOutNamingWhatIsLeft(t *testing.T) {
	w := fakeCluster(t, true)
	_, err := Teardown(context.Background(), w, "alpha", &fakeCloud{}, TeardownOptions{Timeout: 300 * time.Millisecond, Interval: 10 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "load_balancer kube_service_alpha_default_web (lb1)") || !strings.Contains(err.Error(), "volume pvc-1 (vol-1)") {
		t.Fatalf("want a timeout naming the leftovers, got %v", err)
	}
	// Without a PV that retains it, vol-2 (and its snapshot) is a leftover too.
	if !strings.Contains(err.Error(), "(vol-2)") || !strings.Contains(err.Error(), "(snap-2)") {
		t.Errorf("unretained volume not reported: %v", err)
	}
	for _, other := range []string{"alpha2", "kubeapi", "vol-3", "fip2"} {
		if strings.Contains(err.Error(), other) {
			t.Errorf("%s is not the cluster's OCCM/CSI leftover: %v", other, err)
		}
	}
}

func TestTeardownSkipsAnUnreachableCluster(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	w := fakeCluster(t, false, svc)
	res, err := Teardown(context.Background(), w, "alpha", &fakeCloud{}, TeardownOptions{})
	if err != nil || !strings.Contains(res.Skipped, "no route to host") {
		t.Fatalf("%+v %v", res, err)
	}
	if err := w.Client.Get(context.Background(), client.ObjectKeyFromObject(svc), &corev1.Service{}); err != nil {
		t.Errorf("touched an unreachable cluster: %v", err)
	}
}

func TestMarkersMatchTheCleanupRules(t *testing.T) {
	// Every marker Teardown checks is one fullclean claims for the cluster.
	ids := map[string]bool{}
	for _, r := range cleanup.Rules {
		ids[r.ID] = true
	}
	for _, id := range []string{"occm-lb", "occm-floating-ip", "occm-secgroup", "csi-volume", "csi-snapshot"} {
		if !ids[id] {
			t.Errorf("cleanup has no rule %s any more", id)
		}
	}
	tests := []struct {
		r    cleanup.Resource
		want bool
	}{
		{cleanup.Resource{Type: cleanup.LoadBalancer, Name: "kube_service_alpha_ns_svc"}, true},
		{cleanup.Resource{Type: cleanup.LoadBalancer, Name: "kube_service_alpha-2_ns_svc"}, false},
		{cleanup.Resource{Type: cleanup.FloatingIP, Description: "Floating IP for Kubernetes external service ns/svc from cluster alpha"}, true},
		{cleanup.Resource{Type: cleanup.FloatingIP, Description: "Floating IP for Kubernetes external service ns/svc from cluster myalpha"}, false},
		{cleanup.Resource{Type: cleanup.SecurityGroup, Description: "Security Group for ns/svc Service LoadBalancer in cluster alpha"}, true},
		{cleanup.Resource{Type: cleanup.Volume, Metadata: map[string]string{CSIClusterKey: "alpha"}}, true},
		{cleanup.Resource{Type: cleanup.Volume, Metadata: map[string]string{CSIClusterKey: "kubernetes"}}, false},
		{cleanup.Resource{Type: cleanup.Snapshot, Metadata: map[string]string{CSIClusterKey: "alpha"}}, true},
		{cleanup.Resource{Type: cleanup.Server, Name: "kube_service_alpha_x_y"}, false},
	}
	for _, tt := range tests {
		if got := marked(tt.r, "alpha", nil); got != tt.want {
			t.Errorf("%s %s %s: marked=%t", tt.r.Type, tt.r.Name, tt.r.Description, got)
		}
	}
}

func TestWaitReady(t *testing.T) {
	b := renderAll(t)
	// Everything the parts deliver, as a cluster would show it Ready.
	var objs []client.Object
	one := int32(1)
	for _, p := range b.Parts {
		for _, o := range p.Objects {
			switch o.GetKind() {
			case "Deployment":
				objs = append(objs, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: o.GetNamespace(), Name: o.GetName()}, Spec: appsv1.DeploymentSpec{Replicas: &one},
					Status: appsv1.DeploymentStatus{UpdatedReplicas: 1, AvailableReplicas: 1, Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}}})
			case "DaemonSet":
				objs = append(objs, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: o.GetNamespace(), Name: o.GetName()},
					Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 2, NumberReady: 2, UpdatedNumberScheduled: 2}})
			case "CustomResourceDefinition":
				objs = append(objs, &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: o.GetName()},
					Status: apiextensionsv1.CustomResourceDefinitionStatus{Conditions: []apiextensionsv1.CustomResourceDefinitionCondition{{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}}})
			}
		}
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: UninitializedTaint, Effect: corev1.TaintEffectNoSchedule}}}}
	w := fakeCluster(t, true, append(objs, node)...)

	// The APIService metrics-server registers is missing, and OCCM has
	// not initialised the node: both waits say so.
	ctx := context.Background()
	_, err := WaitReady(ctx, w, b, ReadyOptions{Timeout: 200 * time.Millisecond, Interval: 10 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "addon occm") || !strings.Contains(err.Error(), "not initialised by OCCM: n1") {
		t.Fatalf("want OCCM's wait to run out on the tainted node, got %v", err)
	}
	node.Spec.Taints = nil
	if err := w.Client.Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	_, err = WaitReady(ctx, w, b, ReadyOptions{Timeout: 200 * time.Millisecond, Interval: 10 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "addon metrics-server") || !strings.Contains(err.Error(), "APIService v1beta1.metrics.k8s.io") {
		t.Fatalf("want metrics-server's wait to run out on its APIService, got %v", err)
	}
	if err := w.Client.Create(ctx, apiService("v1beta1.metrics.k8s.io", "True")); err != nil {
		t.Fatal(err)
	}
	ready, err := WaitReady(ctx, w, b, ReadyOptions{Timeout: time.Second, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, r := range ready {
		parts = append(parts, r.Part)
	}
	if strings.Join(parts, ",") != "cloud-config,occm,cinder-csi,metrics-server" {
		t.Errorf("ready parts %v", parts)
	}
}

func apiService(name, available string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apiregistration.k8s.io/v1")
	u.SetKind("APIService")
	u.SetName(name)
	_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Available", "status": available}}, "status", "conditions")
	return u
}
