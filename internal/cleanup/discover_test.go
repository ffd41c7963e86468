package cleanup

import (
	"context"
	"sync"
	"testing"
	"time"
)

// listRecorder is a Backend whose lists take a moment and record when they
// ran, and whose types belong to services by the given map.
type listRecorder struct {
	services map[Type]string
	mu       sync.Mutex
	spans    map[Type][2]time.Time
	running  int
	peak     int
}

func (l *listRecorder) Service(t Type) string { return l.services[t] }

func (l *listRecorder) List(ctx context.Context, t Type) ([]Resource, error) {
	start := time.Now()
	l.mu.Lock()
	l.running++
	l.peak = max(l.peak, l.running)
	l.mu.Unlock()
	select { // long enough for concurrent lists to overlap
	case <-time.After(5 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	l.running--
	l.spans[t] = [2]time.Time{start, time.Now()}
	l.mu.Unlock()
	return []Resource{{Type: t, ID: string(t)}}, nil
}

func (l *listRecorder) Delete(context.Context, *Resource) error { return nil }
func (l *listRecorder) Exists(context.Context, *Resource) (bool, string, error) {
	return false, "", nil
}
func (l *listRecorder) Async(Type) bool { return false }

func TestDiscoverListsEachServiceAloneFirst(t *testing.T) {
	services := map[Type]string{}
	for _, ty := range Types {
		services[ty] = "network"
	}
	services[Server], services[ServerGroup], services[Keypair] = "compute", "compute", "compute"
	services[Volume], services[Snapshot] = "volume", "volume"
	services[LoadBalancer], services[AppCred] = "load-balancer", "identity"

	for _, parallelism := range []int{1, 3, 8} {
		rec := &listRecorder{services: services, spans: map[Type][2]time.Time{}}
		rs, err := Discover(context.Background(), rec, parallelism)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != len(Types) || len(rec.spans) != len(Types) {
			t.Fatalf("parallelism %d: listed %d types, got %d resources; want each of %d types once", parallelism, len(rec.spans), len(rs), len(Types))
		}
		if rec.peak > parallelism {
			t.Errorf("parallelism %d: %d lists ran at once", parallelism, rec.peak)
		}
		for _, group := range serviceGroups(rec) {
			first := rec.spans[group[0]]
			for _, ty := range group[1:] {
				if rec.spans[ty][0].Before(first[1]) {
					t.Errorf("parallelism %d: %s listed before %s, the first list of service %s, returned", parallelism, ty, group[0], services[ty])
				}
			}
		}
	}
}

func TestServiceGroupsWithoutServiceNames(t *testing.T) {
	groups := serviceGroups(newFakeCloud(1, nil))
	if len(groups) != len(Types) {
		t.Fatalf("got %d groups, want one per type (%d)", len(groups), len(Types))
	}
	for i, g := range groups {
		if len(g) != 1 || g[0] != Types[i] {
			t.Errorf("group %d = %v, want [%s]", i, g, Types[i])
		}
	}
}
