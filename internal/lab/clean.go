package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/appcred"
	"github.com/capilab/capilab/internal/cleanup"
	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/state"
)

// Path resolves a settings path (state_dir, artifacts_dir) against the
// working directory.
func (r *Run) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.Dir, p)
}

// State is the lab's local state directory.
func (r *Run) State() state.Dir { return state.Dir(r.Path(r.Settings.StateDir)) }

// WriteArtifact writes a JSON artifact (reports for CI) and returns its path.
func (r *Run) WriteArtifact(name string, data []byte) (string, error) {
	dir := r.Path(r.Settings.ArtifactsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("artifacts directory %s: %w", dir, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	return p, nil
}

// cleanup connects and prepares what fullclean and leakcheck share.
func (r *Run) cleanup(ctx context.Context) (*cloud.Cloud, cleanup.Backend, cleanup.Options, error) {
	s := r.Settings
	recorded, err := r.State().Clusters()
	if err != nil {
		return nil, nil, cleanup.Options{}, err
	}
	c, err := r.Cloud(ctx)
	if err != nil {
		return nil, nil, cleanup.Options{}, err
	}
	backend, err := cleanup.NewOpenStack(c)
	if err != nil {
		return nil, nil, cleanup.Options{}, err
	}
	ns := map[string]string{}
	if s.Namespace != "" {
		ns[s.Cluster] = s.Namespace
	}
	managed := r.managementClusters(ctx, ns)
	return c, backend, cleanup.Options{
		Prefix:    s.Prefix,
		Filter:    cleanup.Filter{Clusters: s.Clusters, OlderThan: s.OlderThan, Now: time.Now()},
		Sources:   cleanup.ClusterSources{Recorded: recorded, Management: managed, Namespaces: ns},
		DryRun:    s.DryRun,
		Exec:      cleanup.ExecOptions{Parallelism: s.Parallelism, DeleteTimeout: s.DeleteTimeout},
		Log:       r.Log,
		Journal:   cleanup.FileJournal(filepath.Join(string(r.State()), "fullclean-journal.json")),
		LeakScope: cleanup.LeakScope(s.LeakScope),
	}, nil
}

// CleanFull is fullclean: discover every owned resource of the lab (or of
// CLUSTERS), delete in dependency order, verify. DRY_RUN=1 prints and
// records the plan only. Exit code 3 when owned resources remain.
func CleanFull(ctx context.Context, r *Run) error {
	c, backend, opts, err := r.cleanup(ctx)
	if err != nil {
		return err
	}
	rep, err := cleanup.Clean(ctx, backend, opts)
	if ferr := r.forgetRevoked(rep); ferr != nil {
		err = errors.Join(err, ferr)
	}
	if rep != nil {
		rep.APICalls, rep.HTTPRetries = c.Stats.Requests(), c.Stats.Retries()
		name := "fullclean-report.json"
		if opts.DryRun {
			name = "fullclean-plan.json"
		}
		if data, jerr := rep.JSON(); jerr == nil {
			if p, werr := r.WriteArtifact(name, data); werr == nil {
				r.Log.Info("report written", "path", p)
			} else {
				r.Log.Warn("could not write the report", "error", werr)
			}
		}
	}
	if err != nil {
		return err
	}
	if opts.DryRun {
		fmt.Fprintf(r.Stdout, "fullclean dry run for lab %s: %s\n", opts.Prefix, rep.Plan.Summary())
		if err := cleanup.WriteTable(r.Stdout, rep.Plan.Owned()); err != nil {
			return err
		}
		return cleanup.WriteKept(r.Stdout, rep.Plan.Kept)
	}
	if err := cleanup.WriteSummary(r.Stdout, rep); err != nil {
		return err
	}
	if len(rep.Remaining) > 0 {
		fmt.Fprintln(r.Stdout, "still owned after fullclean:")
		_ = cleanup.WriteTable(r.Stdout, rep.Remaining)
		return &ExitError{Code: ExitLeaks, Err: fmt.Errorf("fullclean: %d owned resource(s) of lab %s remain on cloud %s (listed above)", len(rep.Remaining), opts.Prefix, c.Name)}
	}
	// Nothing owned is left of the selected clusters: their local records
	// have served as evidence and can go.
	for _, cl := range rep.Clusters {
		if len(opts.Filter.Clusters) > 0 && !slices.Contains(opts.Filter.Clusters, cl.Name) {
			continue
		}
		if opts.Filter.OlderThan > 0 {
			continue // younger resources may remain
		}
		if err := r.State().ForgetCluster(cl.Name); err != nil {
			return err
		}
	}
	return nil
}

// forgetRevoked keeps the state true after fullclean revoked credentials:
// their clouds.yaml entries, cloud.conf, cached tokens and (then empty)
// cluster records go, as appcred:delete removes them.
func (r *Run) forgetRevoked(rep *cleanup.Report) error {
	if rep == nil || rep.Result == nil {
		return nil
	}
	for _, s := range rep.Result.Steps {
		if s.Type != cleanup.AppCred || s.Outcome != cleanup.OutcomeDeleted {
			continue
		}
		if err := appcred.ForgetRevoked(r.State(), r.cloudOptions().TokenCache, r.Settings.Prefix, s.Cluster, s.ID); err != nil {
			return fmt.Errorf("application credential %s was revoked, but its local entries are left: %w", s.Name, err)
		}
	}
	return nil
}

// CleanCheck is leakcheck: list owned resources without deleting; exit
// code 3 if there are any.
func CleanCheck(ctx context.Context, r *Run) error {
	c, backend, opts, err := r.cleanup(ctx)
	if err != nil {
		return err
	}
	rep, err := cleanup.Check(ctx, backend, opts)
	if err != nil {
		return err
	}
	rep.APICalls, rep.HTTPRetries = c.Stats.Requests(), c.Stats.Retries()
	if data, jerr := rep.JSON(); jerr == nil {
		if _, werr := r.WriteArtifact("leakcheck-report.json", data); werr != nil {
			r.Log.Warn("could not write the report", "error", werr)
		}
	}
	living := ""
	if len(rep.Living) > 0 {
		living = fmt.Sprintf("; %d living resource(s) of the lab itself or of clusters alive on the management cluster are not leaks (LEAK_SCOPE=lab counts them)", len(rep.Living))
	}
	if len(rep.Remaining) == 0 {
		fmt.Fprintf(r.Stdout, "leakcheck: no leaks of lab %s on cloud %s (scope %s; %d resources looked at, %d API calls)%s\n", opts.Prefix, c.Name, rep.LeakScope, rep.Discovered, rep.APICalls, living)
		if len(rep.Living) > 0 {
			fmt.Fprintln(r.Stdout, "living:")
			return cleanup.WriteTable(r.Stdout, rep.Living)
		}
		return nil
	}
	if err := cleanup.WriteTable(r.Stdout, rep.Remaining); err != nil {
		return err
	}
	if len(rep.Living) > 0 {
		fmt.Fprintln(r.Stdout, "living (not leaks):")
		if err := cleanup.WriteTable(r.Stdout, rep.Living); err != nil {
			return err
		}
	}
	return &ExitError{Code: ExitLeaks, Err: fmt.Errorf("leakcheck: %d owned resource(s) of lab %s exist on cloud %s (scope %s, listed above)%s", len(rep.Remaining), opts.Prefix, c.Name, rep.LeakScope, living)}
}

// managementClusters are the clusters the lab's management cluster has
// Cluster objects for (one source of proof that a cluster is the lab's),
// with their namespaces added to ns. No management cluster, or one that
// does not answer, proves nothing: fewer clusters are the lab's, never more.
func (r *Run) managementClusters(ctx context.Context, ns map[string]string) []string {
	m, err := r.MgmtManager(ctx, false)
	if err != nil {
		r.Log.Warn("management cluster not consulted", "error", err)
		return nil
	}
	if rec, err := m.ReadRecord(); err != nil || rec == nil {
		return nil
	}
	names, err := m.WorkloadClusters(ctx)
	if err != nil {
		r.Log.Warn("the management cluster does not answer: its Cluster objects prove nothing this run", "cluster", m.Name, "error", err)
		return nil
	}
	var out []string
	for _, n := range names {
		namespace, name, _ := strings.Cut(n, "/")
		out = append(out, name)
		if namespace != name {
			ns[name] = namespace
		}
	}
	return out
}
