package addons

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/versions"
	"github.com/capilab/capilab/internal/workload"
)

// Workload is the addons of a lab's workload clusters as the workload
// package uses them (it implements workload.Addons).
type Workload struct {
	Pins     versions.Addons
	Settings Settings
	// Renderer renders the manifests (Pins, Sources, Helm, Log).
	Renderer *Renderer
	// CloudConf returns a cluster's cloud.conf (state/clusters/<c>/cloud.conf,
	// written with its application credential).
	CloudConf func(cluster string) ([]byte, error)
	// LocalLab: the clusters' nodes are devcloud's node containers of
	// NodeImage, which pull only images built here.
	LocalLab  bool
	NodeImage string
	// Images builds the local lab's images (modbuild.Builder).
	Images ImageBuilder
	// Publish makes built images pullable by the nodes (the lab's registry
	// mirror). nil: the images are built and labelled for the mirror, and
	// a line says they must be mirrored.
	Publish func(ctx context.Context, refs []string) error
	// Management, when set, lets WaitReady first check the
	// ClusterResourceSets applied.
	Management *kube.Cluster
	// Cloud lists OpenStack resources for Teardown's check (nil: only the
	// cluster's side is waited for).
	Cloud CloudLister
	// ReadyTimeout bounds each addon's wait (default 5m); TeardownTimeout
	// the wait for OCCM's and Cinder CSI's resources to go (default 10m).
	ReadyTimeout, TeardownTimeout time.Duration
	Log                           *slog.Logger

	mu      sync.Mutex
	bundles map[string]*Bundle
	cni     []byte
}

var _ workload.Addons = (*Workload)(nil)

func (w *Workload) log() *slog.Logger {
	if w.Log == nil {
		return logging.Discard()
	}
	return w.Log
}

// Validate checks the addon settings (before anything is created).
func (w *Workload) Validate() error { return Validate(w.Pins, w.Settings) }

// Selection resolves the addons of one cluster.
func (w *Workload) Selection(s workload.Spec) (Selection, error) {
	return Select(w.Pins, Request{Settings: w.Settings, KubernetesVersion: s.KubernetesVersion, LocalLab: w.LocalLab})
}

// ClusterInfo is what the addons need of a cluster's spec.
func (w *Workload) ClusterInfo(s workload.Spec, needCloud bool) (ClusterInfo, error) {
	c := ClusterInfo{Name: s.Name, Namespace: s.Namespace, KubernetesVersion: s.KubernetesVersion, PodCIDR: s.PodCIDR, MTU: s.MTU}
	if needCloud {
		if w.CloudConf == nil {
			return c, fmt.Errorf("cluster %s: no source of its cloud.conf", s.Name)
		}
		conf, err := w.CloudConf(s.Name)
		if err != nil {
			return c, fmt.Errorf("cluster %s: cloud.conf for OCCM and Cinder CSI: %w", s.Name, err)
		}
		c.CloudConf = conf
	}
	return c, nil
}

// Render selects and renders a cluster's addons.
func (w *Workload) Render(ctx context.Context, s workload.Spec) (*Bundle, error) {
	sel, err := w.Selection(s)
	if err != nil {
		return nil, err
	}
	for _, n := range sel.Notes {
		w.log().Info("addons: "+n, "cluster", s.Name)
	}
	_, occm := sel.Find(OCCM)
	_, csi := sel.Find(CinderCSI)
	info, err := w.ClusterInfo(s, occm || csi)
	if err != nil {
		return nil, err
	}
	r := *w.Renderer
	if cni, ok := sel.Find(CNI); ok && cni.Variant == CNIAgent {
		if r.CNIAgentManifest, err = w.cniManifest(ctx); err != nil {
			return nil, err
		}
	}
	b, err := r.Render(ctx, info, sel.Addons)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	if w.bundles == nil {
		w.bundles = map[string]*Bundle{}
	}
	w.bundles[s.Namespace+"/"+s.Name] = b
	w.mu.Unlock()
	return b, nil
}

func (w *Workload) cniManifest(ctx context.Context) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cni != nil {
		return w.cni, nil
	}
	if w.NodeImage == "" {
		return nil, fmt.Errorf("local lab: no node image to read the cni-agent manifest from")
	}
	m, err := LocalCNIManifest(ctx, "", w.NodeImage)
	if err != nil {
		return nil, err
	}
	w.cni = m
	return m, nil
}

// Objects renders the cluster's addons and returns their
// ClusterResourceSets and resources; in the local lab it first builds the
// images the manifests name (and publishes them when Publish is set).
func (w *Workload) Objects(ctx context.Context, s workload.Spec) ([]client.Object, error) {
	b, err := w.Render(ctx, s)
	if err != nil {
		return nil, err
	}
	if w.LocalLab {
		if w.Images == nil {
			return nil, fmt.Errorf("local lab: no image builder for the addons' images")
		}
		step := logging.StartStep(w.log(), "building the addons' images from their Go modules", "cluster", s.Name)
		built, err := BuildLocalImages(ctx, w.Images, b.Images())
		step.Done(err, "images", len(built))
		if err != nil {
			return nil, err
		}
		if w.Publish != nil {
			if err := w.Publish(ctx, built); err != nil {
				return nil, fmt.Errorf("publish the addons' images to the lab's registry mirror: %w", err)
			}
		} else if len(built) > 0 {
			w.log().Info("addon images built and labelled for the lab's registry mirror; nodes pull them from there (make mirror)", "images", built)
		}
	}
	return b.Objects()
}

// WaitReady waits until every addon of the cluster is Ready.
func (w *Workload) WaitReady(ctx context.Context, wl *kube.Cluster, s workload.Spec) error {
	w.mu.Lock()
	b := w.bundles[s.Namespace+"/"+s.Name]
	w.mu.Unlock()
	if b == nil {
		var err error
		if b, err = w.Render(ctx, s); err != nil {
			return err
		}
	}
	ready, err := WaitReady(ctx, wl, b, ReadyOptions{Timeout: w.ReadyTimeout, Management: w.Management})
	for _, r := range ready {
		w.log().Info("addon Ready", "cluster", s.Name, "addon", r.Part, "after", r.After.Round(time.Second))
	}
	return err
}

// DeleteCloudResources removes, through the cluster, what OCCM and Cinder
// CSI created in OpenStack for it (Teardown); an unreachable cluster is
// reported and skipped.
func (w *Workload) DeleteCloudResources(ctx context.Context, wl *kube.Cluster, s workload.Spec) error {
	res, err := Teardown(ctx, wl, s.Name, w.Cloud, TeardownOptions{Timeout: w.TeardownTimeout, Log: w.log()})
	if err != nil {
		return err
	}
	if res.Skipped == "" {
		w.log().Info("OCCM and Cinder CSI removed their OpenStack resources", "cluster", s.Name,
			"services", len(res.Services), "claims", len(res.Claims), "retained", res.Retained)
	}
	return nil
}
