package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// DumpKinds are the Cluster API kinds whose objects a dump lists with their
// conditions (where their CRDs exist).
var DumpKinds = []schema.GroupVersionKind{
	{Group: "cluster.x-k8s.io", Version: "v1beta2", Kind: "Cluster"},
	{Group: "cluster.x-k8s.io", Version: "v1beta2", Kind: "MachineDeployment"},
	{Group: "cluster.x-k8s.io", Version: "v1beta2", Kind: "Machine"},
	{Group: "controlplane.cluster.x-k8s.io", Version: "v1beta2", Kind: "KubeadmControlPlane"},
	{Group: "bootstrap.cluster.x-k8s.io", Version: "v1beta2", Kind: "KubeadmConfig"},
	{Group: "infrastructure.cluster.x-k8s.io", Version: "v1beta1", Kind: "OpenStackCluster"},
	{Group: "infrastructure.cluster.x-k8s.io", Version: "v1beta1", Kind: "OpenStackMachine"},
	{Group: "addons.cluster.x-k8s.io", Version: "v1beta2", Kind: "ClusterResourceSet"},
	{Group: "clusterctl.cluster.x-k8s.io", Version: "v1alpha3", Kind: "Provider"},
}

// LogTailLines is how many lines of each container's log a dump keeps.
const LogTailLines = 500

// Dump writes what explains the cluster's state into
// <Artifacts>/<cluster>/<name>-<time>/: events, pods, container logs of
// namespaces (nil: every namespace with a pod that is not Ready, plus the
// Cluster API controllers'), and the Cluster API objects with their
// conditions. It returns the directory. Errors of single parts are written
// into the dump and do not stop it.
func (c *Cluster) Dump(ctx context.Context, name string, namespaces []string) (string, error) {
	if c.Artifacts == "" {
		return "", errors.New("no artifacts directory")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	dir := filepath.Join(c.Artifacts, c.Name, name+"-"+time.Now().UTC().Format("20060102T150405Z"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var problems []string
	note := func(what string, err error) {
		if err != nil {
			problems = append(problems, what+": "+err.Error())
		}
	}
	note("events", c.dumpEvents(ctx, filepath.Join(dir, "events.txt")))
	pods, err := c.dumpPods(ctx, filepath.Join(dir, "pods.txt"))
	note("pods", err)
	note("objects", c.dumpObjects(ctx, filepath.Join(dir, "cluster-api.yaml")))
	if namespaces == nil {
		namespaces = interestingNamespaces(pods)
	}
	for _, ns := range namespaces {
		note("logs of "+ns, c.dumpLogs(ctx, filepath.Join(dir, "logs"), ns))
	}
	if len(problems) > 0 {
		note("write problems", os.WriteFile(filepath.Join(dir, "dump-problems.txt"), []byte(strings.Join(problems, "\n")+"\n"), 0o644))
	}
	c.Log.Info("dumped cluster state", "cluster", c.Name, "dir", dir)
	return dir, nil
}

// interestingNamespaces: namespaces with a pod that is not Ready, and the
// Cluster API controllers' namespaces.
func interestingNamespaces(pods []corev1.Pod) []string {
	set := map[string]bool{}
	for _, p := range pods {
		if strings.HasSuffix(p.Namespace, "-system") || !podReady(&p) {
			set[p.Namespace] = true
		}
	}
	out := make([]string, 0, len(set))
	for ns := range set {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase == corev1.PodSucceeded {
		return true
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (c *Cluster) dumpEvents(ctx context.Context, path string) error {
	var list corev1.EventList
	if err := c.Client.List(ctx, &list); err != nil {
		return err
	}
	sort.Slice(list.Items, func(i, j int) bool { return eventTime(&list.Items[i]).Before(eventTime(&list.Items[j])) })
	var b strings.Builder
	for _, e := range list.Items {
		fmt.Fprintf(&b, "%s %-7s %s/%s %s: %s (x%d)\n", eventTime(&e).UTC().Format(time.RFC3339), e.Type,
			e.InvolvedObject.Kind, objName(e.InvolvedObject.Namespace, e.InvolvedObject.Name), e.Reason, strings.TrimSpace(e.Message), max(e.Count, 1))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func objName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

func (c *Cluster) dumpPods(ctx context.Context, path string) ([]corev1.Pod, error) {
	var list corev1.PodList
	if err := c.Client.List(ctx, &list); err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, p := range list.Items {
		restarts := int32(0)
		var waiting []string
		for _, cs := range p.Status.ContainerStatuses {
			restarts += cs.RestartCount
			if w := cs.State.Waiting; w != nil {
				waiting = append(waiting, cs.Name+": "+w.Reason+" "+w.Message)
			}
		}
		fmt.Fprintf(&b, "%s/%s phase=%s ready=%t restarts=%d node=%s", p.Namespace, p.Name, p.Status.Phase, podReady(&p), restarts, p.Spec.NodeName)
		if len(waiting) > 0 {
			fmt.Fprintf(&b, " waiting=[%s]", strings.Join(waiting, "; "))
		}
		b.WriteString("\n")
	}
	return list.Items, os.WriteFile(path, []byte(b.String()), 0o644)
}

func (c *Cluster) dumpLogs(ctx context.Context, dir, namespace string) error {
	var list corev1.PodList
	if err := c.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return err
	}
	var errs []error
	for _, p := range list.Items {
		for _, ctr := range p.Spec.Containers {
			for _, previous := range []bool{false, true} {
				if previous && !restarted(&p, ctr.Name) {
					continue
				}
				name := ctr.Name + ".log"
				if previous {
					name = ctr.Name + ".previous.log"
				}
				path := filepath.Join(dir, namespace, p.Name, name)
				if err := c.writeLog(ctx, path, namespace, p.Name, ctr.Name, previous); err != nil {
					errs = append(errs, fmt.Errorf("%s/%s %s: %w", namespace, p.Name, ctr.Name, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func restarted(p *corev1.Pod, container string) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == container {
			return cs.RestartCount > 0
		}
	}
	return false
}

func (c *Cluster) writeLog(ctx context.Context, path, ns, pod, container string, previous bool) error {
	tail := int64(LogTailLines)
	req := c.Clientset.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, Previous: previous, TailLines: &tail, Timestamps: true})
	stream, err := req.Stream(ctx)
	if err != nil {
		return err
	}
	defer stream.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, stream); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// dumpObjects writes the Cluster API objects (kinds whose CRDs exist) with
// their spec and status.
func (c *Cluster) dumpObjects(ctx context.Context, path string) error {
	var b strings.Builder
	for _, gvk := range DumpKinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.Client.List(ctx, list); err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			fmt.Fprintf(&b, "# %s: %v\n", gvk.Kind, err)
			continue
		}
		for _, item := range list.Items {
			item.SetManagedFields(nil)
			data, err := yaml.Marshal(item.Object)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "---\n# %s %s: %s\n%s", gvk.Kind, ObjectName(&item), SummarizeConditions(Conditions(&item)), data)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
