package addons

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/capilab/capilab/internal/cleanup"
	"github.com/capilab/capilab/internal/kube"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/naming"
)

// Before a workload cluster is deleted, what OCCM and Cinder CSI created
// in OpenStack for it must go, through them: once the cluster is gone
// nothing deletes its Services' load balancers or its volumes (and a
// load balancer left on the cluster's network blocks deleting the
// network). Teardown deletes the cluster's Services of type LoadBalancer
// and its PersistentVolumeClaims, waits until Kubernetes has let go of
// them (OCCM and the CSI provisioner remove their finalizers only once
// the OpenStack resource is deleted), and then until the cloud shows none
// of the cluster's markers any more.

// CloudLister lists OpenStack resources (cleanup.OpenStack is one).
type CloudLister interface {
	List(ctx context.Context, t cleanup.Type) ([]cleanup.Resource, error)
}

// TeardownOptions configure Teardown.
type TeardownOptions struct {
	// Timeout bounds the whole wait (default 10m; the delete_timeout
	// setting is the natural value).
	Timeout time.Duration
	// ReachTimeout bounds the first request that tells whether the cluster
	// answers (default 20s).
	ReachTimeout time.Duration
	// Interval is the longest pause between polls (default 5s).
	Interval time.Duration
	Log      *slog.Logger
}

// TeardownResult says what Teardown did.
type TeardownResult struct {
	// Skipped is set when the cluster did not answer: nothing was done in
	// it (fullclean's ownership rules find what OCCM and CSI left).
	Skipped     string
	Services    []string // namespace/name deleted
	Claims      []string // namespace/name deleted
	Retained    []string // PVs with reclaim policy Retain: their volumes stay by design
	CloudMarked []string // resources with the cluster's markers seen last (empty on success)
}

// Teardown removes, through the cluster itself, the OpenStack resources
// OCCM and Cinder CSI made for it. An unreachable cluster is reported in
// the result and is not an error. cloud may be nil: then only the
// cluster's side is waited for.
func Teardown(ctx context.Context, workload *kube.Cluster, clusterName string, cloud CloudLister, opts TeardownOptions) (*TeardownResult, error) {
	log := opts.Log
	if log == nil {
		log = logging.Discard()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Minute
	}
	if opts.ReachTimeout <= 0 {
		opts.ReachTimeout = 20 * time.Second
	}
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	res := &TeardownResult{}
	if err := workload.Reachable(ctx, opts.ReachTimeout); err != nil {
		res.Skipped = err.Error()
		log.Warn("workload cluster does not answer: not deleting its LoadBalancer Services and volumes through it; fullclean's rules find what OCCM and Cinder CSI left",
			"cluster", clusterName, "err", err)
		return res, nil
	}
	c := workload.Client

	var svcs corev1.ServiceList
	if err := c.List(ctx, &svcs); err != nil {
		return res, fmt.Errorf("cluster %s: list Services: %w", clusterName, err)
	}
	for i := range svcs.Items {
		s := &svcs.Items[i]
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		if err := c.Delete(ctx, s); kube.IgnoreNotFound(err) != nil {
			return res, fmt.Errorf("cluster %s: delete Service %s: %w", clusterName, kube.ObjectName(s), err)
		}
		res.Services = append(res.Services, kube.ObjectName(s))
	}

	var pvs corev1.PersistentVolumeList
	if err := c.List(ctx, &pvs); err != nil {
		return res, fmt.Errorf("cluster %s: list PersistentVolumes: %w", clusterName, err)
	}
	for _, pv := range pvs.Items {
		if pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimRetain {
			res.Retained = append(res.Retained, pv.Name)
		}
	}
	var pvcs corev1.PersistentVolumeClaimList
	if err := c.List(ctx, &pvcs); err != nil {
		return res, fmt.Errorf("cluster %s: list PersistentVolumeClaims: %w", clusterName, err)
	}
	claimed := map[string]bool{}
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		claimed[pvc.Namespace+"/"+pvc.Name] = true
		if err := c.Delete(ctx, pvc); kube.IgnoreNotFound(err) != nil {
			return res, fmt.Errorf("cluster %s: delete PersistentVolumeClaim %s: %w", clusterName, kube.ObjectName(pvc), err)
		}
		res.Claims = append(res.Claims, kube.ObjectName(pvc))
	}
	// A claim in use stays until its pods go: delete the pods that mount
	// the claims (their controllers cannot schedule new ones on a claim
	// being deleted).
	var pods corev1.PodList
	if err := c.List(ctx, &pods); err != nil {
		return res, fmt.Errorf("cluster %s: list Pods: %w", clusterName, err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && claimed[p.Namespace+"/"+v.PersistentVolumeClaim.ClaimName] {
				if err := c.Delete(ctx, p); kube.IgnoreNotFound(err) != nil {
					return res, fmt.Errorf("cluster %s: delete Pod %s (it mounts a claim being deleted): %w", clusterName, kube.ObjectName(p), err)
				}
				break
			}
		}
	}
	for _, pv := range res.Retained {
		log.Warn("PersistentVolume has reclaim policy Retain: its Cinder volume is kept by design and will show as the cluster's leftover", "cluster", clusterName, "pv", pv)
	}
	log.Info("deleted the cluster's LoadBalancer Services and PersistentVolumeClaims; waiting for OCCM and Cinder CSI to delete their OpenStack resources",
		"cluster", clusterName, "services", len(res.Services), "claims", len(res.Claims))

	retained := map[string]bool{}
	for _, pv := range res.Retained {
		retained[pv] = true
	}
	w := kube.Wait{Name: "addons-teardown", Timeout: opts.Timeout, Interval: opts.Interval,
		What: fmt.Sprintf("OCCM and Cinder CSI of cluster %s to delete their load balancers and volumes", clusterName)}
	err := workload.WaitFor(ctx, w, func(ctx context.Context) (bool, string, error) {
		var pending []string
		var svcs corev1.ServiceList
		if err := c.List(ctx, &svcs); err != nil {
			return false, "list Services: " + err.Error(), nil
		}
		for _, s := range svcs.Items {
			if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
				pending = append(pending, "Service "+kube.ObjectName(&s))
			}
		}
		var pvcs corev1.PersistentVolumeClaimList
		if err := c.List(ctx, &pvcs); err != nil {
			return false, "list PersistentVolumeClaims: " + err.Error(), nil
		}
		for _, p := range pvcs.Items {
			pending = append(pending, "PersistentVolumeClaim "+kube.ObjectName(&p))
		}
		var pvs corev1.PersistentVolumeList
		if err := c.List(ctx, &pvs); err != nil {
			return false, "list PersistentVolumes: " + err.Error(), nil
		}
		for _, pv := range pvs.Items {
			ref := pv.Spec.ClaimRef
			if !retained[pv.Name] && ref != nil && claimed[ref.Namespace+"/"+ref.Name] {
				pending = append(pending, fmt.Sprintf("PersistentVolume %s (%s)", pv.Name, pv.Status.Phase))
			}
		}
		if cloud != nil {
			marked, err := CloudMarked(ctx, cloud, clusterName, retainedVolumes(pvs.Items, retained))
			if err != nil {
				return false, "listing OpenStack resources: " + err.Error(), nil
			}
			res.CloudMarked = marked
			pending = append(pending, marked...)
		}
		if len(pending) > 0 {
			return false, fmt.Sprintf("%d left: %s", len(pending), shorten(pending, 6)), nil
		}
		return true, "nothing left", nil
	})
	if err != nil {
		return res, fmt.Errorf("cluster %s: %w", clusterName, err)
	}
	return res, nil
}

func retainedVolumes(pvs []corev1.PersistentVolume, retained map[string]bool) map[string]bool {
	out := map[string]bool{}
	for _, pv := range pvs {
		if retained[pv.Name] && pv.Spec.CSI != nil {
			out[pv.Spec.CSI.VolumeHandle] = true
		}
	}
	return out
}

func shorten(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

// CSIClusterKey is the metadata key Cinder CSI (--cluster) writes on what
// it creates; it and OCCM's (--cluster-name) markers come from
// internal/naming, which the cleanup's rules occm-* and csi-* read too.
const CSIClusterKey = naming.CSIClusterKey

// CloudMarked lists the OpenStack resources that carry the cluster's OCCM
// or Cinder CSI markers (skipping the given volume IDs and their
// snapshots: retained by design), as "type name (id)".
func CloudMarked(ctx context.Context, cloud CloudLister, cluster string, skipVolumes map[string]bool) ([]string, error) {
	var out []string
	var errs []error
	for _, t := range []cleanup.Type{cleanup.LoadBalancer, cleanup.FloatingIP, cleanup.SecurityGroup, cleanup.Snapshot, cleanup.Volume} {
		rs, err := cloud.List(ctx, t)
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s: %w", t, err))
			continue
		}
		for _, r := range rs {
			if marked(r, cluster, skipVolumes) {
				out = append(out, fmt.Sprintf("%s %s (%s)", r.Type, r.Name, r.ID))
			}
		}
	}
	sort.Strings(out)
	return out, errors.Join(errs...)
}

func marked(r cleanup.Resource, cluster string, skipVolumes map[string]bool) bool {
	switch r.Type {
	case cleanup.LoadBalancer:
		return strings.HasPrefix(r.Name, naming.OCCMLoadBalancerPrefix(cluster))
	case cleanup.FloatingIP:
		prefix, suffix := naming.OCCMFloatingIPDescription(cluster)
		return strings.HasPrefix(r.Description, prefix) && strings.HasSuffix(r.Description, suffix)
	case cleanup.SecurityGroup:
		prefix, suffix := naming.OCCMSecurityGroupDescription(cluster)
		return strings.HasPrefix(r.Description, prefix) && strings.HasSuffix(r.Description, suffix)
	case cleanup.Volume:
		return r.Metadata[CSIClusterKey] == cluster && !skipVolumes[r.ID]
	case cleanup.Snapshot:
		return r.Metadata[CSIClusterKey] == cluster && !skipVolumes[r.VolumeID]
	}
	return false
}
