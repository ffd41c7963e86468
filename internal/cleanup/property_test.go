package cleanup

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// namePool mixes dashes and shared prefixes: the names SCS's regexes got wrong.
var namePool = []string{"alpha", "alpha-2", "alpha-20", "myalpha", "a", "a-b", "b", "beta", "beta-1", "x-foo", "foo", "k8s", "test", "test-cluster", "prod-eu-1", "prod-eu"}

var prefixPool = []string{"capi", "capi-x", "lab", "lab-2", "pr12"}

// compatible reports whether two clusters can coexist in one project
// without their names colliding in CAPO's or the lab's own naming: the same
// name, CAPO's short description form ("cluster a-a" is both cluster a-a
// and the resource name of cluster a) and "<prefix>-<cluster>" spelling the
// same string. Such pairs break CAPO itself and are not generated.
func compatible(p1, c1, p2, c2 string) bool {
	return c1 != c2 && c1 != c2+"-"+c2 && c2 != c1+"-"+c1 && p1+"-"+c1 != p2+"-"+c2
}

type scenario struct {
	prefix   string
	ours     []string
	recorded []string
	filter   []string
	seeder   *seeder
}

func genScenario(seed uint64) scenario {
	rng := rand.New(rand.NewPCG(seed, 99))
	s := newSeeder(seed)
	sc := scenario{prefix: prefixPool[rng.IntN(len(prefixPool))], seeder: s}
	type member struct{ prefix, name string }
	var placed []member
	fits := func(p, c string) bool {
		for _, m := range placed {
			if !compatible(m.prefix, m.name, p, c) {
				return false
			}
		}
		return true
	}
	// The lab's clusters.
	for _, i := range rng.Perm(len(namePool))[:1+rng.IntN(4)] {
		c := namePool[i]
		if !fits(sc.prefix, c) {
			continue
		}
		placed = append(placed, member{sc.prefix, c})
		sc.ours = append(sc.ours, c)
		withAppCred := rng.Float64() < 0.8
		// A credential without capilab description proves nothing when
		// another lab's prefix makes its name ambiguous; the lab's state
		// record then does.
		if described := s.cluster(sc.prefix, c, true, withAppCred); !withAppCred || !described {
			sc.recorded = append(sc.recorded, c)
		}
	}
	foreignLabs := map[string]bool{}
	// Look-alikes: clusters the lab cannot prove it made (no credential, no
	// record), and clusters of other labs in the same project.
	for range 1 + rng.IntN(4) {
		c := namePool[rng.IntN(len(namePool))]
		p := sc.prefix
		if rng.Float64() < 0.6 {
			p = prefixPool[rng.IntN(len(prefixPool))]
		}
		if !fits(p, c) || (p == sc.prefix && slices.Contains(sc.ours, c)) {
			continue
		}
		placed = append(placed, member{p, c})
		s.cluster(p, c, false, p != sc.prefix)
		if p != sc.prefix && !foreignLabs[p] {
			foreignLabs[p] = true // an SCS-made lab has its management node and keypair
			s.labOwn(p, false)
		}
	}
	if rng.Float64() < 0.5 {
		sc.filter = []string{}
		for _, c := range sc.ours {
			if rng.Float64() < 0.5 {
				sc.filter = append(sc.filter, c)
			}
		}
		if len(sc.filter) == 0 {
			sc.filter = nil
		}
	}
	s.labOwn(sc.prefix, true)
	for _, p := range prefixPool {
		if p != sc.prefix && !foreignLabs[p] && rng.Float64() < 0.3 {
			s.labOwn(p, false)
		}
	}
	s.unrelated()
	rng.Shuffle(len(s.all), func(i, j int) { s.all[i], s.all[j] = s.all[j], s.all[i] })
	return sc
}

// TestPropertyFullclean: over 1000 random mixtures of owned resources and
// foreign look-alikes, fullclean leaves nothing owned (of the selected
// clusters) and loses nothing foreign, whatever the order, parallelism and
// spurious "in use" refusals.
func TestPropertyFullclean(t *testing.T) {
	const runs = 1000
	totalOwned, totalForeign := 0, 0
	for i := range runs {
		seed := uint64(i)
		sc := genScenario(seed)
		fake := newFakeCloud(seed, sc.seeder.resources())
		fake.spurious = 0.05
		rep, err := Clean(context.Background(), fake, Options{
			Prefix:  sc.prefix,
			Filter:  Filter{Clusters: sc.filter},
			Sources: ClusterSources{Recorded: sc.recorded},
			Exec:    ExecOptions{Parallelism: 1 + int(seed%8), PollInterval: time.Microsecond, DeleteTimeout: 10 * time.Second, ProgressEvery: time.Hour},
		})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if len(rep.Remaining) != 0 {
			t.Fatalf("seed %d: verification found %d owned resource(s) left: %+v", seed, len(rep.Remaining), rep.Remaining[0])
		}
		for _, r := range sc.seeder.resources() {
			k := r.Key()
			selected := sc.seeder.ours[k] && (sc.filter == nil || slices.Contains(sc.filter, sc.seeder.owner[k]))
			switch {
			case selected && fake.has(k):
				t.Fatalf("seed %d (lab %s, clusters %v, filter %v): owned %s left", seed, sc.prefix, sc.ours, sc.filter, r.Label())
			case !selected && !fake.has(k):
				t.Fatalf("seed %d (lab %s, clusters %v, filter %v): %s deleted but it is not the selected lab's (owner %q)", seed, sc.prefix, sc.ours, sc.filter, r.Label(), sc.seeder.owner[k])
			}
			if selected {
				totalOwned++
			} else {
				totalForeign++
			}
		}
		for _, n := range fake.lists {
			if n != 2 { // discovery + verification, each type once
				t.Fatalf("seed %d: a type was listed %d times, want 2 (once per discovery)", seed, n)
			}
		}
	}
	t.Logf("%d runs: %d owned resources deleted, %d foreign or unselected kept", runs, totalOwned, totalForeign)
}

// TestInterruptedRunIsFinishedByNextRun cancels fullclean in the middle of
// deleting and proves the next run finishes: the credentials that prove
// ownership are deleted last, so nothing owned loses its evidence.
func TestInterruptedRunIsFinishedByNextRun(t *testing.T) {
	for seed := range uint64(50) {
		sc := genScenario(seed + 5000)
		fake := newFakeCloud(seed, sc.seeder.resources())
		ctx, cancel := context.WithCancel(context.Background())
		stopAfter := 1 + int(seed%7)
		deletes := 0
		fake.onDelete = func(string) {
			if deletes++; deletes == stopAfter {
				cancel()
			}
		}
		opts := Options{Prefix: sc.prefix, Filter: Filter{Clusters: sc.filter}, Sources: ClusterSources{Recorded: sc.recorded}, Journal: &MemoryJournal{},
			Exec: ExecOptions{Parallelism: 3, PollInterval: time.Microsecond, DeleteTimeout: 10 * time.Second, ProgressEvery: time.Hour}}
		_, err := Clean(ctx, fake, opts)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "run it again") {
			t.Fatalf("seed %d: interrupted run must say so, got %v", seed, err)
		}
		fake.onDelete = nil
		rep, err := Clean(context.Background(), fake, opts)
		if err != nil {
			t.Fatalf("seed %d: second run: %v", seed, err)
		}
		if len(rep.Remaining) != 0 {
			t.Fatalf("seed %d: second run left %d owned", seed, len(rep.Remaining))
		}
		for k, ours := range sc.seeder.ours {
			if ours && (sc.filter == nil || slices.Contains(sc.filter, sc.seeder.owner[k])) && fake.has(k) {
				t.Fatalf("seed %d: %s left after the second run", seed, k)
			}
		}
	}
}

// TestInterruptedRunSaysWhatIsKnown: an interrupted run reports deletions
// confirmed, accepted by the cloud (still going on there), cut off during
// the call and not started — and what the cloud has removed or is removing
// lies between the confirmed+accepted and the confirmed+accepted+cut-off
// counts (it used to report only the confirmed ones as deleted).
func TestInterruptedRunSaysWhatIsKnown(t *testing.T) {
	accepted := 0
	for seed := range uint64(50) {
		sc := genScenario(seed + 7000)
		fake := newFakeCloud(seed, sc.seeder.resources())
		ctx, cancel := context.WithCancel(context.Background())
		stopAfter := 2 + int(seed%9)
		deletes := 0
		fake.onDelete = func(string) {
			if deletes++; deletes == stopAfter {
				cancel()
			}
		}
		before := map[string]bool{}
		for k := range fake.res {
			before[k] = true
		}
		rep, err := Clean(ctx, fake, Options{Prefix: sc.prefix, Filter: Filter{Clusters: sc.filter}, Sources: ClusterSources{Recorded: sc.recorded}, Journal: &MemoryJournal{},
			Exec: ExecOptions{Parallelism: 3, PollInterval: time.Microsecond, DeleteTimeout: 10 * time.Second, ProgressEvery: time.Hour}})
		cancel()
		if err == nil || rep == nil || rep.Result == nil {
			t.Fatalf("seed %d: want an interrupted run with a result, got %v", seed, err)
		}
		in := rep.Result.Interrupted()
		if !strings.Contains(err.Error(), in.String()) || in.Deleted+in.Accepted+in.CutOff+in.NotRun+in.Failed != len(rep.Plan.Steps) {
			t.Fatalf("seed %d: %v does not say %+v of %d steps", seed, err, in, len(rep.Plan.Steps))
		}
		// A load balancer's deletion takes its VIP port with it (Octavia
		// does, the fake too): such a port goes without a step of its own.
		claimed, vipOf := map[string]bool{}, map[string]bool{}
		for _, st := range rep.Result.Steps {
			if st.Outcome == OutcomeDeleted || st.Accepted {
				claimed[string(st.Type)+"/"+st.ID] = true
			}
		}
		for _, st := range rep.Plan.Steps {
			if st.Type == LoadBalancer && claimed[st.Key()] {
				vipOf[st.PortID], vipOf["lb-"+st.ID] = true, true
			}
		}
		fake.mu.Lock()
		goneOrGoing := 0
		for k := range before {
			_, there := fake.res[k]
			_, pending := fake.deleting[k]
			if there && !pending {
				continue
			}
			if r := sc.seeder.byKey(k); !claimed[k] && r != nil && r.Type == Port && (vipOf[r.ID] || vipOf[r.DeviceID]) {
				continue // went with its load balancer
			}
			goneOrGoing++
		}
		fake.mu.Unlock()
		if goneOrGoing < in.Deleted+in.Accepted || goneOrGoing > in.Deleted+in.Accepted+in.CutOff {
			t.Fatalf("seed %d: the cloud removed or is removing %d, the run says %s", seed, goneOrGoing, in)
		}
		accepted += in.Accepted
	}
	if accepted == 0 {
		t.Fatal("no run was interrupted with an accepted deletion in flight: the test proves nothing")
	}
}

// hangingDeletes is a backend whose deletion calls stay under way until
// their context is cancelled (a cloud that does not answer), counting
// the calls made.
type hangingDeletes struct {
	calls    atomic.Int32
	underWay chan struct{}
}

func (h *hangingDeletes) List(context.Context, Type) ([]Resource, error) { return nil, nil }
func (h *hangingDeletes) Exists(context.Context, *Resource) (bool, string, error) {
	return false, "", nil
}
func (h *hangingDeletes) Async(Type) bool { return false }
func (h *hangingDeletes) Delete(ctx context.Context, _ *Resource) error {
	h.calls.Add(1)
	h.underWay <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// TestInterruptionCountsOnlyCallsUnderWayAsCutOff: interrupted while
// Parallelism deletion calls are under way, a run reports exactly those as
// cut off (they may have been applied) and every other step as not
// started, and it makes no call after the interruption (it used to take
// each queued step for a cut-off call).
func TestInterruptionCountsOnlyCallsUnderWayAsCutOff(t *testing.T) {
	const parallelism, steps = 2, 10
	plan := &Plan{}
	for i := range steps {
		plan.Steps = append(plan.Steps, &Step{Owned: Owned{Resource: Resource{Type: SecurityGroup, ID: fmt.Sprintf("sg-%d", i), Name: fmt.Sprintf("lab-c%d-cilium", i)}, Cluster: fmt.Sprintf("c%d", i)}})
	}
	h := &hangingDeletes{underWay: make(chan struct{}, steps)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for range parallelism {
			<-h.underWay
		}
		cancel()
	}()
	res := Execute(ctx, h, plan, ExecOptions{Parallelism: parallelism, PollInterval: time.Millisecond, DeleteTimeout: time.Minute, ProgressEvery: time.Hour})
	in := res.Interrupted()
	want := Interruption{CutOff: parallelism, NotRun: steps - parallelism}
	if in != want {
		t.Errorf("interrupted with %d calls under way: %s, want %s", parallelism, in, want)
	}
	if n := h.calls.Load(); n != parallelism {
		t.Errorf("%d deletion calls made, want %d: none after the interruption", n, parallelism)
	}
}
