package cleanup

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"
)

var fastExec = ExecOptions{Parallelism: 4, PollInterval: time.Microsecond, DeleteTimeout: 5 * time.Second, ProgressEvery: time.Hour}

// TestPlanOrderAvoidsConflicts: a plan that orders deletions right never
// runs into the cloud's "in use" refusals.
func TestPlanOrderAvoidsConflicts(t *testing.T) {
	for seed := range uint64(200) {
		sc := genScenario(seed + 10000)
		fake := newFakeCloud(seed, sc.seeder.resources())
		rep, err := Clean(context.Background(), fake, Options{Prefix: sc.prefix, Filter: Filter{Clusters: sc.filter}, Sources: ClusterSources{Recorded: sc.recorded}, Exec: fastExec})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Result != nil && rep.Result.BlockedRetries != 0 {
			for _, s := range rep.Result.Steps {
				if s.Attempts > 1 {
					t.Errorf("seed %d: %s %s needed %d attempts", seed, s.Type, s.ID, s.Attempts)
				}
			}
			t.Fatalf("seed %d: %d deletion(s) refused as in use: the plan's order is wrong", seed, rep.Result.BlockedRetries)
		}
	}
}

func TestDryRunDeletesNothing(t *testing.T) {
	sc := genScenario(1)
	fake := newFakeCloud(1, sc.seeder.resources())
	rep, err := Clean(context.Background(), fake, Options{Prefix: sc.prefix, Sources: ClusterSources{Recorded: sc.recorded}, DryRun: true, Exec: fastExec})
	if err != nil {
		t.Fatal(err)
	}
	if len(fake.deleted) != 0 || rep.Result != nil {
		t.Fatalf("dry run deleted %v", fake.deleted)
	}
	if len(rep.Plan.Steps) == 0 || !rep.DryRun {
		t.Fatal("dry run must still plan")
	}
	var b strings.Builder
	if err := WriteTable(&b, rep.Plan.Owned()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "TYPE") || strings.Count(b.String(), "\n") != len(rep.Plan.Steps)+1 {
		t.Fatalf("table:\n%s", b.String())
	}
	if _, err := rep.JSON(); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownClusterIsRefused(t *testing.T) {
	sc := genScenario(2)
	fake := newFakeCloud(2, sc.seeder.resources())
	_, err := Clean(context.Background(), fake, Options{Prefix: sc.prefix, Filter: Filter{Clusters: []string{"nosuch"}}, Exec: fastExec})
	if err == nil || !strings.Contains(err.Error(), "nosuch") || !strings.Contains(err.Error(), "cannot prove") {
		t.Fatalf("got %v", err)
	}
	if len(fake.deleted) != 0 {
		t.Fatal("deleted something for an unknown cluster")
	}
}

func TestOlderThan(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	old, young := now.Add(-48*time.Hour), now.Add(-time.Hour)
	res := []Resource{
		{Type: Network, ID: "n-old", Name: "k8s-clusterapi-cluster-a-a", CreatedAt: old},
		{Type: Port, ID: "p-young", NetworkID: "n-old", CreatedAt: young},
		{Type: ServerGroup, ID: "sg-noage", Name: "capi-a-worker"},
		{Type: FloatingIP, ID: "f-old", Description: "Created by cluster-api-provider-openstack cluster a-a", CreatedAt: old},
		{Type: AppCred, ID: "ac", Name: "capi-a-appcred"},
	}
	owned := Classify(labWith("capi", "a"), res)
	p := MakePlan(owned, Filter{OlderThan: 24 * time.Hour, Now: now})
	var steps []string
	for _, s := range p.Steps {
		steps = append(steps, s.ID)
	}
	if strings.Join(steps, ",") != "f-old,n-old" {
		t.Fatalf("steps %v", steps)
	}
	why := map[string]string{}
	for _, k := range p.Kept {
		why[k.ID] = k.Why
	}
	if !strings.Contains(why["p-young"], "less than older_than") || !strings.Contains(why["sg-noage"], "does not report its age") || why["ac"] == "" {
		t.Fatalf("kept: %v", why)
	}
}

// TestOlderThanAgelessFollowTheirOwner: resources whose age the cloud does
// not report (server groups, keypairs, credentials without a recorded
// creation time) go with their cluster when nothing of it is younger than
// older_than, so fullclean OLDER_THAN=24h can leave nothing; they stay
// with a cluster (for the lab's own: a lab) that has younger resources.
func TestOlderThanAgelessFollowTheirOwner(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	old, young := now.Add(-48*time.Hour), now.Add(-time.Hour)
	res := []Resource{
		{Type: Network, ID: "a-net", Name: "k8s-clusterapi-cluster-a-a", CreatedAt: old},
		{Type: ServerGroup, ID: "a-sg", Name: "capi-a-worker"},
		{Type: AppCred, ID: "a-ac", Name: "capi-a-appcred"},
		{Type: AppCred, ID: "b-ac", Name: "capi-b-appcred", Description: "capilab lab=capi cluster=b created=" + young.Format(time.RFC3339), CreatedAt: young},
		{Type: ServerGroup, ID: "b-sg", Name: "capi-b-controller"},
		{Type: Keypair, ID: "capi-keypair", Name: "capi-keypair"},
		{Type: AppCred, ID: "lab-ac", Name: "capi-appcred"},
	}
	plan := func(res []Resource) (steps []string, kept map[string]string) {
		p := MakePlan(Classify(labWith("capi", "a", "b"), res), Filter{OlderThan: 24 * time.Hour, Now: now})
		kept = map[string]string{}
		for _, s := range p.Steps {
			steps = append(steps, s.ID)
		}
		for _, k := range p.Kept {
			kept[k.ID] = k.Why
		}
		sort.Strings(steps)
		return steps, kept
	}
	steps, kept := plan(res)
	if strings.Join(steps, ",") != "a-ac,a-net,a-sg" {
		t.Errorf("with cluster b young: steps %v, want all of cluster a", steps)
	}
	for _, id := range []string{"b-ac", "b-sg", "capi-keypair", "lab-ac"} {
		if kept[id] == "" {
			t.Errorf("with cluster b young: %s not kept (kept: %v)", id, kept)
		}
	}
	if !strings.Contains(kept["b-sg"], "its cluster has resources younger") || !strings.Contains(kept["capi-keypair"], "its lab has resources younger") {
		t.Errorf("reasons: %v", kept)
	}
	// Without b's young credential, everything goes.
	steps, kept = plan(append(res[:3:3], res[4:]...))
	if len(kept) != 0 || strings.Join(steps, ",") != "a-ac,a-net,a-sg,b-sg,capi-keypair,lab-ac" {
		t.Errorf("a lab older than older_than: steps %v, kept %v; want everything deleted", steps, kept)
	}
}

// failingCloud refuses one resource for good.
type failingCloud struct {
	*fakeCloud
	failKey string
}

func (f *failingCloud) Delete(ctx context.Context, r *Resource) error {
	if r.Key() == f.failKey {
		return errors.New("HTTP 500: backend exploded")
	}
	return f.fakeCloud.Delete(ctx, r)
}

func TestFailureBlocksDependentsAndIsReported(t *testing.T) {
	res := []Resource{
		{Type: Network, ID: "n1", Name: "k8s-clusterapi-cluster-a-a"},
		{Type: Subnet, ID: "s1", Name: "k8s-clusterapi-cluster-a-a", NetworkID: "n1"},
		{Type: Port, ID: "p1", NetworkID: "n1", SubnetIDs: []string{"s1"}},
		{Type: SecurityGroup, ID: "g1", Name: "k8s-cluster-a-a-secgroup-worker"},
		{Type: AppCred, ID: "ac", Name: "capi-a-appcred"},
	}
	fc := &failingCloud{fakeCloud: newFakeCloud(1, res), failKey: "port/p1"}
	rep, err := Clean(context.Background(), fc, Options{Prefix: "capi", Exec: fastExec})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]StepResult{}
	for _, s := range rep.Result.Steps {
		out[s.ID] = s
	}
	if out["p1"].Outcome != OutcomeFailed || !strings.Contains(out["p1"].Error, "exploded") {
		t.Fatalf("p1: %+v", out["p1"])
	}
	for _, id := range []string{"s1", "n1", "ac"} {
		if out[id].Outcome != OutcomeBlocked {
			t.Fatalf("%s: %+v, want not attempted", id, out[id])
		}
	}
	if out["g1"].Outcome != OutcomeDeleted {
		t.Fatalf("independent g1: %+v", out["g1"])
	}
	if len(rep.Remaining) != 4 { // network, subnet, port, credential
		t.Fatalf("remaining %d: %+v", len(rep.Remaining), rep.Remaining)
	}
	var b strings.Builder
	_ = WriteSummary(&b, rep)
	if !strings.Contains(b.String(), "failed: port") || !strings.Contains(b.String(), "remaining owned resources: 4") {
		t.Fatalf("summary:\n%s", b.String())
	}
}

func TestBlockedUntilTimeout(t *testing.T) {
	// A foreign port keeps an owned security group in use: the delete is
	// retried until its bound, then reported with the cloud's reason.
	res := []Resource{
		{Type: SecurityGroup, ID: "g1", Name: "k8s-cluster-a-a-secgroup-worker"},
		{Type: Port, ID: "foreign", NetworkID: "elsewhere", SecurityGroupIDs: []string{"g1"}},
		{Type: AppCred, ID: "ac", Name: "capi-a-appcred"},
	}
	fake := newFakeCloud(1, res)
	opts := fastExec
	opts.DeleteTimeout = 50 * time.Millisecond
	opts.PollInterval = 5 * time.Millisecond
	rep, err := Clean(context.Background(), fake, Options{Prefix: "capi", Exec: opts})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Result.Steps
	if r[0].ID != "g1" || r[0].Outcome != OutcomeFailed || !strings.Contains(r[0].Error, "still in use") || r[0].Attempts < 2 {
		t.Fatalf("%+v", r[0])
	}
	if !fake.has("port/foreign") {
		t.Fatal("foreign port deleted")
	}
}

// TestCheckScopes: LEAK_SCOPE=lab counts everything the lab owns; the
// default counts what outlives its cluster — the lab's own resources and
// those of clusters alive on the management cluster are living, not leaks.
func TestCheckScopes(t *testing.T) {
	sc := genScenario(3)
	fake := newFakeCloud(3, sc.seeder.resources())
	labOwn, byCluster := 0, map[string]int{}
	for key := range sc.seeder.ours {
		if o := sc.seeder.owner[key]; o == LabOwner {
			labOwn++
		} else {
			byCluster[o]++
		}
	}
	if labOwn == 0 || len(byCluster) == 0 {
		t.Fatalf("scenario has %d lab resources and clusters %v: the test proves nothing", labOwn, byCluster)
	}
	var alive string
	for c := range byCluster {
		alive = c
		break
	}
	all := len(sc.seeder.ours)
	for _, tc := range []struct {
		name          string
		scope         LeakScope
		mgmt          []string
		leaks, living int
	}{
		{"lab", ScopeLab, nil, all, 0},
		{"clusters (default)", "", nil, all - labOwn, labOwn},
		{"clusters, one alive", ScopeClusters, []string{alive}, all - labOwn - byCluster[alive], labOwn + byCluster[alive]},
	} {
		rep, err := Check(context.Background(), fake, Options{Prefix: sc.prefix, LeakScope: tc.scope, Sources: ClusterSources{Recorded: sc.recorded, Management: tc.mgmt}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Remaining) != tc.leaks || len(rep.Living) != tc.living || len(fake.deleted) != 0 {
			t.Errorf("%s: %d leaks, %d living (deleted %d); want %d and %d", tc.name, len(rep.Remaining), len(rep.Living), len(fake.deleted), tc.leaks, tc.living)
		}
		for _, o := range rep.Remaining {
			if tc.scope != ScopeLab && (o.Cluster == LabOwner || o.Cluster == alive && tc.mgmt != nil) {
				t.Errorf("%s: %s counted as a leak", tc.name, o.Label())
			}
		}
	}
}

func TestDiscoveryErrorStops(t *testing.T) {
	fake := newFakeCloud(1, nil)
	fake.listError = errListBoom
	_, err := Clean(context.Background(), fake, Options{Prefix: "capi", Exec: fastExec})
	if !errors.Is(err, errListBoom) {
		t.Fatalf("got %v", err)
	}
}

func TestFileJournal(t *testing.T) {
	j := FileJournal(t.TempDir() + "/j.json")
	if m, err := j.Load(); err != nil || len(m) != 0 {
		t.Fatalf("%v %v", m, err)
	}
	o := Owned{Resource: Resource{Type: Volume, ID: "v1"}, Cluster: "a", Rule: "r"}
	if err := j.Save(map[string]Owned{o.Key(): o}); err != nil {
		t.Fatal(err)
	}
	m, err := j.Load()
	if err != nil || m["volume/v1"].Cluster != "a" {
		t.Fatalf("%v %v", m, err)
	}
	if err := j.Save(nil); err != nil {
		t.Fatal(err)
	}
	if m, _ := j.Load(); len(m) != 0 {
		t.Fatal("empty journal must remove the file")
	}
}
