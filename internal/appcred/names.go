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
// or "capilab lab=<prefix> cluster=<cluster>": that, not the name, proves a
// credential is the lab's (prefix "capi" + cluster "foo-bar" and prefix
// "capi-foo" + cluster "bar" give the same name). capilab never rotates or
// deletes a credential without it.
package appcred

import (
	"strings"
	"time"
)

// Name is the Keystone name of the lab's credential (cluster "") or of a
// cluster's: <prefix>-appcred, <prefix>-<cluster>-appcred.
func Name(prefix, cluster string) string {
	if cluster == "" {
		return prefix + "-appcred"
	}
	return prefix + "-" + cluster + "-appcred"
}

// CloudName is the clouds.yaml entry of the lab's credential (<prefix>) or of
// a cluster's (<prefix>-<cluster>).
func CloudName(prefix, cluster string) string {
	if cluster == "" {
		return prefix
	}
	return prefix + "-" + cluster
}

const descriptionTag = "capilab"

// Description is the description of every credential capilab creates:
// "capilab lab=<prefix>" or "capilab lab=<prefix> cluster=<cluster>".
func Description(prefix, cluster string) string {
	d := descriptionTag + " lab=" + prefix
	if cluster != "" {
		d += " cluster=" + cluster
	}
	return d
}

// CreatedKey is the description field that records when capilab created a
// credential (RFC 3339, UTC): Keystone does not report it, and cleaning up
// by age (older_than) needs it.
const CreatedKey = "created"

// DescriptionAt is Description with the creation time: what create sends.
func DescriptionAt(prefix, cluster string, created time.Time) string {
	return Description(prefix, cluster) + " " + CreatedKey + "=" + created.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// CreatedAt reads the creation time from a description DescriptionAt
// wrote; zero when there is none (credentials made before it was recorded,
// SCS's).
func CreatedAt(desc string) time.Time {
	if _, _, ok := ParseDescription(desc); !ok {
		return time.Time{}
	}
	for _, f := range strings.Fields(desc)[1:] {
		if v, ok := strings.CutPrefix(f, CreatedKey+"="); ok {
			t, err := time.Parse(time.RFC3339, v)
			if err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// ParseDescription reads a description Description wrote. ok is false for
// anything else: another tool's credential, a hand-made one, a malformed or
// repeated field. Unknown key=value fields after the tag are ignored, so that
// later versions may add some.
func ParseDescription(desc string) (prefix, cluster string, ok bool) {
	fields := strings.Fields(desc)
	if len(fields) < 2 || fields[0] != descriptionTag {
		return "", "", false
	}
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, found := strings.Cut(f, "=")
		if !found || k == "" || seen[k] {
			return "", "", false
		}
		seen[k] = true
		switch k {
		case "lab":
			if v == "" {
				return "", "", false
			}
			prefix = v
		case "cluster":
			if v == "" {
				return "", "", false
			}
			cluster = v
		}
	}
	if prefix == "" {
		return "", "", false
	}
	return prefix, cluster, true
}
