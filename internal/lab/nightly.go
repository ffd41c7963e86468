package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/capilab/capilab/internal/cleanup"
	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/command"
	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/pipeline"
	"github.com/capilab/capilab/internal/report"
	"github.com/capilab/capilab/internal/workload"
)

// Exit codes of make nightly beyond the common ones: an infrastructure
// failure is ExitFailure (1), leaks ExitLeaks (3).
const ExitTestsFailed = 5 // every phase worked, tests failed

// nightly is one run of make nightly.
type nightly struct {
	r       *Run
	dir     string
	names   []string
	mgr     *workload.Manager
	cloud   *cloud.Cloud
	specs   map[string]workload.Spec
	created map[string]*workload.Result
	mu      sync.Mutex
}

// Nightly is `make nightly`: the management cluster (created or reused),
// node image and credentials, CLUSTERS (default: CLUSTER) in parallel, the
// check (SONOMODE) on each, then always: the clusters deleted, fullclean of
// their leftovers, and the leak assertion. Everything goes into
// ARTIFACTS_DIR/nightly/<run>/: run.json, junit.xml, summary.md,
// index.html, capilab's JSON log, controller logs, a describe tree per
// cluster, OpenStack dumps of what the lab owned after each phase, the
// check's results.
func Nightly(ctx context.Context, r *Run) error {
	if err := r.useLocalLabByDefault(ctx); err != nil {
		return err
	}
	start := time.Now()
	id := pipeline.RunID(start)
	root := filepath.Join(r.Path(r.Settings.ArtifactsDir), "nightly")
	n := &nightly{r: r, dir: filepath.Join(root, id), names: r.ClusterNames(),
		specs: map[string]workload.Spec{}, created: map[string]*workload.Result{}}
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(n.dir, "capilab.log.json"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	jsonLog, err := logging.New(logFile, logging.Options{Format: "json", Level: "debug", Secrets: r.Secrets})
	if err != nil {
		return err
	}
	r.Log = slog.New(slog.NewMultiHandler(r.Log.Handler(), jsonLog.Handler()))
	r.Log.Info("nightly run", "id", id, "dir", n.dir, "clusters", strings.Join(n.names, ","), "mode", r.Settings.Sonomode, "cloud", r.Settings.Cloud)

	s := r.Settings
	createBudget := s.WaitCluster + s.WaitControlPlane + s.WaitWorkers + s.WaitAddons + 10*time.Minute
	steps := []pipeline.Step{
		{Name: "management-cluster", Timeout: s.WaitControllers + 60*time.Minute, Run: n.management},
		{Name: "image-and-credentials", Timeout: s.ImageTimeout + 10*time.Minute, Run: n.imageAndCredentials},
		{Name: "create-clusters", Timeout: createBudget, Run: n.createClusters},
		{Name: "check", Timeout: r.checkTimeout() + 30*time.Minute, Run: n.check},
		{Name: "collect-logs", Always: true, Timeout: 10 * time.Minute, Run: n.collect},
		{Name: "delete-clusters", Always: true, Timeout: s.WaitDeleteCluster + 20*time.Minute, Run: n.deleteClusters},
		{Name: "fullclean", Always: true, Timeout: 30 * time.Minute, Run: n.fullclean},
		{Name: "leakcheck", Always: true, Timeout: 10 * time.Minute, Run: n.leakcheck},
	}
	for i := range steps {
		steps[i].Run = n.withDump(steps[i].Name, steps[i].Run)
	}
	phases := pipeline.Execute(ctx, r.Log, steps)
	rec := &pipeline.Record{ID: id, Name: "nightly", Start: start, End: time.Now(), Phases: phases, Clusters: n.names,
		Verdict: pipeline.VerdictOf(phases), Versions: r.versionFacts(), Settings: r.redactedSettings(), Host: hostFacts(ctx)}
	rec.ExitCode = exitCodeOf(rec.Verdict)
	prev, err := pipeline.Previous(root, id)
	if err != nil {
		r.Log.Warn("previous run not read", "error", err)
	}
	rec.Comparison = pipeline.Compare(prev, rec)
	if err := rec.Write(n.dir); err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(root, "latest"))
	_ = os.Symlink(id, filepath.Join(root, "latest"))
	fmt.Fprintf(r.Stdout, "nightly %s: %s in %s\n", id, rec.Verdict, rec.End.Sub(rec.Start).Round(time.Second))
	for _, p := range phases {
		fmt.Fprintf(r.Stdout, "  %-22s %-13s %s\n", p.Name, p.Outcome, p.Duration().Round(time.Second))
	}
	fmt.Fprintf(r.Stdout, "report: %s\nsummary: %s\njunit: %s\n", filepath.Join(n.dir, "index.html"), filepath.Join(n.dir, "summary.md"), filepath.Join(n.dir, "junit.xml"))
	if rec.ExitCode == 0 {
		return nil
	}
	return &ExitError{Code: rec.ExitCode, Err: fmt.Errorf("nightly %s: %s (%s)", id, rec.Verdict, filepath.Join(n.dir, "summary.md"))}
}

// StopGrace is how long a target may take to stop after an interrupt
// before the process exits anyway: the nightly run deletes its clusters
// and cleans up after Ctrl-C, which takes minutes; others stop at once.
func StopGrace(target string, normal time.Duration) time.Duration {
	if target == "nightly:run" {
		return 60 * time.Minute
	}
	if strings.HasPrefix(target, "check:") {
		// an interrupted check still removes sonobuoy from the cluster
		// (bounded by conformance's cleanup bound) after a short retrieval
		return 12 * time.Minute
	}
	return normal
}

func exitCodeOf(v pipeline.Verdict) int {
	switch v {
	case pipeline.VerdictPassed:
		return 0
	case pipeline.VerdictTestsFailed:
		return ExitTestsFailed
	case pipeline.VerdictLeaks:
		return ExitLeaks
	}
	return ExitFailure
}

// withDump writes, after the phase, what the lab owns on the cloud.
func (n *nightly) withDump(name string, run func(context.Context, *pipeline.Phase) error) func(context.Context, *pipeline.Phase) error {
	return func(ctx context.Context, p *pipeline.Phase) error {
		err := run(ctx, p)
		if n.cloud == nil {
			return err
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		path := filepath.Join(n.dir, "openstack", "after-"+name+".json")
		if derr := n.dumpOwned(dctx, path); derr != nil {
			p.Note("OpenStack dump failed: %v", derr)
		} else {
			p.AddArtifact("what the lab owned on "+n.cloud.Name+" afterwards", rel(n.dir, path))
		}
		return err
	}
}

func rel(dir, path string) string {
	if r, err := filepath.Rel(dir, path); err == nil {
		return r
	}
	return path
}

func (n *nightly) dumpOwned(ctx context.Context, path string) error {
	backend, err := cleanup.NewOpenStack(n.cloud)
	if err != nil {
		return err
	}
	recorded, _ := n.r.State().Clusters()
	rep, err := cleanup.Check(ctx, backend, cleanup.Options{Prefix: n.r.Settings.Prefix, Log: logging.Discard(),
		Filter: cleanup.Filter{Now: time.Now()}, Sources: cleanup.ClusterSources{Recorded: recorded}})
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func (n *nightly) management(ctx context.Context, p *pipeline.Phase) error {
	r := n.r
	c, err := r.Cloud(ctx)
	if err != nil {
		return err
	}
	n.cloud = c
	m, err := r.MgmtManager(ctx, true)
	if err != nil {
		return err
	}
	img, err := r.nodeImage(ctx)
	if err != nil {
		return err
	}
	if kh, ok := m.Host.(interface{ SetImage(string) }); ok {
		kh.SetImage(img)
	}
	source, why := r.ProviderSource(ctx)
	m.Source = source
	p.Note("provider source %s: %s", source, why)
	if source == "local" {
		m.Issuer = localIssuer()
	}
	res, err := m.Create(ctx)
	if err != nil {
		return err
	}
	if len(res.Actions) == 0 {
		p.Note("reused the management cluster %s (nothing to do)", m.Name)
	}
	for _, a := range res.Actions {
		p.Note("%s", a)
	}
	for _, v := range res.Versions {
		p.AddCase(report.Case{Name: "provider " + v.Label + " " + v.Version, Status: report.Passed})
	}
	n.mgr, _, err = r.WorkloadManager(ctx)
	return err
}

func (n *nightly) imageAndCredentials(ctx context.Context, p *pipeline.Phase) error {
	if err := n.r.ensureNodeImage(ctx, n.cloud); err != nil {
		return err
	}
	specs, err := n.r.ClusterSpecs(ctx, n.mgr)
	if err != nil {
		return err
	}
	for _, s := range specs {
		n.specs[s.Name] = s
	}
	return n.mgr.Preflight(ctx, specs)
}

func (n *nightly) createClusters(ctx context.Context, p *pipeline.Phase) error {
	var wg sync.WaitGroup
	errs := make([]error, len(n.names))
	for i, name := range n.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := n.mgr.Create(ctx, n.specs[name])
			n.mu.Lock()
			n.created[name] = res
			n.mu.Unlock()
			var total time.Duration
			var phases []string
			for _, ph := range res.Phases {
				total += ph.Elapsed
				phases = append(phases, fmt.Sprintf("%s %s", ph.Name, ph.Elapsed.Round(time.Second)))
			}
			c := report.Case{Suite: "create-clusters/" + name, Name: "create cluster " + name, Duration: total, Status: report.Passed, Output: strings.Join(phases, "\n")}
			if res.Err != nil {
				c.Status, c.Message, c.Detail = report.Failed, oneLine(res.Err.Error()), res.Err.Error()
				errs[i] = res.Err
			}
			p.AddCase(c)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func (n *nightly) check(ctx context.Context, p *pipeline.Phase) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed, broken := 0, []error{}
	for _, name := range n.names {
		res := n.created[name]
		if res == nil || res.Err != nil || res.Kubeconfig == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := filepath.Join(n.dir, "check", name)
			rep, err := n.r.CheckCluster(ctx, n.r.Settings.Sonomode, res.Kubeconfig, name, dir)
			mu.Lock()
			defer mu.Unlock()
			if rep != nil {
				for _, c := range rep.Cases {
					c.Suite = "check/" + name + "/" + c.Suite
					if c.Status == report.Skipped {
						continue // thousands of specs outside the mode's focus
					}
					p.AddCase(c)
				}
				for _, a := range rep.Artifacts {
					p.AddArtifact(name+": "+a.Name, rel(n.dir, a.Path))
				}
				if rep.Outcome != report.OutcomePassed {
					failed++
					p.Note("cluster %s: %s", name, rep.Summary())
				}
			}
			if err != nil {
				broken = append(broken, fmt.Errorf("cluster %s: %w", name, err))
			}
		}()
	}
	wg.Wait()
	if len(broken) > 0 {
		return errors.Join(broken...)
	}
	if failed > 0 {
		return fmt.Errorf("the check failed on %d cluster(s): %w", failed, pipeline.ErrTestsFailed)
	}
	return nil
}

// collect writes the controllers' logs, events and a describe tree per
// cluster, while the clusters still exist.
func (n *nightly) collect(ctx context.Context, p *pipeline.Phase) error {
	if n.mgr == nil {
		return nil
	}
	mgmt := *n.mgr.Mgmt
	mgmt.Artifacts = filepath.Join(n.dir, "logs")
	dir, err := mgmt.Dump(ctx, "management-cluster", []string{"capi-system", "capi-kubeadm-bootstrap-system", "capi-kubeadm-control-plane-system", "capo-system", "orc-system", "capilab-certissuer"})
	if err != nil {
		return err
	}
	p.AddArtifact("management cluster: controller logs, events, Cluster API objects", rel(n.dir, dir))
	for _, name := range n.names {
		s, ok := n.specs[name]
		if !ok {
			continue
		}
		tree, err := workload.Describe(ctx, mgmt.Kubeconfig, mgmt.Context, s.Namespace, name)
		if err != nil {
			p.Note("describe %s: %v", name, err)
			continue
		}
		path := filepath.Join(n.dir, "clusters", name, "describe.txt")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(tree), 0o644); err != nil {
			return err
		}
		p.AddArtifact(name+": describe cluster", rel(n.dir, path))
	}
	return nil
}

func (n *nightly) deleteClusters(ctx context.Context, p *pipeline.Phase) error {
	if n.mgr == nil {
		p.Note("no management cluster: nothing to delete through it")
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(n.names))
	for i, name := range n.names {
		s, ok := n.specs[name]
		if !ok {
			s = workload.Spec{Name: name, Namespace: name, Prefix: n.r.Settings.Prefix}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := n.mgr.Delete(ctx, s)
			var total time.Duration
			for _, ph := range res.Phases {
				total += ph.Elapsed
			}
			c := report.Case{Suite: "delete-clusters/" + name, Name: "delete cluster " + name, Duration: total, Status: report.Passed}
			if res.InsideSkipped != "" {
				c.Output = "inside the cluster: skipped, " + res.InsideSkipped
			}
			if res.Err != nil {
				c.Status, c.Message, c.Detail = report.Failed, oneLine(res.Err.Error()), res.Err.Error()
				errs[i] = res.Err
			}
			p.AddCase(c)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// fullclean deletes what the night's clusters left (fullclean's rules,
// scoped to them); the lab's own resources live on for the next night.
func (n *nightly) fullclean(ctx context.Context, p *pipeline.Phase) error {
	if n.cloud == nil {
		return errors.New("no cloud connection")
	}
	backend, err := cleanup.NewOpenStack(n.cloud)
	if err != nil {
		return err
	}
	rep, err := cleanup.Clean(ctx, backend, n.cleanupOptions())
	if rep != nil {
		if data, jerr := json.MarshalIndent(rep, "", "  "); jerr == nil {
			path := filepath.Join(n.dir, "fullclean-report.json")
			if os.WriteFile(path, data, 0o644) == nil {
				p.AddArtifact("fullclean report", rel(n.dir, path))
			}
		}
		for _, o := range rep.Plan.Owned() {
			p.Note("deleted %s %s (%s): %s", o.Type, o.Name, o.Cluster, o.Reason)
		}
	}
	return err
}

func (n *nightly) cleanupOptions() cleanup.Options {
	s := n.r.Settings
	return cleanup.Options{Prefix: s.Prefix, Log: n.r.Log,
		Filter:  cleanup.Filter{Clusters: n.names, Now: time.Now()},
		Sources: cleanup.ClusterSources{Recorded: n.names},
		Exec:    cleanup.ExecOptions{Parallelism: s.Parallelism, DeleteTimeout: s.DeleteTimeout}}
}

// leakcheck asserts that nothing of the night's clusters is left.
func (n *nightly) leakcheck(ctx context.Context, p *pipeline.Phase) error {
	if n.cloud == nil {
		return errors.New("no cloud connection")
	}
	backend, err := cleanup.NewOpenStack(n.cloud)
	if err != nil {
		return err
	}
	rep, err := cleanup.Check(ctx, backend, n.cleanupOptions())
	if err != nil {
		return err
	}
	for _, o := range rep.Remaining {
		p.AddLeak(pipeline.Leak{Type: string(o.Type), Name: o.Name, ID: o.ID, Cluster: o.Cluster, Reason: o.Reason})
	}
	if len(rep.Remaining) > 0 {
		return fmt.Errorf("%d owned resource(s) of the night's clusters are left on cloud %s: %w", len(rep.Remaining), n.cloud.Name, pipeline.ErrLeaked)
	}
	for _, name := range n.names {
		if err := n.r.State().ForgetCluster(name); err != nil {
			return err
		}
	}
	p.AddCase(report.Case{Name: "no leaks of clusters " + strings.Join(n.names, ","), Status: report.Passed})
	return nil
}

// versionFacts are the pinned versions a run used.
func (r *Run) versionFacts() map[string]string {
	v := r.Loaded.Versions
	return map[string]string{
		"cluster-api": v.Management.ClusterAPI, "capo": v.Management.CAPO, "orc": v.Management.ORC,
		"management kubernetes": v.Management.Kubernetes, "kind node image": v.KindNode.Image(),
		"workload kubernetes": r.Settings.KubernetesVersion, "sonobuoy": v.Sonobuoy.Version,
	}
}

// redactedSettings are the effective settings as `make config` shows them.
func (r *Run) redactedSettings() map[string]string {
	out := map[string]string{}
	for _, k := range config.Knobs() {
		out[k.Key] = r.Secrets.Redact(k.Format(r.Settings))
	}
	return out
}

func hostFacts(ctx context.Context) map[string]string {
	h := map[string]string{"go": runtime.Version(), "cpus": fmt.Sprint(runtime.NumCPU())}
	if name, err := os.Hostname(); err == nil {
		h["hostname"] = name
	}
	if out, err := command.New("uname", "-sr").Output(ctx); err == nil {
		h["kernel"] = strings.TrimSpace(string(out))
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		if line, _, ok := strings.Cut(string(data), "\n"); ok {
			h["memory"] = strings.Join(strings.Fields(line)[1:], " ")
		}
	}
	if out, err := command.New("docker", "version", "--format", "{{.Server.Version}}").Output(ctx); err == nil {
		h["docker"] = strings.TrimSpace(string(out))
	}
	return h
}
