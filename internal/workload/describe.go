package workload

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clusterctl "sigs.k8s.io/cluster-api/cmd/clusterctl/client"
	"sigs.k8s.io/cluster-api/cmd/clusterctl/client/config"
	"sigs.k8s.io/cluster-api/cmd/clusterctl/client/tree"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capilab/capilab/internal/kube"
)

// Describe renders a cluster's object tree as `clusterctl describe
// cluster` shows it (clusterctl's library builds the tree; its printer is
// internal to clusterctl, so capilab renders it): one line per object with
// its Ready/Available condition and reason.
func Describe(ctx context.Context, kubeconfig, context, namespace, name string) (string, error) {
	cfg, err := config.New(ctx, "", config.InjectReader(config.NewMemoryReader()))
	if err != nil {
		return "", err
	}
	c, err := clusterctl.New(ctx, "", clusterctl.InjectConfig(cfg))
	if err != nil {
		return "", err
	}
	t, err := c.DescribeCluster(ctx, clusterctl.DescribeClusterOptions{
		Kubeconfig: clusterctl.Kubeconfig{Path: kubeconfig, Context: context}, Namespace: namespace, ClusterName: name,
		ShowOtherConditions: "all", ShowMachineSets: true, ShowClusterResourceSets: true, ShowTemplates: true, Grouping: false,
	})
	if err != nil {
		return "", fmt.Errorf("describe cluster %s/%s: %w", namespace, name, err)
	}
	var b strings.Builder
	renderTree(&b, t, t.GetRoot(), "", true, true)
	return b.String(), nil
}

func renderTree(b *strings.Builder, t *tree.ObjectTree, obj client.Object, prefix string, last, root bool) {
	branch, next := "├─", "│ "
	if last {
		branch, next = "└─", "  "
	}
	if root {
		branch, next = "", ""
	}
	fmt.Fprintf(b, "%s%s%s %s", prefix, branch, kindOf(obj), obj.GetName())
	if s := statusOf(obj); s != "" {
		b.WriteString("  " + s)
	}
	b.WriteString("\n")
	children := t.GetObjectsByParent(obj.GetUID())
	for i, ch := range children {
		renderTree(b, t, ch, prefix+next, i == len(children)-1, false)
	}
}

func kindOf(obj client.Object) string {
	if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	return fmt.Sprintf("%T", obj)
}

// statusOf is the object's Ready (or Available) condition as "Ready=True".
func statusOf(obj client.Object) string {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return ""
	}
	conds := kube.Conditions(&unstructured.Unstructured{Object: m})
	for _, typ := range []string{"Available", "Ready"} {
		if c, ok := kube.FindCondition(conds, typ); ok {
			s := typ + "=" + c.Status
			if c.Reason != "" {
				s += " (" + c.Reason + ")"
			}
			if c.Status != "True" && c.Message != "" {
				s += ": " + strings.Join(strings.Fields(c.Message), " ")
			}
			return s
		}
	}
	return ""
}
