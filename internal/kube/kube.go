// Package kube is capilab's handle on a Kubernetes cluster, after the
// ClusterProxy of Cluster API's test framework: one value per cluster that
// knows its kubeconfig, hands out a controller-runtime client with every
// API capilab reads (Kubernetes, Cluster API, CAPO, clusterctl's inventory),
// applies objects server-side, waits — always named and bounded, budgets
// from settings — and, when a wait runs out, dumps what a person needs to
// see why (conditions, events, pod logs) into the artifacts directory.
package kube

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	addonsv1 "sigs.k8s.io/cluster-api/api/addons/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	controlplanev1 "sigs.k8s.io/cluster-api/api/controlplane/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	clusterctlv1 "sigs.k8s.io/cluster-api/cmd/clusterctl/api/v1alpha3"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capilab/capilab/internal/fsutil"
	"github.com/capilab/capilab/internal/wait"
)

// FieldOwner is the server-side apply field manager of everything capilab applies.
const FieldOwner = "capilab"

// Scheme knows every API capilab reads with typed objects.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme,
		clusterv1.AddToScheme, bootstrapv1.AddToScheme, controlplanev1.AddToScheme,
		addonsv1.AddToScheme, clusterctlv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err) // a programming error: the schemes are static
		}
	}
	return s
}

// Cluster is one cluster capilab talks to.
type Cluster struct {
	// Name is how logs and dumps call it ("capi-mgmt", "testcluster").
	Name       string
	Kubeconfig string // path
	Context    string // kubeconfig context ("" = current)
	Config     *rest.Config
	Client     client.Client
	Clientset  kubernetes.Interface
	Log        *slog.Logger
	// Artifacts is where dumps go ("" = no dumps).
	Artifacts string
}

// Options for New.
type Options struct {
	Context   string
	Log       *slog.Logger
	Artifacts string
	// Timeout bounds every single API request (default 30s); waits have
	// their own budgets.
	Timeout time.Duration
}

// New connects to the cluster in a kubeconfig file. It makes no request.
func New(name, kubeconfig string, opts Options) (*Cluster, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: opts.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("cluster %s: kubeconfig %s: %w", name, kubeconfig, err)
	}
	return NewFromConfig(name, kubeconfig, cfg, opts)
}

// NewFromConfig wraps a REST config.
func NewFromConfig(name, kubeconfig string, cfg *rest.Config, opts Options) (*Cluster, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 50, 100
	cfg.Timeout = opts.Timeout
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	cfg.UserAgent = "capilab"
	c, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return nil, fmt.Errorf("cluster %s: client: %w", name, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: clientset: %w", name, err)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Cluster{Name: name, Kubeconfig: kubeconfig, Context: opts.Context, Config: cfg, Client: c, Clientset: cs, Log: log, Artifacts: opts.Artifacts}, nil
}

// ServerVersion asks the API server for its version (one request).
func (c *Cluster) ServerVersion(ctx context.Context) (string, error) {
	v, err := c.Clientset.Discovery().ServerVersion()
	if err != nil {
		return "", fmt.Errorf("cluster %s (%s): %w", c.Name, c.Config.Host, err)
	}
	return v.GitVersion, nil
}

// DecodeYAML splits a multi-document YAML stream into objects; empty
// documents are skipped, List kinds are flattened.
func DecodeYAML(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", i, err)
			}
			for j := range list.Items {
				out = append(out, &list.Items[j])
			}
			continue
		}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("document %d: no apiVersion/kind", i)
		}
		out = append(out, u)
	}
}

// Apply applies objects server-side as capilab (taking ownership of the
// fields it sets). CRDs go first and namespaces before what they hold, so
// one stream can be applied as it comes.
func (c *Cluster) Apply(ctx context.Context, objs ...*unstructured.Unstructured) error {
	ordered := append([]*unstructured.Unstructured{}, objs...)
	rank := func(u *unstructured.Unstructured) int {
		switch u.GetKind() {
		case "CustomResourceDefinition":
			return 0
		case "Namespace":
			return 1
		}
		return 2
	}
	sortStable(ordered, func(a, b *unstructured.Unstructured) bool { return rank(a) < rank(b) })
	for _, u := range ordered {
		if err := c.applyOne(ctx, u); err != nil {
			return fmt.Errorf("cluster %s: apply %s %s: %w", c.Name, u.GetKind(), ObjectName(u), err)
		}
	}
	return nil
}

// webhookRetry bounds how long Apply waits out an admission webhook that
// does not answer yet: a controller whose Deployment is Available can take
// seconds more until its Service routes to it ("connection refused").
const webhookRetry = 2 * time.Minute

// applyOne applies one object; a webhook that cannot be called yet is
// retried (bounded), anything else is returned at once.
func (c *Cluster) applyOne(ctx context.Context, u *unstructured.Unstructured) error {
	deadline := time.Now().Add(webhookRetry)
	delay := time.Second
	for attempt := 1; ; attempt++ {
		err := c.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership)
		if err == nil || !webhookNotReady(err) || time.Now().Add(delay).After(deadline) {
			if err != nil && attempt > 1 {
				return fmt.Errorf("after %d attempts: %w", attempt, err)
			}
			return err
		}
		if c.Log != nil {
			c.Log.Info("admission webhook not answering yet; retrying", "cluster", c.Name, "object", u.GetKind()+" "+ObjectName(u), "attempt", attempt, "error", err)
		}
		if serr := wait.Sleep(ctx, delay); serr != nil {
			return fmt.Errorf("%w (while waiting for an admission webhook: %v)", serr, err)
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// webhookNotReady: the API server could not reach an admission or
// conversion webhook (not a rejection by it).
func webhookNotReady(err error) bool {
	if !apierrors.IsInternalError(err) && !apierrors.IsServiceUnavailable(err) {
		return false
	}
	msg := err.Error()
	if strings.Contains(msg, "failed calling webhook") {
		return true
	}
	return strings.Contains(msg, "conversion webhook") &&
		(strings.Contains(msg, "connection refused") || strings.Contains(msg, "no endpoints available") || strings.Contains(msg, "i/o timeout"))
}

// ApplyYAML decodes and applies a YAML stream.
func (c *Cluster) ApplyYAML(ctx context.Context, data []byte) error {
	objs, err := DecodeYAML(data)
	if err != nil {
		return err
	}
	return c.Apply(ctx, objs...)
}

// ObjectName is "namespace/name" or "name".
func ObjectName(o client.Object) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}

// IgnoreNotFound returns nil for a NotFound error.
func IgnoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// WriteKubeconfig writes a kubeconfig file 0600 (it holds credentials).
func WriteKubeconfig(path string, data []byte) error {
	if err := os.MkdirAll(dirOf(path), 0o700); err != nil {
		return err
	}
	return fsutil.WriteAtomic(path, data, 0o600)
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		return path[:i]
	}
	return "."
}

func sortStable[T any](s []T, less func(a, b T) bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
