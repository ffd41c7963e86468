package addons

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	addonsv1 "sigs.k8s.io/cluster-api/api/addons/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capilab/capilab/internal/kube"
)

// Readiness is read from what was delivered: every Deployment of a part
// Available, every DaemonSet's pods ready on every node it selects, every
// CRD Established, every APIService Available — and for OCCM no node left
// with the cloud provider's "uninitialized" taint.

// ReadyOptions bound and shape WaitReady.
type ReadyOptions struct {
	// Timeout bounds each part's wait (default 5m).
	Timeout time.Duration
	// Management, when set, is first asked whether each part's
	// ClusterResourceSet applied (ResourcesApplied=True): an error in a
	// manifest shows there, long before a workload wait runs out.
	Management *kube.Cluster
	// Interval is the longest pause between polls (default 5s).
	Interval time.Duration
}

// Ready is when one part became Ready, counted from the start of WaitReady.
type Ready struct {
	Part  string
	After time.Duration
}

// UninitializedTaint is the taint nodes of a cluster with an external
// cloud provider carry until the cloud controller initialises them.
const UninitializedTaint = "node.cloudprovider.kubernetes.io/uninitialized"

// WaitReady waits, part by part in delivery order, until every part of the
// bundle is Ready in the workload cluster; each wait is named
// (addon-<part>) and bounded. It returns when each part became Ready.
func WaitReady(ctx context.Context, workload *kube.Cluster, b *Bundle, opts ReadyOptions) ([]Ready, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	start := time.Now()
	var out []Ready
	for _, p := range b.Parts {
		if opts.Management != nil {
			key := client.ObjectKey{Namespace: b.Cluster.Namespace, Name: CRSName(b.Cluster.Name, p.Name)}
			w := kube.Wait{Name: "addon-" + p.Name + "-applied", What: fmt.Sprintf("ClusterResourceSet %s applied to cluster %s", key, b.Cluster.Name),
				Timeout: opts.Timeout, Interval: opts.Interval}
			if err := opts.Management.ConditionTrue(ctx, w, addonsv1.GroupVersion.WithKind("ClusterResourceSet"), key, addonsv1.ClusterResourceSetResourcesAppliedCondition); err != nil {
				return out, fmt.Errorf("addon %s: %w", p.Name, err)
			}
		}
		checks := readyChecks(p)
		if len(checks) == 0 {
			out = append(out, Ready{Part: p.Name, After: time.Since(start)})
			continue
		}
		w := kube.Wait{Name: "addon-" + p.Name, What: fmt.Sprintf("addon %s Ready in cluster %s (%s)", p.Name, b.Cluster.Name, describe(checks)),
			Timeout: opts.Timeout, Interval: opts.Interval, DumpNamespaces: namespaces(p)}
		err := workload.WaitFor(ctx, w, func(ctx context.Context) (bool, string, error) {
			var pending []string
			for _, c := range checks {
				ok, status := c.check(ctx, workload.Client)
				if !ok {
					pending = append(pending, status)
				}
			}
			if len(pending) > 0 {
				return false, strings.Join(pending, "; "), nil
			}
			return true, "all Ready", nil
		})
		if err != nil {
			return out, fmt.Errorf("addon %s: %w", p.Name, err)
		}
		out = append(out, Ready{Part: p.Name, After: time.Since(start)})
	}
	return out, nil
}

type readyCheck struct {
	what  string
	check func(ctx context.Context, c client.Client) (bool, string)
}

func describe(cs []readyCheck) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.what)
	}
	if len(parts) > 4 {
		return fmt.Sprintf("%s and %d more", strings.Join(parts[:4], ", "), len(parts)-4)
	}
	return strings.Join(parts, ", ")
}

func namespaces(p Part) []string {
	seen := map[string]bool{}
	for _, o := range p.Objects {
		if ns := o.GetNamespace(); ns != "" {
			seen[ns] = true
		}
	}
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// readyChecks derives a part's checks from its objects.
func readyChecks(p Part) []readyCheck {
	var cs []readyCheck
	for _, o := range p.Objects {
		key := client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetName()}
		switch gk := o.GroupVersionKind().GroupKind(); gk {
		case schema.GroupKind{Group: "apps", Kind: "Deployment"}:
			cs = append(cs, readyCheck{"Deployment " + key.String() + " Available", deploymentAvailable(key)})
		case schema.GroupKind{Group: "apps", Kind: "DaemonSet"}:
			cs = append(cs, readyCheck{"DaemonSet " + key.String() + " ready", daemonSetReady(key)})
		case schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:
			cs = append(cs, readyCheck{"CRD " + key.Name + " Established", crdEstablished(key.Name)})
		case schema.GroupKind{Group: "apiregistration.k8s.io", Kind: "APIService"}:
			cs = append(cs, readyCheck{"APIService " + key.Name + " Available", apiServiceAvailable(key.Name)})
		}
	}
	if p.Name == string(OCCM) {
		cs = append(cs, readyCheck{"no node " + UninitializedTaint, nodesInitialized})
	}
	return cs
}

func deploymentAvailable(key client.ObjectKey) func(context.Context, client.Client) (bool, string) {
	return func(ctx context.Context, c client.Client) (bool, string) {
		var d appsv1.Deployment
		if err := c.Get(ctx, key, &d); err != nil {
			return false, fmt.Sprintf("Deployment %s: %v", key, err)
		}
		if kube.DeploymentAvailable(&d) {
			return true, ""
		}
		return false, fmt.Sprintf("Deployment %s %d/%d available", key, d.Status.AvailableReplicas, ptrOr(d.Spec.Replicas, 1))
	}
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func daemonSetReady(key client.ObjectKey) func(context.Context, client.Client) (bool, string) {
	return func(ctx context.Context, c client.Client) (bool, string) {
		var d appsv1.DaemonSet
		if err := c.Get(ctx, key, &d); err != nil {
			return false, fmt.Sprintf("DaemonSet %s: %v", key, err)
		}
		s := d.Status
		if DaemonSetReady(&d) {
			return true, ""
		}
		return false, fmt.Sprintf("DaemonSet %s %d/%d ready, %d updated", key, s.NumberReady, s.DesiredNumberScheduled, s.UpdatedNumberScheduled)
	}
}

// DaemonSetReady reports a DaemonSet whose current generation runs, ready,
// on every node it selects (at least one).
func DaemonSetReady(d *appsv1.DaemonSet) bool {
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.DesiredNumberScheduled > 0 &&
		s.NumberReady == s.DesiredNumberScheduled && s.UpdatedNumberScheduled == s.DesiredNumberScheduled
}

func crdEstablished(name string) func(context.Context, client.Client) (bool, string) {
	return func(ctx context.Context, c client.Client) (bool, string) {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
			return false, fmt.Sprintf("CRD %s: %v", name, err)
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, ""
			}
		}
		return false, "CRD " + name + " not Established"
	}
}

func apiServiceAvailable(name string) func(context.Context, client.Client) (bool, string) {
	return func(ctx context.Context, c client.Client) (bool, string) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiregistration.k8s.io", Version: "v1", Kind: "APIService"})
		if err := c.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
			return false, fmt.Sprintf("APIService %s: %v", name, err)
		}
		if cond, ok := kube.FindCondition(kube.Conditions(u), "Available"); ok && cond.Status == "True" {
			return true, ""
		}
		return false, "APIService " + name + ": " + kube.SummarizeConditions(kube.Conditions(u))
	}
}

func nodesInitialized(ctx context.Context, c client.Client) (bool, string) {
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return false, "listing nodes: " + err.Error()
	}
	var tainted []string
	for _, n := range nodes.Items {
		for _, t := range n.Spec.Taints {
			if t.Key == UninitializedTaint {
				tainted = append(tainted, n.Name)
			}
		}
	}
	if len(nodes.Items) == 0 {
		return false, "no nodes"
	}
	if len(tainted) > 0 {
		return false, "not initialised by OCCM: " + strings.Join(tainted, ", ")
	}
	return true, ""
}
