package cleanup

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/capilab/capilab/internal/naming"
)

// Backend is what the cleanup needs from a cloud. Implementations: the
// OpenStack backend (openstack.go) and an in-memory fake in tests.
type Backend interface {
	// List returns every resource of a type the credentials' project owns.
	// It may also return resources of a type that the same API call lists
	// (router interfaces come with ports) and then none for that type.
	List(ctx context.Context, t Type) ([]Resource, error)
	// Delete starts deleting r; a resource that is already gone is success.
	Delete(ctx context.Context, r *Resource) error
	// Exists reports whether r still exists, with its status, for waiting
	// on asynchronous deletions. An error means the deletion failed for
	// good (a volume in error_deleting), not that it is still running.
	Exists(ctx context.Context, r *Resource) (bool, string, error)
	// Async reports whether deleting resources of type t completes later
	// (and must be waited for).
	Async(t Type) bool
}

// serviceNamer is a Backend whose types are listed by a few API services.
type serviceNamer interface {
	// Service names the API service that lists type t.
	Service(t Type) string
}

// Discover lists every type once, concurrently (at most parallelism at a
// time). Where the backend names services, each service's first list runs
// alone before the service's other lists: a service validates a token it
// has not seen once per concurrent request carrying it (keystonemiddleware
// caches only after an answer), which on a busy cloud costs seconds per
// request; one request first means one validation.
func Discover(ctx context.Context, b Backend, parallelism int) ([]Resource, error) {
	g, ctx := errgroup.WithContext(ctx)
	slots := make(chan struct{}, max(parallelism, 1))
	var mu sync.Mutex
	var all []Resource
	list := func(t Type) error {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-slots }()
		rs, err := b.List(ctx, t)
		if err != nil {
			return fmt.Errorf("listing %ss: %w", t, err)
		}
		mu.Lock()
		all = append(all, rs...)
		mu.Unlock()
		return nil
	}
	for _, group := range serviceGroups(b) {
		g.Go(func() error {
			if err := list(group[0]); err != nil {
				return err
			}
			for _, t := range group[1:] {
				g.Go(func() error { return list(t) })
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Key() < all[j].Key() })
	return all, nil
}

// serviceGroups groups Types by the service that lists them, in Types
// order; a backend that names no services gets one group per type.
func serviceGroups(b Backend) [][]Type {
	sn, ok := b.(serviceNamer)
	if !ok {
		groups := make([][]Type, len(Types))
		for i, t := range Types {
			groups[i] = []Type{t}
		}
		return groups
	}
	var groups [][]Type
	index := map[string]int{}
	for _, t := range Types {
		svc := sn.Service(t)
		i, seen := index[svc]
		if !seen {
			i = len(groups)
			index[svc] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], t)
	}
	return groups
}

// ClusterSources say where clusters of the lab are recorded besides the
// cloud's application credentials.
type ClusterSources struct {
	// Recorded are clusters the lab's local state records.
	Recorded []string
	// Management are clusters the management cluster has Cluster objects for.
	Management []string
	// Namespaces maps a cluster to its namespace where it is not the
	// cluster's own name.
	Namespaces map[string]string
}

// DiscoverClusters returns the clusters proven to be the lab's: a cluster
// application credential "<prefix>-<cluster>-appcred" whose capilab
// description (if any) names this lab, a state record, or a Cluster object
// on the management cluster. Notes explain credentials that were passed
// over.
func DiscoverClusters(prefix string, resources []Resource, src ClusterSources) (map[string]Cluster, []string) {
	clusters := map[string]Cluster{}
	add := func(name, evidence string) {
		c := clusters[name]
		c.Name = name
		if ns := src.Namespaces[name]; ns != "" {
			c.Namespace = ns
		}
		c.Evidence = append(c.Evidence, evidence)
		clusters[name] = c
	}
	var notes []string
	labs := otherLabs(resources)
	for _, r := range resources {
		if r.Type != AppCred {
			continue
		}
		name, ok := naming.ClusterOfAppCred(prefix, r.Name)
		if !ok || !isDNSLabel(name) {
			continue
		}
		p, c, described := naming.ParseAppCredDescription(r.Description)
		switch {
		case described && p != prefix:
			notes = append(notes, fmt.Sprintf("application credential %s belongs to lab %q, not %q", r.Name, p, prefix))
			continue
		case described && c != name:
			notes = append(notes, fmt.Sprintf("application credential %s describes cluster %q, not %q: passed over", r.Name, c, name))
			continue
		}
		ev := "application credential " + r.Name
		if !described {
			if other, rest, ok := ambiguousName(prefix, name, labs); ok {
				notes = append(notes, fmt.Sprintf("application credential %s has no capilab description and may be cluster %q of lab %q, which exists: passed over (record the cluster in the lab's state to claim it)", r.Name, rest, other))
				continue
			}
			ev += " (no capilab description; name only)"
		}
		add(name, ev)
	}
	for _, name := range src.Recorded {
		add(name, "recorded in the lab's state")
	}
	for _, name := range src.Management {
		add(name, "Cluster object on the management cluster")
	}
	return clusters, notes
}

func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// otherLabs lists the prefixes that show a lab of their own in the project:
// a lab keypair, a management node or a lab credential capilab described.
func otherLabs(resources []Resource) map[string]bool {
	labs := map[string]bool{}
	for _, r := range resources {
		switch {
		case r.Type == Keypair:
			if p, ok := naming.LabOfKeypair(r.Name); ok {
				labs[p] = true
			}
		case r.Type == Server:
			if p, ok := naming.LabOfMgmtServer(r.Name); ok {
				labs[p] = true
			}
		case r.Type == AppCred:
			if p, c, ok := naming.ParseAppCredDescription(r.Description); ok && c == "" {
				labs[p] = true
			}
		}
	}
	return labs
}

// ambiguousName reports whether "<prefix>-<name>" can also be read as
// "<other>-<rest>" for another lab <other> that exists: prefix "capi" +
// cluster "x-a" versus lab "capi-x" + cluster "a", and the other way round.
func ambiguousName(prefix, name string, labs map[string]bool) (other, rest string, ok bool) {
	full := prefix + "-" + name
	var others []string
	for q := range labs {
		if q != prefix && strings.HasPrefix(full, q+"-") && len(full) > len(q)+1 {
			others = append(others, q)
		}
	}
	if len(others) == 0 {
		return "", "", false
	}
	sort.Strings(others)
	return others[0], full[len(others[0])+1:], true
}
