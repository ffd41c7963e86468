// Package mgmt is the management cluster: a kind cluster "<prefix>-mgmt"
// with Cluster API (core, kubeadm bootstrap, kubeadm control plane), the
// openstack-resource-controller and CAPO installed through clusterctl's Go
// library at the versions pinned in manifests/versions.yaml.
//
// Create goes step by step, and a re-run after any interruption continues
// where the last run stopped:
//
//  1. Preflight: a Docker engine answers; the providers are pinned.
//  2. The kind cluster: when one of that name exists, it must be the one
//     capilab made (the IDs of its node containers are in the state
//     record) — capilab never touches a kind cluster it cannot prove is
//     its own. Otherwise it is created (kind's Go library) and recorded at
//     once. In the local source the controller images are built from their
//     modules meanwhile (internal/modbuild; seconds when current).
//  3. Images are loaded into the nodes (local source), the certificate
//     issuer is installed and Available (local source: cert-manager cannot
//     be built here), and the components are rendered into a clusterctl
//     local repository.
//  4. clusterctl init, twice: ORC, core, bootstrap and control plane first,
//     then CAPO (CAPO stops when ORC's CRDs are missing). Every provider
//     Deployment must then be Available (a named, bounded wait; on timeout
//     the controllers' logs, events and conditions go to artifacts/).
//  5. The lab's application credential becomes the Secret CAPO reads
//     (identityRef), in namespace capilab-system.
//
// On an existing, healthy cluster at the pinned versions Create changes
// nothing: it reads the inventory and the Deployments and returns. At other
// versions it says what differs and upgrades through clusterctl.
package mgmt
