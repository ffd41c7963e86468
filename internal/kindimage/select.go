package kindimage

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/versions"
)

// Choice is the node image kind clusters should use, and why.
type Choice struct {
	Image  string
	Local  bool   // the locally built image (Ensure builds it)
	Reason string // one line for logs and `make config`
}

// Resolver looks a host name up; net.DefaultResolver.LookupHost fits.
type Resolver func(ctx context.Context, host string) ([]string, error)

// Select applies the KIND_NODE_IMAGE rule:
//
//  1. explicit (the KIND_NODE_IMAGE setting) wins when set;
//  2. else the pinned upstream image (management.kindNodeImage) when the
//     engine already has it;
//  3. else the upstream image when its registry's name resolves (a DNS
//     answer only: nothing is sent to the registry);
//  4. else the locally built image (kindNode.tag), which Ensure builds.
func Select(ctx context.Context, explicit string, pins *versions.Pinned, d Docker, resolve Resolver) (Choice, error) {
	local := pins.KindNode.Image()
	if explicit != "" {
		return Choice{Image: explicit, Local: explicit == local, Reason: "KIND_NODE_IMAGE is set"}, nil
	}
	upstream := pins.Management.KindNodeImage
	if upstream == "" {
		return Choice{Image: local, Local: true, Reason: "no upstream image pinned"}, nil
	}
	if _, found, err := d.ImageLabel(ctx, upstream, Label); err != nil {
		return Choice{}, err
	} else if found {
		return Choice{Image: upstream, Reason: "upstream image is present in the Docker engine"}, nil
	}
	host := RegistryHost(upstream)
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if addrs, err := resolve(lctx, host); err == nil && len(addrs) > 0 {
		return Choice{Image: upstream, Reason: fmt.Sprintf("registry %s resolves", host)}, nil
	}
	return Choice{Image: local, Local: true, Reason: fmt.Sprintf("registry %s does not resolve: using the locally built image", host)}, nil
}

// DefaultResolver is the system resolver.
func DefaultResolver(ctx context.Context, host string) ([]string, error) {
	return net.DefaultResolver.LookupHost(ctx, host)
}

// RegistryHost is the registry an image reference is pulled from (Docker's
// rules: a first path element with a dot or colon, or "localhost", is a
// registry; everything else comes from Docker Hub).
func RegistryHost(image string) string {
	first, _, ok := strings.Cut(image, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "registry-1.docker.io"
}
