package kube

import (
	"context"
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestApplyWaitsOutAWebhookThatDoesNotAnswerYet(t *testing.T) {
	unreachable := apierrors.NewInternalError(errors.New(`failed calling webhook "validation.openstackcluster.infrastructure.cluster.x-k8s.io": failed to call webhook: Post "https://capo-webhook-service.capo-system.svc:443/validate": dial tcp 10.96.149.19:443: connect: connection refused`))
	denied := apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "x", errors.New(`admission webhook "validation" denied the request: spec.x is invalid`))
	tests := []struct {
		name      string
		failures  []error
		wantCalls int
		wantErr   string
	}{
		{name: "answers at once", wantCalls: 1},
		{name: "unreachable twice, then applied", failures: []error{unreachable, unreachable}, wantCalls: 3},
		{name: "a denial is not retried", failures: []error{denied}, wantCalls: 1, wantErr: "denied the request"},
		{name: "another error is not retried", failures: []error{errors.New("boom")}, wantCalls: 1, wantErr: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			c := clusterApplying(func() error {
				calls++
				if calls <= len(tt.failures) {
					return tt.failures[calls-1]
				}
				return nil
			})
			err := c.Apply(context.Background(), probeConfigMap())
			if calls != tt.wantCalls {
				t.Errorf("%d apply calls, want %d", calls, tt.wantCalls)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestApplyStopsWaitingForAWebhookWhenCancelled(t *testing.T) {
	unreachable := apierrors.NewInternalError(errors.New(`failed calling webhook "w": connect: connection refused`))
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	c := clusterApplying(func() error {
		calls++
		cancel()
		return unreachable
	})
	err := c.Apply(ctx, probeConfigMap())
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("after cancel: %v (%d calls), want context.Canceled after one call", err, calls)
	}
}

// clusterApplying is a cluster whose every server-side apply answers with
// apply().
func clusterApplying(apply func() error) *Cluster {
	cl := crfake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Apply: func(context.Context, client.WithWatch, runtime.ApplyConfiguration, ...client.ApplyOption) error {
			return apply()
		},
	}).Build()
	return &Cluster{Name: "mgmt", Client: cl}
}

func probeConfigMap() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace("default")
	u.SetName("probe")
	return u
}
