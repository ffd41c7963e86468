package addons

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/capilab/capilab/internal/kube"
)

// Helpers to read and edit the workloads of upstream manifests as
// unstructured objects: the manifests change between releases, and every
// edit checks that what it edits is there, so a changed manifest fails
// loudly instead of deploying something half-edited.

// podKinds are the workload kinds whose pod template the edits reach.
var podKinds = map[string]bool{"Deployment": true, "DaemonSet": true, "StatefulSet": true, "Job": true}

// find returns the object of that kind and name (namespace "" = any).
func find(objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name && (namespace == "" || o.GetNamespace() == namespace) {
			return o
		}
	}
	return nil
}

func mustFind(objs []*unstructured.Unstructured, kind, namespace, name, source string) (*unstructured.Unstructured, error) {
	if o := find(objs, kind, namespace, name); o != nil {
		return o, nil
	}
	return nil, fmt.Errorf("%s: no %s %s/%s in the manifests (did they change?)", source, kind, namespace, name)
}

// containers returns the pod template's containers of a workload (init
// containers too when init is set), as maps that edits change in place;
// write them back with setContainers.
func containers(o *unstructured.Unstructured, init bool) ([]map[string]any, error) {
	field := "containers"
	if init {
		field = "initContainers"
	}
	raw, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", field)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", o.GetKind(), kube.ObjectName(o), err)
	}
	out := make([]map[string]any, 0, len(raw))
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s %s: a container is not an object", o.GetKind(), kube.ObjectName(o))
		}
		out = append(out, m)
	}
	return out, nil
}

func setContainers(o *unstructured.Unstructured, cs []map[string]any, init bool) error {
	field := "containers"
	if init {
		field = "initContainers"
	}
	raw := make([]any, len(cs))
	for i := range cs {
		raw[i] = cs[i]
	}
	if len(raw) == 0 && init {
		unstructured.RemoveNestedField(o.Object, "spec", "template", "spec", field)
		return nil
	}
	return unstructured.SetNestedSlice(o.Object, raw, "spec", "template", "spec", field)
}

// editContainer applies edit to the named container of a workload.
func editContainer(o *unstructured.Unstructured, name string, edit func(c map[string]any) error) error {
	cs, err := containers(o, false)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c["name"] == name {
			if err := edit(c); err != nil {
				return fmt.Errorf("%s %s, container %s: %w", o.GetKind(), kube.ObjectName(o), name, err)
			}
			return setContainers(o, cs, false)
		}
	}
	return fmt.Errorf("%s %s has no container %q (did the manifests change?)", o.GetKind(), kube.ObjectName(o), name)
}

func stringList(c map[string]any, field string) []string {
	raw, _ := c[field].([]any)
	out := make([]string, 0, len(raw))
	for _, r := range raw {
		if s, ok := r.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func setStringList(c map[string]any, field string, vals []string) {
	raw := make([]any, len(vals))
	for i, v := range vals {
		raw[i] = v
	}
	c[field] = raw
}

// envVars returns a container's env entries.
func envVars(c map[string]any) []map[string]any {
	raw, _ := c["env"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, r := range raw {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// envValue returns the literal value of a container's env var.
func envValue(c map[string]any, name string) (string, bool) {
	for _, e := range envVars(c) {
		if e["name"] == name {
			v, ok := e["value"].(string)
			return v, ok
		}
	}
	return "", false
}

// setEnv sets (or adds) a literal env var.
func setEnv(c map[string]any, name, value string) {
	raw, _ := c["env"].([]any)
	for _, r := range raw {
		if m, ok := r.(map[string]any); ok && m["name"] == name {
			delete(m, "valueFrom")
			m["value"] = value
			return
		}
	}
	c["env"] = append(raw, map[string]any{"name": name, "value": value})
}

// expandEnv resolves $(VAR) references the way the kubelet does, from the
// container's literal env.
func expandEnv(c map[string]any, s string) string {
	for _, e := range envVars(c) {
		name, _ := e["name"].(string)
		if v, ok := e["value"].(string); ok && name != "" {
			s = strings.ReplaceAll(s, "$("+name+")", v)
		}
	}
	return s
}

// flagValue returns the value of --flag=value among a container's command
// and args, after $(VAR) expansion.
func flagValue(c map[string]any, flag string) (string, bool) {
	for _, field := range []string{"command", "args"} {
		for _, a := range stringList(c, field) {
			if v, ok := strings.CutPrefix(a, flag+"="); ok {
				return expandEnv(c, v), true
			}
		}
	}
	return "", false
}

// setClusterName makes a container's --flag resolve to cluster: through
// the env var the manifests route it through when they do
// (--cluster-name=$(CLUSTER_NAME)), else by setting the flag itself. It
// fails unless the result reads back as cluster.
func setClusterName(c map[string]any, flag, cluster string) error {
	found := false
	for _, field := range []string{"command", "args"} {
		vals := stringList(c, field)
		for i, a := range vals {
			v, ok := strings.CutPrefix(a, flag+"=")
			if !ok {
				continue
			}
			found = true
			if ref, isRef := strings.CutPrefix(v, "$("); isRef && strings.HasSuffix(ref, ")") {
				setEnv(c, strings.TrimSuffix(ref, ")"), cluster)
			} else {
				vals[i] = flag + "=" + cluster
				setStringList(c, field, vals)
			}
		}
	}
	if !found {
		setStringList(c, "args", append(stringList(c, "args"), flag+"="+cluster))
	}
	if got, _ := flagValue(c, flag); got != cluster {
		return fmt.Errorf("%s resolves to %q, not the cluster's name %q", flag, got, cluster)
	}
	return nil
}

// images lists every container image of the objects' pod templates.
func images(objs []*unstructured.Unstructured) []string {
	seen := map[string]bool{}
	for _, o := range objs {
		if !podKinds[o.GetKind()] {
			continue
		}
		for _, init := range []bool{true, false} {
			cs, _ := containers(o, init)
			for _, c := range cs {
				if img, ok := c["image"].(string); ok && img != "" {
					seen[img] = true
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for img := range seen {
		out = append(out, img)
	}
	sort.Strings(out)
	return out
}

// readManifests decodes YAML files of a directory.
func readManifests(dir string, files ...string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		objs, err := kube.DecodeYAML(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// kustomizeBuild runs kustomize (its Go API) over a kustomization that
// takes base (a directory inside a module) as its resource and applies the
// image overrides (name -> newName:newTag).
func kustomizeBuild(base string, images map[string]string) ([]*unstructured.Unstructured, error) {
	tmp, err := os.MkdirTemp("", "capilab-addon-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	rel, err := filepath.Rel(tmp, base) // kustomize takes no absolute base
	if err != nil {
		return nil, err
	}
	k := map[string]any{"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": []string{rel}}
	var imgs []map[string]string
	for _, name := range sortedKeys(images) {
		ref := images[name]
		i := strings.LastIndexByte(ref, ':')
		if i < 0 || strings.Contains(ref[i:], "/") {
			return nil, fmt.Errorf("image %q has no tag", ref)
		}
		imgs = append(imgs, map[string]string{"name": name, "newName": ref[:i], "newTag": ref[i+1:]})
	}
	if len(imgs) > 0 {
		k["images"] = imgs
	}
	data, err := yaml.Marshal(k)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "kustomization.yaml"), data, 0o644); err != nil {
		return nil, err
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), tmp)
	if err != nil {
		return nil, err
	}
	out, err := res.AsYaml()
	if err != nil {
		return nil, err
	}
	return kube.DecodeYAML(out)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
