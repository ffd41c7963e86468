package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/capilab/capilab/internal/report"
)

// InputError is bad input found before anything was started: a missing or
// unusable kubeconfig, a cluster that does not answer, credentials without
// the access a run needs. Callers exit with their bad-input code.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func inputErr(format string, args ...any) error { return &InputError{Err: fmt.Errorf(format, args...)} }

// IsInputError reports whether err is bad input.
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}

// requestTimeout bounds every single API request of the engine (the
// sonobuoy library passes no context; this is its only bound).
const requestTimeout = 30 * time.Second

// Target is a cluster a run goes against, connected and checked.
type Target struct {
	// Name is how reports call the cluster (CLUSTER, or the kubeconfig's
	// context).
	Name string
	// Facts are the cluster's version and nodes.
	Facts report.Cluster
	// KindCluster is the kind cluster's name when the nodes are kind's.
	KindCluster string
	// NodeImages are the images every node already has.
	NodeImages map[string]bool

	rest      *rest.Config // with requestTimeout
	restExec  *rest.Config // without: streams are bounded by the caller
	clientset kubernetes.Interface
	streams   kubernetes.Interface // for log streams (no request timeout)
}

// Connect loads a kubeconfig (a list of files, merged as kubectl merges
// KUBECONFIG), checks that the cluster answers and that the credentials may
// do what a run does (create namespaces and cluster-wide RBAC: cluster
// admin), and reads the cluster's version and nodes. Every problem is an
// *InputError that says which and what to do, and nothing is created.
func Connect(ctx context.Context, name string, kubeconfig []string) (*Target, error) {
	if len(kubeconfig) == 0 {
		return nil, inputErr("no kubeconfig given")
	}
	for _, p := range kubeconfig {
		if _, err := os.Stat(p); err != nil {
			return nil, inputErr("kubeconfig %s: %v", p, unwrapPath(err))
		}
	}
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: kubeconfig}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, inputErr("kubeconfig %s: %v", strings.Join(kubeconfig, ":"), err)
	}
	if name == "" {
		if raw, err := loader.RawConfig(); err == nil {
			name = raw.CurrentContext
		}
	}
	t := &Target{Name: name}
	t.restExec = rest.CopyConfig(cfg)
	t.rest = rest.CopyConfig(cfg)
	t.rest.Timeout = requestTimeout
	t.rest.QPS, t.rest.Burst = 20, 40
	t.clientset, err = kubernetes.NewForConfig(t.rest)
	if err == nil {
		t.streams, err = kubernetes.NewForConfig(t.restExec)
	}
	if err != nil {
		return nil, inputErr("kubeconfig %s: %v", strings.Join(kubeconfig, ":"), err)
	}
	t.Facts.Name = name
	t.Facts.Server = cfg.Host

	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	v, err := t.clientset.Discovery().ServerVersion()
	if err != nil {
		return nil, describeAccessError(name, cfg.Host, err)
	}
	t.Facts.Version = v.GitVersion
	review, err := t.clientset.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "*", Group: "*", Resource: "*"}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, describeAccessError(name, cfg.Host, err)
	}
	if !review.Status.Allowed {
		return nil, inputErr("cluster %s (%s): the kubeconfig's credentials are not cluster admin (sonobuoy creates namespaces and cluster-wide RBAC)%s", name, cfg.Host, paren(review.Status.Reason))
	}
	nodes, err := t.clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, describeAccessError(name, cfg.Host, err)
	}
	if len(nodes.Items) == 0 {
		return nil, inputErr("cluster %s (%s) has no nodes", name, cfg.Host)
	}
	t.Facts.Nodes, t.Facts.Provider, t.KindCluster, t.NodeImages = nodeFacts(nodes.Items)
	return t, nil
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// describeAccessError turns a failed first request into one line: the
// cluster does not answer, or the credentials are refused.
func describeAccessError(name, host string, err error) error {
	var netErr net.Error
	var urlErr *url.Error
	switch {
	case apierrors.IsUnauthorized(err):
		return inputErr("cluster %s (%s) refuses the kubeconfig's credentials (401 Unauthorized)", name, host)
	case apierrors.IsForbidden(err):
		return inputErr("cluster %s (%s): the kubeconfig's credentials may not do this (403 Forbidden): %v", name, host, err)
	case errors.As(err, &netErr), errors.As(err, &urlErr):
		return inputErr("cluster %s does not answer at %s: %v", name, host, err)
	}
	return inputErr("cluster %s (%s): %v", name, host, err)
}

// nodeFacts turns the nodes into report facts, the provider of their IDs
// (kind, openstack, ...), the kind cluster they belong to, and the images
// every node has.
func nodeFacts(items []corev1.Node) (nodes []report.Node, provider, kindCluster string, common map[string]bool) {
	counts := map[string]int{}
	for _, n := range items {
		rn := report.Node{
			Name:             n.Name,
			KubeletVersion:   n.Status.NodeInfo.KubeletVersion,
			OSImage:          n.Status.NodeInfo.OSImage,
			ContainerRuntime: n.Status.NodeInfo.ContainerRuntimeVersion,
		}
		for k := range n.Labels {
			if role, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && role != "" {
				rn.Roles = append(rn.Roles, role)
			}
		}
		slices.Sort(rn.Roles)
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				rn.Ready = c.Status == corev1.ConditionTrue
			}
		}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && rn.InternalIP == "" {
				rn.InternalIP = a.Address
			}
		}
		nodes = append(nodes, rn)
		if p, rest, ok := strings.Cut(n.Spec.ProviderID, "://"); ok {
			if provider == "" {
				provider = p
			}
			// kind://<engine>/<cluster>/<node>
			if parts := strings.Split(rest, "/"); p == "kind" && len(parts) == 3 && kindCluster == "" {
				kindCluster = parts[1]
			}
		}
		seen := map[string]bool{}
		for _, img := range n.Status.Images {
			for _, name := range img.Names {
				if !seen[name] {
					seen[name] = true
					counts[name]++
				}
			}
		}
	}
	common = map[string]bool{}
	for name, c := range counts {
		if c == len(items) {
			common[name] = true
			// the runtime reports docker.io names in full; references
			// without a registry mean the same image
			if short, ok := strings.CutPrefix(name, "docker.io/"); ok {
				common[short] = true
				if lib, ok := strings.CutPrefix(short, "library/"); ok {
					common[lib] = true
				}
			}
		}
	}
	slices.SortFunc(nodes, func(a, b report.Node) int { return strings.Compare(a.Name, b.Name) })
	return nodes, provider, kindCluster, common
}

// Clientset is the target's Kubernetes client.
func (t *Target) Clientset() kubernetes.Interface { return t.clientset }

// RESTConfig is the target's client configuration (requests bounded).
func (t *Target) RESTConfig() *rest.Config { return rest.CopyConfig(t.rest) }

// RefreshNodeImages reads again which images every node has.
func (t *Target) RefreshNodeImages(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	nodes, err := t.clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	_, _, _, t.NodeImages = nodeFacts(nodes.Items)
	return nil
}
