// Package addons is everything a workload cluster gets once its API
// answers: the CNI, the OpenStack cloud controller manager (OCCM), Cinder
// CSI with the snapshot controller, metrics-server, Gateway API CRDs,
// ingress-nginx, cert-manager and flux.
//
// The flow, for the workload-cluster code:
//
//  1. Validate (before anything is created) and Select turn the settings
//     (deploy_*, cni, cni_version) into addons at versions pinned in
//     manifests/versions.yaml; a deploy_* version overrides the pin and
//     must be a release versions.yaml knows. OCCM and Cinder CSI follow the
//     cluster's minor, else the nearest pinned release (Selection.Notes
//     says which). In the local lab the CNI is capilab's cni-agent and the
//     addons whose images the lab cannot build are off, one note each.
//  2. Renderer.Render reads each addon's manifests from its source — a Go
//     module from the module proxy, checked against the go.sum hash pinned
//     in versions.yaml, or a download, checked against its pinned sha256
//     or the one recorded at the first download — and edits them where
//     capilab must: OCCM's --cluster-name and Cinder CSI's --cluster are
//     the Cluster API cluster's name (the upstream default, "kubernetes",
//     would make every cluster of a project share the ownership markers
//     fullclean reads), the cloud-config Secret carries the cluster's
//     cloud.conf.
//  3. Bundle.Objects wraps each addon into a ClusterResourceSet (strategy
//     Reconcile) with its ConfigMaps/Secret, in the cluster's namespace on
//     the management cluster, selecting the cluster by ClusterLabel;
//     Cluster API applies them as soon as the cluster's API answers, and
//     again whenever they change. Prune removes the objects of addons no
//     longer selected.
//  4. WaitReady checks each addon Ready in the workload cluster, with a
//     named, bounded wait per addon.
//  5. Teardown, before the cluster is deleted, deletes its LoadBalancer
//     Services and PersistentVolumeClaims and waits until OCCM and Cinder
//     CSI have deleted their OpenStack resources (checked by their
//     markers in the cloud); an unreachable cluster is reported, not an
//     error.
//
// For the local lab, BuildLocalImages builds every image the manifests
// name from its Go module under its upstream reference (labelled by
// modbuild, so the lab's registry mirror serves it).
package addons
