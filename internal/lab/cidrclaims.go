package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/capilab/capilab/internal/fsutil"
	"github.com/capilab/capilab/internal/wait"
)

// The local lab's clusters share one machine's network space, whichever lab
// (PREFIX, management cluster) they belong to: devcloud's data plane mirrors
// every Neutron network that carries nodes as a Docker network, and two of
// them may not overlap. A lab sees its own clusters' node CIDRs in its
// management cluster and every existing subnet in the cloud, but not a
// cluster another lab is rendering at the same moment, whose network CAPO
// has not made yet. So every node CIDR handed out is also recorded, under a
// machine-wide lock, in capilab's cache, where every lab looks.

// cidrClaim records that a cluster of a lab was given a node CIDR.
type cidrClaim struct {
	CIDR    string    `json:"cidr"`
	Lab     string    `json:"lab"`
	Cluster string    `json:"cluster"`
	Claimed time.Time `json:"claimed"`
}

// claimTTL is how long a claim holds without a subnet in the cloud: ample
// for CAPO to make the cluster's network once the cluster is applied. A
// claim whose subnet exists holds as long as the subnet.
const claimTTL = time.Hour

// pickNodeCIDR gives cluster name of lab a free /24 (localLabNodeCIDR)
// avoiding taken (the lab's other clusters), inCloud (the cloud's subnets)
// and the live claims of other clusters; a cluster's own live claim is
// kept when still free. It returns the claims to record: the live ones
// with this cluster's (re)claimed.
func pickNodeCIDR(claims []cidrClaim, lab, name string, taken, inCloud []string, now time.Time) (string, []cidrClaim, error) {
	overlapsAny := func(cidr string, others []string) bool {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return true
		}
		for _, o := range others {
			if q, err := netip.ParsePrefix(o); err == nil && q.Overlaps(p) {
				return true
			}
		}
		return false
	}
	var live []cidrClaim
	var own string
	var others []string
	for _, c := range claims {
		if now.Sub(c.Claimed) >= claimTTL && !overlapsAny(c.CIDR, inCloud) {
			continue // expired, and no subnet of it in the cloud
		}
		if c.Lab == lab && c.Cluster == name {
			own = c.CIDR
			continue
		}
		live = append(live, c)
		others = append(others, c.CIDR)
	}
	avoid := append(append(append([]string{}, taken...), others...), inCloud...)
	cidr := own
	// The cluster's own claim stands unless another cluster took its CIDR
	// meanwhile (a subnet of its own in the cloud is fine).
	if cidr == "" || overlapsAny(cidr, append(append([]string{}, taken...), others...)) {
		var err error
		if cidr, err = localLabNodeCIDR(name, avoid); err != nil {
			return "", nil, err
		}
	}
	return cidr, append(live, cidrClaim{CIDR: cidr, Lab: lab, Cluster: name, Claimed: now}), nil
}

// claimNodeCIDR picks and records a node CIDR for cluster name of lab
// under the machine-wide lock, in file (JSON) next to lockFile.
func claimNodeCIDR(ctx context.Context, log *slog.Logger, file, lab, name string, taken, inCloud []string) (string, error) {
	unlock, err := fsutil.Lock(ctx, log, file+".lock", wait.Spec{What: "another capilab run to pick its cluster's node CIDR", Timeout: time.Hour, Interval: time.Second})
	if err != nil {
		return "", fmt.Errorf("node CIDR lock: %w", err)
	}
	defer unlock()
	var claims []cidrClaim
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("node CIDR claims: %w", err)
	default:
		if err := json.Unmarshal(b, &claims); err != nil {
			return "", fmt.Errorf("node CIDR claims %s: %w (delete the file: the next run records anew)", file, err)
		}
	}
	cidr, claims, err := pickNodeCIDR(claims, lab, name, taken, inCloud, time.Now())
	if err != nil {
		return "", err
	}
	out, err := json.MarshalIndent(claims, "", "  ")
	if err != nil {
		return "", err
	}
	if err := fsutil.WriteAtomic(file, append(out, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("node CIDR claims: %w", err)
	}
	return cidr, nil
}
