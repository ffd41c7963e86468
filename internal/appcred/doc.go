// Package appcred manages the OpenStack application credentials of a lab,
// replacing SCS's tofu-made management credential and create_appcred.sh:
//
//   - the lab's credential <prefix>-appcred, unrestricted, so that it can
//     mint the per-cluster ones (as SCS's management node does);
//   - one credential per cluster, <prefix>-<cluster>-appcred, restricted,
//     with an expiry when one is configured.
//
// Each is written to the lab's state directory: a clouds.yaml entry
// (<prefix> or <prefix>-<cluster>, auth_type v3applicationcredential) and,
// for a cluster, the cloud.conf its OpenStack cloud controller manager and
// Cinder CSI read. Files are 0600, written atomically; secrets are registered
// for redaction the moment they exist and are never logged.
//
// A credential is reused only when its secret is known locally (the entry in
// the state's clouds.yaml names the same ID); otherwise it is rotated: the
// old one is revoked and a new one created. So "the credential exists but its
// clouds.yaml section is gone" (an SCS failure) heals itself.
//
// capilab generates each secret itself and sends it with the create, so a
// create whose answer was lost (the cloud made the credential, the client
// never heard) is recovered: the credential is found by name and proven to
// be this run's by authenticating with the secret.
//
// Every credential capilab creates has the description "capilab lab=<prefix>"
// or "capilab lab=<prefix> cluster=<cluster>" (naming.AppCredDescription):
// that, not the name, proves a credential is the lab's (prefix "capi" +
// cluster "foo-bar" and prefix "capi-foo" + cluster "bar" give the same
// name). capilab never rotates or deletes a credential without it.
package appcred
