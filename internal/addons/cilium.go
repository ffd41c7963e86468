package addons

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/capilab/capilab/internal/command"
	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/versions"
)

// ChartRenderer renders a Helm chart directory into manifests (`helm
// template`).
type ChartRenderer interface {
	Template(ctx context.Context, chartDir, release, namespace, kubeVersion string, values map[string]any) ([]byte, error)
}

// Helm is helm built from its Go module (helm.sh/helm/v3 at the version
// pinned in versions.yaml) and run as `helm template`: cilium publishes its
// install as a Helm chart only, and the chart is part of its Go module.
type Helm struct {
	Builder *modbuild.Builder
	Pin     versions.Tool
}

// Template renders chartDir with values; nothing is installed and no
// cluster is contacted.
func (h *Helm) Template(ctx context.Context, chartDir, release, namespace, kubeVersion string, values map[string]any) ([]byte, error) {
	if h.Builder == nil || h.Pin.Module == "" || h.Pin.Version == "" {
		return nil, fmt.Errorf("helm: no builder or no pinned version (manifests/versions.yaml addons.helm)")
	}
	bin, err := h.Builder.Build(ctx, modbuild.Program{Name: "helm", Module: h.Pin.Module, Version: h.Pin.Version, Package: "./cmd/helm",
		LDFlags: []string{"-X " + h.Pin.Module + "/internal/version.version=" + h.Pin.Version}})
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "capilab-helm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	vals, err := yaml.Marshal(values)
	if err != nil {
		return nil, err
	}
	valuesFile := filepath.Join(tmp, "values.yaml")
	if err := os.WriteFile(valuesFile, vals, 0o600); err != nil {
		return nil, err
	}
	// helm keeps no state for template, but give it empty homes anyway.
	env := []string{"HELM_CACHE_HOME=" + tmp + "/cache", "HELM_CONFIG_HOME=" + tmp + "/config", "HELM_DATA_HOME=" + tmp + "/data"}
	return command.New(bin, "template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion,
		"--values", valuesFile, "--include-crds").WithEnv(h.Builder.Env, env...).Output(ctx)
}

// cilium renders the chart of the cilium module at the addon's version
// (the chart's own values pin its images by digest) for the cluster: its
// pod CIDR handed out by Kubernetes (kubeadm's node podCIDRs, as SCS's
// `cilium install` did), the cluster's name, its MTU, one operator replica
// (small clusters have one worker). Hubble's certificates come from the
// chart's certgen Job in the cluster (method cronJob), not from helm: helm
// would generate a new CA and new certificates at every render, so every
// re-run of create_cluster would change the delivered manifests and
// Cluster API (strategy Reconcile) would replace the cluster's CA.
func (r *Renderer) cilium(ctx context.Context, cluster ClusterInfo, a Addon) ([]*unstructured.Unstructured, error) {
	if r.Helm == nil {
		return nil, fmt.Errorf("no Helm renderer configured (cilium ships as a Helm chart)")
	}
	dir, err := r.module(ctx, r.Pins.Cilium, a.Version)
	if err != nil {
		return nil, err
	}
	values := map[string]any{
		"cluster":  map[string]any{"name": cluster.Name},
		"ipam":     map[string]any{"mode": "kubernetes"},
		"operator": map[string]any{"replicas": 1},
		"hubble":   map[string]any{"tls": map[string]any{"auto": map[string]any{"method": "cronJob"}}},
	}
	if cluster.MTU > 0 {
		values["MTU"] = cluster.MTU
	}
	out, err := r.Helm.Template(ctx, filepath.Join(dir, "install", "kubernetes", "cilium"), "cilium", "kube-system", cluster.KubernetesVersion, values)
	if err != nil {
		return nil, fmt.Errorf("helm template %s@%s install/kubernetes/cilium: %w", r.Pins.Cilium.Module, a.Version, err)
	}
	objs, err := kube.DecodeYAML(out)
	if err != nil {
		return nil, fmt.Errorf("cilium chart output: %w", err)
	}
	if _, err := mustFind(objs, "DaemonSet", "kube-system", "cilium", "cilium chart"); err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o.GetNamespace() == "" && namespaced(o.GetKind()) {
			o.SetNamespace("kube-system") // helm template leaves the release namespace implicit
		}
	}
	return objs, nil
}

// namespaced reports kinds that live in a namespace (those a chart can
// leave without one).
func namespaced(kind string) bool {
	switch kind {
	case "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "StorageClass", "CSIDriver",
		"PriorityClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "IngressClass", "GatewayClass":
		return false
	}
	return true
}
