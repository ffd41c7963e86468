package kube

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/capilab/capilab/internal/wait"
)

func TestDecodeYAML(t *testing.T) {
	data := []byte(`---
apiVersion: v1
kind: Namespace
metadata: {name: a}
---
# only a comment
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: x, namespace: a}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: z, namespace: a}
`)
	objs, err := DecodeYAML(data)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetKind()+":"+ObjectName(o))
	}
	if got := strings.Join(names, ","); got != "Namespace:a,ConfigMap:a/x,ConfigMap:a/z" {
		t.Errorf("decoded %s", got)
	}
	if _, err := DecodeYAML([]byte("metadata: {name: a}\n")); err == nil {
		t.Error("a document without kind was accepted")
	}
}

func TestConditionsSummary(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"conditions": []any{
		map[string]any{"type": "Ready", "status": "False", "reason": "WaitingForControlPlane", "message": "control plane not yet initialized"},
		map[string]any{"type": "InfrastructureReady", "status": "True"},
	}}}}
	conds := Conditions(u)
	if len(conds) != 2 {
		t.Fatalf("%d conditions", len(conds))
	}
	if c, ok := FindCondition(conds, "InfrastructureReady"); !ok || c.Status != "True" {
		t.Errorf("InfrastructureReady: %+v %v", c, ok)
	}
	got := SummarizeConditions(conds)
	if got != "Ready=False(WaitingForControlPlane): control plane not yet initialized" {
		t.Errorf("summary %q", got)
	}
	if SummarizeConditions(nil) != "all conditions True" {
		t.Error("empty summary")
	}
}

func TestDeploymentAvailable(t *testing.T) {
	avail := appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}
	tests := []struct {
		name string
		d    appsv1.Deployment
		want bool
	}{
		{"available", appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, UpdatedReplicas: 1, AvailableReplicas: 1, Conditions: []appsv1.DeploymentCondition{avail}}}, true},
		{"old generation", appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 3}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 2, UpdatedReplicas: 1, AvailableReplicas: 1, Conditions: []appsv1.DeploymentCondition{avail}}}, false},
		{"rolling", appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)},
			Status: appsv1.DeploymentStatus{UpdatedReplicas: 1, AvailableReplicas: 2, Conditions: []appsv1.DeploymentCondition{avail}}}, false},
		{"no condition", appsv1.Deployment{Status: appsv1.DeploymentStatus{UpdatedReplicas: 1, AvailableReplicas: 1}}, false},
	}
	for _, tt := range tests {
		if got := DeploymentAvailable(&tt.d); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// A wait that runs out dumps events, pods and logs, and its error names
// the wait, the last status and the dump directory.
func TestTimeoutDumps(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "manager-1", Namespace: "capi-system"},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "manager"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: "capi-system"}, Reason: "BackOff", Message: "Back-off pulling image", Type: "Warning",
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "manager-1", Namespace: "capi-system"}}
	c := &Cluster{Name: "test-mgmt", Config: &rest.Config{Host: "https://x"},
		Client:    crfake.NewClientBuilder().WithScheme(Scheme()).WithObjects(pod, ev).Build(),
		Clientset: fake.NewClientset(pod),
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)), Artifacts: t.TempDir()}
	err := c.WaitFor(context.Background(), Wait{Name: "wait-controllers", What: "the controllers", Timeout: 50 * time.Millisecond, Interval: 10 * time.Millisecond},
		func(context.Context) (bool, string, error) { return false, "0/1 available", nil })
	if !wait.IsTimeout(err) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if !strings.Contains(err.Error(), "0/1 available") || !strings.Contains(err.Error(), filepath.Join(c.Artifacts, "test-mgmt", "wait-controllers-")) {
		t.Errorf("error lacks the status or the dump: %v", err)
	}
	dirs, _ := filepath.Glob(filepath.Join(c.Artifacts, "test-mgmt", "wait-controllers-*"))
	if len(dirs) != 1 {
		t.Fatalf("dump dirs: %v", dirs)
	}
	events, _ := os.ReadFile(filepath.Join(dirs[0], "events.txt"))
	if !strings.Contains(string(events), "BackOff") {
		t.Errorf("events.txt: %q", events)
	}
	pods, _ := os.ReadFile(filepath.Join(dirs[0], "pods.txt"))
	if !strings.Contains(string(pods), "capi-system/manager-1 phase=Running ready=false") {
		t.Errorf("pods.txt: %q", pods)
	}
	if _, err := os.Stat(filepath.Join(dirs[0], "logs", "capi-system", "manager-1", "manager.log")); err != nil {
		t.Errorf("no container log: %v", err)
	}
}

func TestNodesReady(t *testing.T) {
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue}
	n1 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{ready}}}
	n2 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w"}}
	cl := crfake.NewClientBuilder().WithScheme(Scheme()).WithObjects(n1, n2).Build()
	c := &Cluster{Name: "wl", Client: cl, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	err := c.NodesReady(context.Background(), Wait{Name: "n", What: "nodes", Timeout: 30 * time.Millisecond, Interval: 10 * time.Millisecond}, 2)
	if !wait.IsTimeout(err) || !strings.Contains(err.Error(), "not ready: w") {
		t.Fatalf("err = %v", err)
	}
	n2.Status.Conditions = []corev1.NodeCondition{ready}
	if err := cl.Status().Update(context.Background(), n2); err != nil {
		t.Fatal(err)
	}
	if err := c.NodesReady(context.Background(), Wait{Name: "n", What: "nodes", Timeout: time.Second}, 2); err != nil {
		t.Fatal(err)
	}
}
