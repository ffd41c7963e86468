package workload

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	capov1 "sigs.k8s.io/cluster-api-provider-openstack/api/v1beta1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/capilab/capilab/internal/kube"
)

func openStackMachine(name, cluster, instanceID, failure string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{}}}
	u.SetGroupVersionKind(capov1.SchemeGroupVersion.WithKind("OpenStackMachine"))
	u.SetNamespace("ns")
	u.SetName(name)
	u.SetLabels(map[string]string{clusterv1.ClusterNameLabel: cluster})
	if instanceID != "" {
		_ = unstructured.SetNestedField(u.Object, instanceID, "status", "instanceID")
	}
	if failure != "" {
		_ = unstructured.SetNestedField(u.Object, failure, "status", "failureMessage")
	}
	return u
}

// A server in ERROR before it became a node is never retried by CAPO: the
// waits for machines end at once, naming the machine, the server and Nova's
// fault, instead of running out their budget.
func TestClusterConditionFailsOnFailedMachine(t *testing.T) {
	scheme := kube.Scheme()
	if err := capov1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cluster := &clusterv1.Cluster{}
	cluster.SetNamespace("ns")
	cluster.SetName("c1")
	tests := []struct {
		name     string
		cond     string
		machines []client.Object
		wantErr  []string
	}{
		{"no machine failed", "ControlPlaneInitialized",
			[]client.Object{openStackMachine("c1-cp-a", "c1", "srv-1", "")}, nil},
		{"a failed control-plane machine", "ControlPlaneInitialized",
			[]client.Object{openStackMachine("c1-cp-a", "c1", "srv-1", "instance state ERROR is unexpected")},
			[]string{"c1-cp-a (server srv-1): instance state ERROR is unexpected", "Nova says: its CIDR overlaps", "make delete_cluster CLUSTER=c1"}},
		{"a failed worker while waiting for workers", "WorkersAvailable",
			[]client.Object{openStackMachine("c1-md-b", "c1", "", "instance state ERROR is unexpected")},
			[]string{"1 machine(s) failed", "c1-md-b: instance state ERROR"}},
		{"another cluster's failed machine is not this one's", "ControlPlaneInitialized",
			[]client.Object{openStackMachine("c2-cp-a", "c2", "srv-2", "instance state ERROR is unexpected")}, nil},
		{"infrastructure waits do not look at machines", "InfrastructureReady",
			[]client.Object{openStackMachine("c1-cp-a", "c1", "srv-1", "instance state ERROR is unexpected")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := crfake.NewClientBuilder().WithScheme(scheme).WithObjects(append([]client.Object{cluster.DeepCopy()}, tt.machines...)...).Build()
			m := &Manager{Prefix: "capi", Cloud: &fakeCloud{faults: map[string]string{"srv-1": "its CIDR overlaps another network"}},
				Mgmt: &kube.Cluster{Name: "mgmt", Client: cl, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
			done, status, err := m.clusterCondition(context.Background(), client.ObjectKey{Namespace: "ns", Name: "c1"}, tt.cond)
			if done {
				t.Fatalf("done with no condition True")
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("err %v, want the wait to go on (status %q)", err, status)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error (status %q), want one naming %q", status, tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
