package cleanup

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/logging"
)

// Options configure a cleanup or a leak check.
type Options struct {
	Prefix  string
	Filter  Filter
	Sources ClusterSources
	DryRun  bool
	Exec    ExecOptions
	Log     *slog.Logger
	// Journal keeps plans across runs (see Journal); nil keeps none.
	Journal Journal
	// LeakScope says what Check counts (default ScopeClusters).
	LeakScope LeakScope
}

// LeakScope is the question a leak check answers.
type LeakScope string

const (
	// ScopeClusters: what outlives its cluster. Every owned resource of a
	// cluster of the lab counts, except those of clusters alive on the
	// management cluster; the lab's own resources (its credential, keypair,
	// management node and network) are the living lab, listed but not
	// counted. Nightly CI asks this after deleting its clusters.
	ScopeClusters LeakScope = "clusters"
	// ScopeLab: everything the lab owns, its own resources included: is the
	// lab gone?
	ScopeLab LeakScope = "lab"
)

// Report is everything a cleanup saw and did, for humans and for CI (JSON).
type Report struct {
	Lab        string      `json:"lab"`
	DryRun     bool        `json:"dry_run"`
	Clusters   []Cluster   `json:"clusters"`
	Selected   []string    `json:"selected_clusters,omitempty"`
	OlderThan  string      `json:"older_than,omitempty"`
	Discovered int         `json:"discovered"` // resources listed, owned or not
	Plan       *Plan       `json:"plan"`
	Result     *ExecResult `json:"result,omitempty"`
	Remaining  []Owned     `json:"remaining"`
	// Living are owned resources a leak check does not count (ScopeClusters):
	// the lab's own and those of clusters alive on the management cluster.
	Living    []Owned            `json:"living,omitempty"`
	LeakScope LeakScope          `json:"leak_scope,omitempty"`
	Notes     []string           `json:"notes,omitempty"`
	Deleted   map[Type]int       `json:"deleted_per_type,omitempty"`
	Seconds   map[string]float64 `json:"seconds"`
	// Filled in by the caller, which owns the HTTP client.
	APICalls    int64 `json:"api_calls"`
	HTTPRetries int64 `json:"http_retries"`
}

// Clean runs discover → plan → delete → verify. With DryRun it stops after
// the plan. The report says what remains; the caller decides the exit code.
func Clean(ctx context.Context, b Backend, opts Options) (*Report, error) {
	log := opts.Log
	if log == nil {
		log = logging.Discard()
	}
	opts.Exec.Log = log
	rep, lab, err := survey(ctx, b, opts, log)
	if err != nil {
		return rep, err
	}
	log.Info("plan: "+rep.Plan.Summary(), "kept", len(rep.Plan.Kept), "dry_run", opts.DryRun)
	if opts.DryRun || len(rep.Plan.Steps) == 0 {
		return rep, nil
	}
	if opts.Journal == nil {
		opts.Journal = &MemoryJournal{}
	}

	// Journal the plan before deleting anything, so that whatever stops
	// this run, the next one still knows these resources are the lab's.
	journal := lab.Journal
	if journal == nil {
		journal = map[string]Owned{}
	}
	for _, s := range rep.Plan.Steps {
		journal[s.Key()] = s.Owned
	}
	if err := opts.Journal.Save(journal); err != nil {
		return rep, err
	}

	step := logging.StartStep(log, fmt.Sprintf("deleting %d resource(s) with %d workers", len(rep.Plan.Steps), max(opts.Exec.Parallelism, 1)))
	start := time.Now()
	rep.Result = Execute(ctx, b, rep.Plan, opts.Exec)
	rep.Seconds["delete"] = time.Since(start).Seconds()
	rep.Deleted = map[Type]int{}
	for _, s := range rep.Result.Steps {
		if s.Outcome == OutcomeDeleted {
			rep.Deleted[s.Type]++
		}
	}
	step.Done(nil, "deleted", len(rep.Plan.Steps)-rep.Result.Failed(), "not_deleted", rep.Result.Failed())
	if ctx.Err() != nil {
		return rep, fmt.Errorf("fullclean interrupted; of %d planned deletion(s): %s; run it again to finish: %w",
			len(rep.Plan.Steps), rep.Result.Interrupted(), context.Cause(ctx))
	}

	// Verify with the same clusters as the plan: the credentials that
	// proved them are gone now.
	step = logging.StartStep(log, "verifying: discovering again")
	start = time.Now()
	resources, err := Discover(ctx, b, opts.Exec.Parallelism)
	if err != nil {
		step.Done(err)
		return rep, fmt.Errorf("verifying: %w", err)
	}
	lab.Journal = journal
	selected, _ := opts.Filter.Select(Classify(lab, resources))
	rep.Remaining = selected
	// Keep journaled what still exists; the rest is proven gone.
	exists := make(map[string]bool, len(resources))
	for _, r := range resources {
		exists[r.Key()] = true
	}
	for k := range journal {
		if !exists[k] {
			delete(journal, k)
		}
	}
	if err := opts.Journal.Save(journal); err != nil {
		return rep, err
	}
	rep.Seconds["verify"] = time.Since(start).Seconds()
	step.Done(nil, "remaining", len(rep.Remaining))
	return rep, nil
}

// Check is leakcheck: discovery and classification only. Remaining lists
// every owned resource the filter selects that the scope counts as a leak;
// Living the owned ones it does not (see LeakScope). With CLUSTERS the
// question is what of those clusters exists, alive or not.
func Check(ctx context.Context, b Backend, opts Options) (*Report, error) {
	log := opts.Log
	if log == nil {
		log = logging.Discard()
	}
	if opts.LeakScope == "" {
		opts.LeakScope = ScopeClusters
	}
	rep, _, err := survey(ctx, b, opts, log)
	if err != nil {
		return rep, err
	}
	rep.LeakScope = opts.LeakScope
	var owned []Owned
	for _, s := range rep.Plan.Steps {
		owned = append(owned, s.Owned)
	}
	for _, k := range rep.Plan.Kept {
		if k.Type == AppCred && strings.HasPrefix(k.Why, "resources it proves") {
			owned = append(owned, k.Owned)
		}
	}
	alive := map[string]bool{}
	for _, c := range opts.Sources.Management {
		alive[c] = true
	}
	rep.Remaining = []Owned{}
	for _, o := range owned {
		if opts.LeakScope == ScopeClusters && len(opts.Filter.Clusters) == 0 && (o.Cluster == LabOwner || alive[o.Cluster]) {
			rep.Living = append(rep.Living, o)
			continue
		}
		rep.Remaining = append(rep.Remaining, o)
	}
	SortOwned(rep.Remaining)
	SortOwned(rep.Living)
	return rep, nil
}

// survey discovers, finds the lab's clusters, classifies and plans.
func survey(ctx context.Context, b Backend, opts Options, log *slog.Logger) (*Report, Lab, error) {
	rep := &Report{Lab: opts.Prefix, DryRun: opts.DryRun, Selected: opts.Filter.Clusters, Seconds: map[string]float64{}, Remaining: []Owned{}}
	if opts.Filter.OlderThan > 0 {
		rep.OlderThan = opts.Filter.OlderThan.String()
	}
	step := logging.StartStep(log, "discovering resources (each type listed once)")
	start := time.Now()
	resources, err := Discover(ctx, b, opts.Exec.Parallelism)
	if err != nil {
		step.Done(err)
		return rep, Lab{}, err
	}
	rep.Discovered = len(resources)
	rep.Seconds["discover"] = time.Since(start).Seconds()
	step.Done(nil, "resources", len(resources))

	clusters, notes := DiscoverClusters(opts.Prefix, resources, opts.Sources)
	rep.Notes = append(rep.Notes, notes...)
	for _, n := range notes {
		log.Info(n)
	}
	names := make([]string, 0, len(clusters))
	for name := range clusters {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		rep.Clusters = append(rep.Clusters, clusters[name])
	}
	var unknown []string
	for _, c := range opts.Filter.Clusters {
		if _, ok := clusters[c]; !ok {
			unknown = append(unknown, c)
		}
	}
	if len(unknown) > 0 {
		return rep, Lab{}, fmt.Errorf("cluster(s) %s: not clusters of lab %q (no application credential %s-<cluster>-appcred, no state record, no Cluster object); nothing is deleted for a cluster the lab cannot prove it made (lab clusters: %s)",
			strings.Join(unknown, ", "), opts.Prefix, opts.Prefix, listOrNone(names))
	}
	log.Info("lab clusters", "prefix", opts.Prefix, "clusters", listOrNone(names))
	lab := Lab{Prefix: opts.Prefix, Clusters: clusters}
	if opts.Journal != nil {
		j, err := opts.Journal.Load()
		if err != nil {
			return rep, Lab{}, err
		}
		lab.Journal = j
	}
	owned := Classify(lab, resources)
	rep.Plan = MakePlan(owned, opts.Filter)
	return rep, lab, nil
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(slices.Clone(names), ", ")
}
