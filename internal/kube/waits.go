package kube

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capilab/capilab/internal/wait"
)

// Wait is one named, bounded wait on a cluster. On timeout the cluster's
// state is dumped (if Artifacts is set) under the wait's name, and the
// returned error says where.
type Wait struct {
	// Name is a short stable name for dumps and reports ("wait-controllers").
	Name string
	// What completes "waiting for …".
	What    string
	Timeout time.Duration
	// Interval is the longest pause between polls (default 5s).
	Interval time.Duration
	// DumpNamespaces are dumped on timeout (nil: all namespaces' events and
	// the pods of the namespaces that have any that are not Ready).
	DumpNamespaces []string
}

// WaitFor polls cond under w's name and budget.
func (c *Cluster) WaitFor(ctx context.Context, w Wait, cond wait.Condition) error {
	if w.Interval <= 0 {
		w.Interval = 5 * time.Second
	}
	start := time.Now()
	c.Log.Info("waiting for "+w.What, "wait", w.Name, "cluster", c.Name, "timeout", w.Timeout)
	err := wait.For(ctx, c.Log, wait.Spec{What: w.What, Timeout: w.Timeout, Interval: w.Interval}, cond)
	if err == nil {
		c.Log.Info("done: "+w.What, "wait", w.Name, "elapsed", time.Since(start).Round(100*time.Millisecond))
		return nil
	}
	if wait.IsTimeout(err) && c.Artifacts != "" {
		dir, derr := c.Dump(context.WithoutCancel(ctx), w.Name, w.DumpNamespaces)
		if derr != nil {
			return fmt.Errorf("%w (dumping the cluster state failed too: %v)", err, derr)
		}
		return fmt.Errorf("%w; conditions, events and controller logs: %s", err, dir)
	}
	return err
}

// DeploymentsAvailable waits until every Deployment matching the selector
// in namespace ("" = all) is Available with all replicas updated, and at
// least min of them exist.
func (c *Cluster) DeploymentsAvailable(ctx context.Context, w Wait, namespace string, selector client.MatchingLabels, min int) error {
	return c.WaitFor(ctx, w, func(ctx context.Context) (bool, string, error) {
		var list appsv1.DeploymentList
		opts := []client.ListOption{selector}
		if namespace != "" {
			opts = append(opts, client.InNamespace(namespace))
		}
		if err := c.Client.List(ctx, &list, opts...); err != nil {
			return false, "listing deployments: " + err.Error(), nil
		}
		if len(list.Items) < min {
			return false, fmt.Sprintf("%d of at least %d deployments exist", len(list.Items), min), nil
		}
		var pending []string
		for _, d := range list.Items {
			if !DeploymentAvailable(&d) {
				pending = append(pending, fmt.Sprintf("%s/%s (%d/%d available)", d.Namespace, d.Name, d.Status.AvailableReplicas, replicas(&d)))
			}
		}
		if len(pending) > 0 {
			sort.Strings(pending)
			return false, "not available: " + strings.Join(pending, ", "), nil
		}
		return true, fmt.Sprintf("%d deployments available", len(list.Items)), nil
	})
}

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// DeploymentAvailable reports a Deployment whose current generation is
// rolled out and Available.
func DeploymentAvailable(d *appsv1.Deployment) bool {
	if d.Status.ObservedGeneration < d.Generation {
		return false
	}
	want := replicas(d)
	if d.Status.UpdatedReplicas < want || d.Status.AvailableReplicas < want {
		return false
	}
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentAvailable {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// NodesReady waits until at least n nodes exist and all are Ready.
func (c *Cluster) NodesReady(ctx context.Context, w Wait, n int) error {
	return c.WaitFor(ctx, w, func(ctx context.Context) (bool, string, error) {
		var list corev1.NodeList
		if err := c.Client.List(ctx, &list); err != nil {
			return false, "listing nodes: " + err.Error(), nil
		}
		ready := 0
		var notReady []string
		for _, node := range list.Items {
			if NodeReady(&node) {
				ready++
			} else {
				notReady = append(notReady, node.Name)
			}
		}
		status := fmt.Sprintf("%d/%d nodes Ready (want %d)", ready, len(list.Items), n)
		if len(notReady) > 0 {
			status += "; not ready: " + strings.Join(notReady, ", ")
		}
		return ready >= n && len(notReady) == 0, status, nil
	})
}

// NodeReady reports a node whose Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Condition is one entry of status.conditions, read from any object.
type Condition struct {
	Type, Status, Reason, Message string
}

// Conditions reads status.conditions of an unstructured object (Cluster
// API's v1beta2 conditions and Kubernetes' metav1.Condition share the shape).
func Conditions(u *unstructured.Unstructured) []Condition {
	raw, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	out := make([]Condition, 0, len(raw))
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		str := func(k string) string { s, _ := m[k].(string); return s }
		out = append(out, Condition{Type: str("type"), Status: str("status"), Reason: str("reason"), Message: str("message")})
	}
	return out
}

// FindCondition returns the condition of that type, if any.
func FindCondition(conds []Condition, typ string) (Condition, bool) {
	for _, c := range conds {
		if c.Type == typ {
			return c, true
		}
	}
	return Condition{}, false
}

// SummarizeConditions is "Type=Status(Reason)" for every condition that is
// not True, or "all True".
func SummarizeConditions(conds []Condition) string {
	var parts []string
	for _, c := range conds {
		if c.Status != "True" {
			p := c.Type + "=" + c.Status
			if c.Reason != "" {
				p += "(" + c.Reason + ")"
			}
			if c.Message != "" {
				msg := c.Message
				if len(msg) > 120 {
					msg = msg[:120] + "…"
				}
				p += ": " + strings.ReplaceAll(msg, "\n", " ")
			}
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "all conditions True"
	}
	return strings.Join(parts, "; ")
}

// ConditionTrue waits until the object's condition typ is True, reporting
// the other conditions while it waits.
func (c *Cluster) ConditionTrue(ctx context.Context, w Wait, gvk schema.GroupVersionKind, key client.ObjectKey, typ string) error {
	return c.WaitFor(ctx, w, func(ctx context.Context) (bool, string, error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		if err := c.Client.Get(ctx, key, u); err != nil {
			return false, fmt.Sprintf("get %s %s: %v", gvk.Kind, key, err), nil
		}
		conds := Conditions(u)
		if cond, ok := FindCondition(conds, typ); ok && cond.Status == "True" {
			return true, typ + "=True", nil
		}
		return false, SummarizeConditions(conds), nil
	})
}

// Gone waits until the object does not exist any more.
func (c *Cluster) Gone(ctx context.Context, w Wait, obj client.Object) error {
	key := client.ObjectKeyFromObject(obj)
	return c.WaitFor(ctx, w, func(ctx context.Context) (bool, string, error) {
		err := c.Client.Get(ctx, key, obj)
		if err == nil {
			status := "still there"
			if ts := obj.GetDeletionTimestamp(); ts != nil {
				status = fmt.Sprintf("deleting since %s, finalizers %v", ts.Format(time.RFC3339), obj.GetFinalizers())
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				status += "; " + SummarizeConditions(Conditions(u))
			}
			return false, status, nil
		}
		if IgnoreNotFound(err) == nil {
			return true, "gone", nil
		}
		return false, err.Error(), nil
	})
}

// ErrNotReachable is returned by Reachable for a cluster that does not answer.
var ErrNotReachable = errors.New("cluster does not answer")

// Reachable asks for the server version within timeout.
func (c *Cluster) Reachable(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := c.ServerVersion(ctx); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNotReachable, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w within %s (%s)", ErrNotReachable, timeout, c.Config.Host)
	}
}
