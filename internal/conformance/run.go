package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vmware-tanzu/sonobuoy/pkg/client"
	sonoconfig "github.com/vmware-tanzu/sonobuoy/pkg/config"
	"github.com/vmware-tanzu/sonobuoy/pkg/dynamic"
	"github.com/vmware-tanzu/sonobuoy/pkg/plugin/aggregation"

	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/report"
	"github.com/capilab/capilab/internal/wait"
)

// Annotations of the aggregator pod that mark a run as capilab's.
const (
	AnnotationOwner   = "capilab.dev/check-owner"   // host and pid of the run
	AnnotationHost    = "capilab.dev/check-host"    // host name alone
	AnnotationStarted = "capilab.dev/check-started" // RFC 3339
	AnnotationMode    = "capilab.dev/check-mode"
	AnnotationProcess = "capilab.dev/check-process" // pid and start time of the run's process
)

// Files a run leaves in Options.Dir.
const (
	ManifestFile = "sonobuoy-manifest.yaml" // what was applied
	TarballFile  = "sonobuoy-results.tar.gz"
	ResultsDir   = "results" // the tarball, extracted
	PartialDir   = "partial" // what the aggregator had when the run was cut short
	PluginLog    = "e2e.log" // the e2e container's log, read directly from the pod
	WorkerLog    = "e2e-worker.log"
)

// Options of one run.
type Options struct {
	Log *slog.Logger
	// Dir receives the run's files (required).
	Dir string
	// LockDir holds the lock files that refuse a second run from this
	// machine against the same cluster ("": no local lock).
	LockDir string
	// Host names this machine in the ownership marker (default os.Hostname).
	Host string
	// Namespace of sonobuoy's aggregator (default sonobuoy).
	Namespace string
	// Poll is how often the run's status is read (default 10s).
	Poll time.Duration
	// ProgressEvery is how often a progress line is logged when nothing
	// changed (default 30s).
	ProgressEvery time.Duration
	// RetrieveTimeout bounds results retrieval, retries included (default 5m).
	RetrieveTimeout time.Duration
	// CleanupTimeout bounds the removal of sonobuoy's objects (default 10m).
	CleanupTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Poll <= 0 {
		o.Poll = 10 * time.Second
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 30 * time.Second
	}
	if o.RetrieveTimeout <= 0 {
		o.RetrieveTimeout = 5 * time.Minute
	}
	if o.CleanupTimeout <= 0 {
		o.CleanupTimeout = 10 * time.Minute
	}
}

// run is one run in progress.
type run struct {
	t      *Target
	plan   Plan
	opts   Options
	log    *slog.Logger
	sc     *client.SonobuoyClient
	ns     string
	start  time.Time
	rep    *report.Report
	follow *follower

	mu       sync.Mutex
	progress *report.Progress
	status   string   // last plugin status line
	failures []string // failures reported so far
	pulls    map[string]string
}

// Session is a cluster reserved for one run at a time: this machine's lock
// on the cluster is held and no sonobuoy run was active when it was taken.
// Close releases it.
type Session struct {
	t     *Target
	opts  Options
	lock  *localLock
	ns    string
	owner string
	proc  string
	sc    *client.SonobuoyClient
}

// Reserve takes the cluster for one run: this machine's lock (a second run
// from here is refused at once, with *BusyError), then sonobuoy's namespace
// must not exist — one being deleted is waited for (bounded); one whose
// aggregator was started by a process of this machine that no longer runs
// is removed (it is provably ours and its run is over); any other is a
// *BusyError saying who runs and since when.
func (t *Target) Reserve(ctx context.Context, opts Options) (*Session, error) {
	opts.defaults()
	s := &Session{t: t, opts: opts, ns: opts.Namespace}
	pid, start := os.Getpid(), processStart(os.Getpid())
	s.owner = fmt.Sprintf("%s pid %d", opts.Host, pid)
	s.proc = fmt.Sprintf("%d:%s", pid, start)
	helper, err := dynamic.NewAPIHelperFromRESTConfig(t.rest)
	if err != nil {
		return nil, fmt.Errorf("sonobuoy client: %w", err)
	}
	if s.sc, err = client.NewSonobuoyClient(t.rest, helper); err != nil {
		return nil, fmt.Errorf("sonobuoy client: %w", err)
	}
	if opts.LockDir != "" {
		if s.lock, err = acquireLocal(opts.LockDir, t.Facts.Server, t.Name, s.owner); err != nil {
			return nil, err
		}
	}
	if err := s.checkIdle(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the reservation.
func (s *Session) Close() {
	if s != nil {
		s.lock.release()
	}
}

// Run reserves the cluster, runs plan and releases it (see Session.Run).
func (t *Target) Run(ctx context.Context, plan Plan, opts Options) (*report.Report, error) {
	s, err := t.Reserve(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Run(ctx, plan)
}

// Run runs plan on the reserved cluster and returns its report. The report
// is nil only when nothing was started: the plan is invalid, or sonobuoy's
// objects could not be created. The error is non-nil in those cases and
// when sonobuoy's objects could not all be removed afterwards; the
// report's outcome stands on its own.
//
// The run's time bound is plan.Timeout. When it passes, or ctx ends
// (Ctrl-C), the run still keeps the plugin's log (followed while it runs),
// retrieves what the aggregator has (with retries), and removes sonobuoy's
// namespace, its cluster-wide RBAC and the e2e namespaces created during
// the run.
func (s *Session) Run(ctx context.Context, plan Plan) (*report.Report, error) {
	opts, t := s.opts, s.t
	if opts.Dir == "" {
		return nil, errors.New("conformance: Options.Dir is required")
	}
	plan.Namespace = s.ns
	gen, err := plan.GenConfig()
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("run dir: %w", err)
	}
	r := &run{t: t, plan: plan, opts: opts, log: opts.Log, ns: s.ns, sc: s.sc, pulls: map[string]string{}}
	r.start = time.Now()
	gen.Config.CustomAnnotations = map[string]string{
		AnnotationOwner: s.owner, AnnotationHost: opts.Host, AnnotationProcess: s.proc,
		AnnotationStarted: r.start.UTC().Format(time.RFC3339), AnnotationMode: string(plan.Mode),
	}
	manifest, err := r.sc.GenerateManifest(gen)
	if err != nil {
		return nil, fmt.Errorf("generate sonobuoy manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(opts.Dir, ManifestFile), manifest, 0o644); err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	name := "check " + string(plan.Mode)
	if plan.DryRun {
		name += " (dry run)"
	}
	r.rep = &report.Report{Name: name, Started: r.start, Timeout: plan.Timeout, Cluster: &t.Facts}
	for _, p := range plan.Properties() {
		r.rep.Properties = append(r.rep.Properties, report.Property{Name: p[0], Value: p[1]})
	}
	r.log.Info("starting sonobuoy", "mode", plan.Mode, "cluster", t.Name, "version", t.Facts.Version, "nodes", len(t.Facts.Nodes),
		"focus", plan.Selection.Focus, "skip", plan.Selection.Skip, "timeout", plan.Timeout)
	if err := r.sc.RunManifest(&client.RunConfig{GenConfig: *gen}, manifest); err != nil {
		cerr := cleanup(ctx, r.log, t, r.sc, r.ns, r.start, opts.CleanupTimeout)
		return nil, errors.Join(fmt.Errorf("start sonobuoy: %w", err), cerr)
	}

	logs := newFollower(t, r.ns, opts.Dir, r.log)
	r.follow = logs
	waitErr := r.watch(ctx)
	switch {
	case waitErr == nil:
	case wait.IsTimeout(waitErr):
		r.rep.Outcome = report.OutcomeTimeout
		r.rep.Reason = fmt.Sprintf("the run did not finish within its bound of %s", plan.Timeout)
	case ctx.Err() != nil:
		r.rep.Outcome = report.OutcomeInterrupted
		r.rep.Reason = "cancelled: " + context.Cause(ctx).Error()
	default:
		r.rep.Outcome = report.OutcomeError
		r.rep.Reason = waitErr.Error()
	}
	if r.rep.Outcome != "" {
		r.log.Warn("run cut short: saving what exists, then removing sonobuoy", "outcome", r.rep.Outcome, "reason", r.rep.Reason)
	}

	// Everything from here on runs even when ctx has ended; an interrupted
	// run keeps its retrieval short (the one who pressed Ctrl-C waits).
	after := context.WithoutCancel(ctx)
	if r.rep.Outcome == report.OutcomeInterrupted {
		r.opts.RetrieveTimeout = min(r.opts.RetrieveTimeout, time.Minute)
	}
	// A run cut short between two polls has containers nobody follows yet:
	// one last look, so their logs are kept too.
	pollCtx, cancelPoll := context.WithTimeout(after, 10*time.Second)
	logs.poll(pollCtx)
	cancelPoll()
	r.rep.Artifacts = append(r.rep.Artifacts, logs.stop()...)
	r.collect(after, waitErr == nil)
	cleanupErr := cleanup(after, r.log, t, r.sc, r.ns, r.start, opts.CleanupTimeout)
	if cleanupErr != nil {
		r.rep.Notes = append(r.rep.Notes, "cleanup: "+cleanupErr.Error())
	}
	r.mu.Lock()
	if r.progress != nil && r.rep.Outcome != "" {
		p := *r.progress // what is known of a run cut short
		r.rep.Progress = &p
	}
	for img, where := range r.pulls {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("image %s could not be pulled (%s): the tests using it cannot pass", img, where))
	}
	r.mu.Unlock()
	slices.Sort(r.rep.Notes)
	r.rep.Duration = time.Since(r.start)
	if plan.DryRun && r.rep.Outcome == "" {
		r.rep.Outcome = report.OutcomeListed // the e2e binary reports listed specs as passed
	}
	r.rep.Decide()
	return r.rep, cleanupErr
}

// checkIdle refuses a run while sonobuoy's namespace exists. A namespace
// being deleted is waited for; one whose aggregator was started by a
// process of this machine that no longer runs is removed.
func (s *Session) checkIdle(ctx context.Context) error {
	cs := s.t.clientset
	ns, err := cs.CoreV1().Namespaces().Get(ctx, s.ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", s.ns, err)
	}
	if ns.DeletionTimestamp == nil {
		pods, err := cs.CoreV1().Pods(s.ns).List(ctx, metav1.ListOptions{LabelSelector: "sonobuoy-component=aggregator"})
		if err != nil {
			return fmt.Errorf("read aggregator of namespace %s: %w", s.ns, err)
		}
		var a map[string]string
		if len(pods.Items) > 0 {
			a = pods.Items[0].Annotations
		}
		host, owner, started := a[AnnotationHost], a[AnnotationOwner], a[AnnotationStarted]
		if host == "" || host != s.opts.Host || processRuns(a[AnnotationProcess]) {
			who := "not started by capilab"
			if owner != "" {
				who = "started by capilab on " + owner + " at " + started
			}
			return &BusyError{Msg: fmt.Sprintf("a sonobuoy run is active on cluster %s: namespace %s exists since %s (%s); wait for it to finish, or delete the namespace if that run is gone",
				s.t.Name, s.ns, ns.CreationTimestamp.UTC().Format(time.RFC3339), who)}
		}
		s.opts.Log.Warn("removing what an earlier run of this machine left: its process no longer runs", "namespace", s.ns, "owner", owner, "started", started)
		since := ns.CreationTimestamp.Time
		if t, err := time.Parse(time.RFC3339, started); err == nil {
			since = t
		}
		return cleanup(ctx, s.opts.Log, s.t, s.sc, s.ns, since, s.opts.CleanupTimeout)
	}
	return wait.For(ctx, s.opts.Log, wait.Spec{
		What:    fmt.Sprintf("namespace %s of an earlier run to be deleted", s.ns),
		Timeout: s.opts.CleanupTimeout, Interval: 5 * time.Second,
	}, func(ctx context.Context) (bool, string, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, s.ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		return false, "terminating", err
	})
}

// processStart is a process's start time in clock ticks since boot (field
// 22 of /proc/<pid>/stat): with the pid it names one process, even after
// the pid is reused. "" when it cannot be read.
func processStart(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// the command name (field 2) may hold spaces; count from its closing parenthesis
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		if f := strings.Fields(s[i+1:]); len(f) > 19 {
			return f[19]
		}
	}
	return ""
}

// processRuns reports whether the process "<pid>:<start>" still runs on
// this machine. Anything it cannot tell counts as running: only a run
// that provably ended is cleaned up after.
func processRuns(proc string) bool {
	pidText, start, ok := strings.Cut(proc, ":")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || start == "" {
		return true
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
		return false
	} else if err != nil {
		return true
	}
	now := processStart(pid)
	return now == "" || now == start
}

// watch waits, bounded by the plan's timeout, for the aggregator to report
// the run complete, logging progress. It stops early, with an error naming
// the image, when sonobuoy's own pods cannot pull their image.
func (r *run) watch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.plan.Timeout+time.Minute) // wait.For's own bound ends first
	defer cancel()
	lastLine, lastLog := "", time.Time{}
	return wait.For(ctx, r.log, wait.Spec{
		What:        fmt.Sprintf("sonobuoy %s on %s to complete", r.plan.Mode, r.t.Name),
		Timeout:     r.plan.Timeout,
		Interval:    r.opts.Poll,
		ReportEvery: 24 * time.Hour, // progress lines are logged below, on change
	}, func(ctx context.Context) (bool, string, error) {
		if err := r.checkPods(ctx); err != nil {
			return false, "", err
		}
		r.follow.poll(ctx)
		st, pod, err := r.sc.GetStatusPod(&client.StatusConfig{Namespace: r.ns})
		line, done := "", false
		switch {
		case st != nil:
			line, done = r.digest(st)
			if st.Status == aggregation.FailedStatus {
				return false, line, fmt.Errorf("the sonobuoy aggregator failed (see %s and the aggregator's log in the results)", PluginLog)
			}
		case pod != nil:
			line = "aggregator pod " + string(pod.Status.Phase)
		case err != nil:
			line = "waiting for the aggregator: " + oneLineErr(err)
		}
		elapsed := logging.Round(time.Since(r.start))
		if line != lastLine || time.Since(lastLog) >= r.opts.ProgressEvery || done {
			r.log.Info("progress: "+line, "elapsed", elapsed, "bound", r.plan.Timeout)
			lastLine, lastLog = line, time.Now()
		}
		return done, line, nil
	})
}

// digest reads the e2e plugin's status: a progress line, and whether the
// run is complete. New failures are logged as they are reported.
func (r *run) digest(st *aggregation.Status) (line string, done bool) {
	var ps *aggregation.PluginStatus
	for i := range st.Plugins {
		if st.Plugins[i].Plugin == pluginName {
			ps = &st.Plugins[i]
		}
	}
	if ps == nil {
		return "aggregator " + st.Status + ", e2e plugin not started", st.Status == aggregation.CompleteStatus
	}
	var b strings.Builder
	fmt.Fprintf(&b, "e2e %s", ps.Status)
	if ps.ResultStatus != "" {
		fmt.Fprintf(&b, " (result %s)", ps.ResultStatus)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var prog *report.Progress
	if p, ok := r.follow.progress.snapshot(); ok {
		prog = &p
	} else if p := ps.Progress; p != nil && (p.Total > 0 || p.Completed > 0 || len(p.Failures) > 0) {
		prog = &report.Progress{Total: int(p.Total), Completed: int(p.Completed), Failed: len(p.Failures), Failures: slices.Clone(p.Failures)}
	}
	if prog != nil {
		for _, f := range prog.Failures {
			if !slices.Contains(r.failures, f) {
				r.failures = append(r.failures, f)
				r.log.Warn("FAILED: "+f, "failed so far", len(r.failures))
			}
		}
		r.progress = prog
	}
	if r.progress != nil && ps.Status == "running" {
		fmt.Fprintf(&b, ", %d/%d tests done, %d failed so far", r.progress.Done(), r.progress.Total, r.progress.Failed)
	}
	if st.Status != aggregation.RunningStatus {
		fmt.Fprintf(&b, "; aggregator %s", st.Status)
	}
	return b.String(), st.Status == aggregation.CompleteStatus
}

// pullProblems are the waiting reasons of a container whose image cannot
// be had.
var pullProblems = []string{"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}

// checkPods looks for pods that cannot pull their image: sonobuoy's own
// (aggregator, e2e plugin) end the run at once, with the image named — the
// run could only hang; a test's pod is noted (once per image) and logged,
// since its test will fail on its own bound.
func (r *run) checkPods(ctx context.Context) error {
	pods, err := r.t.clientset.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Pending"})
	if err != nil {
		return nil // transient: the status read reports a lasting problem
	}
	for _, p := range pods.Items {
		if p.CreationTimestamp.Time.Before(r.start.Add(-time.Minute)) {
			continue // not this run's
		}
		for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
			w := cs.State.Waiting
			if w == nil || !slices.Contains(pullProblems, w.Reason) {
				continue
			}
			where := fmt.Sprintf("pod %s/%s, %s: %s", p.Namespace, p.Name, w.Reason, oneLine(w.Message))
			if p.Namespace == r.ns && w.Reason != "ErrImagePull" { // the first failed pull may be a registry's hiccup; back-off is not
				return fmt.Errorf("sonobuoy's pod %s/%s cannot pull image %s (%s): make the image available to the nodes (loaded, mirrored or pullable)",
					p.Namespace, p.Name, cs.Image, w.Reason)
			}
			r.mu.Lock()
			if _, seen := r.pulls[cs.Image]; !seen {
				r.pulls[cs.Image] = where
				r.log.Warn("a test's image cannot be pulled: the test will fail when its own wait ends", "image", cs.Image, "pod", p.Namespace+"/"+p.Name, "reason", w.Reason)
			}
			r.mu.Unlock()
		}
	}
	return nil
}

// collect retrieves the aggregator's results (with retries, bounded) and
// reads them into the report. A complete run yields sonobuoy's results
// tarball; a run cut short yields what the aggregator had, kept as is.
func (r *run) collect(ctx context.Context, complete bool) {
	files, err := r.retrieve(ctx)
	if err != nil {
		r.rep.Notes = append(r.rep.Notes, "results could not be retrieved: "+err.Error())
		if r.rep.Outcome == "" {
			r.rep.Outcome, r.rep.Reason = report.OutcomeError, "results could not be retrieved: "+err.Error()
		}
		return
	}
	var tarball string
	for _, f := range files {
		if strings.Contains(filepath.Base(f), "_sonobuoy_") && strings.HasSuffix(f, ".tar.gz") {
			tarball = f
		}
	}
	if tarball == "" {
		if complete && r.rep.Outcome == "" {
			r.rep.Outcome, r.rep.Reason = report.OutcomeError, "the aggregator reported the run complete but holds no results tarball"
		}
		if len(files) == 0 {
			os.RemoveAll(filepath.Join(r.opts.Dir, PartialDir))
			r.rep.Notes = append(r.rep.Notes, "the aggregator held no results yet (they are written when the e2e plugin finishes); "+PluginLog+" has what ran")
			return
		}
		r.rep.Artifacts = append(r.rep.Artifacts, report.Artifact{Name: "what the aggregator had", Path: filepath.Join(r.opts.Dir, PartialDir)})
		return
	}
	dest := filepath.Join(r.opts.Dir, TarballFile)
	if err := os.Rename(tarball, dest); err != nil {
		r.rep.Notes = append(r.rep.Notes, "keep results tarball: "+err.Error())
		return
	}
	os.RemoveAll(filepath.Join(r.opts.Dir, PartialDir))
	r.rep.Artifacts = append(r.rep.Artifacts, report.Artifact{Name: "sonobuoy results tarball (sonobuoy results <file>)", Path: dest})
	dir := filepath.Join(r.opts.Dir, ResultsDir)
	if err := ExtractTarball(dest, dir); err != nil {
		r.rep.Notes = append(r.rep.Notes, "extract results: "+err.Error())
		return
	}
	res, err := ReadResults(dir)
	if err != nil {
		r.rep.Notes = append(r.rep.Notes, "read results: "+err.Error())
		if r.rep.Outcome == "" {
			r.rep.Outcome, r.rep.Reason = report.OutcomeError, "results unreadable: "+err.Error()
		}
		return
	}
	r.rep.Cases = res.Cases
	if res.E2ELog != "" {
		r.rep.Artifacts = append(r.rep.Artifacts, report.Artifact{Name: "e2e log in the results", Path: res.E2ELog})
	}
	r.rep.Properties = append(r.rep.Properties, report.Property{Name: "sonobuoy counts",
		Value: fmt.Sprintf("total %d, passed %d, failed %d, skipped %d (plugin %s)", res.Sonobuoy.Total, res.Sonobuoy.Passed, res.Sonobuoy.Failed, res.Sonobuoy.Skipped, res.PluginStatus)})
	all := r.rep.AllCounts()
	if res.HasJUnit && res.Sonobuoy.Total > 0 && (all.Total != res.Sonobuoy.Total || all.Passed != res.Sonobuoy.Passed || all.Bad() != res.Sonobuoy.Failed) {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("the JUnit (%d cases) and sonobuoy's result tree (%d items) disagree", all.Total, res.Sonobuoy.Total))
	}
	if !res.HasJUnit && r.rep.Outcome == "" {
		r.rep.Outcome = report.OutcomeError
		r.rep.Reason = "the e2e plugin left no JUnit results (plugin status " + res.PluginStatus + ")"
		if res.PluginStatus == "timeout" || strings.Contains(res.PluginStatus, "timeout") {
			r.rep.Outcome = report.OutcomeTimeout
			r.rep.Reason = fmt.Sprintf("the e2e plugin did not finish within the aggregator's bound of %s", r.plan.AggregatorTimeout())
		}
	}
}

// retrieve copies the aggregator's results directory out of its pod (the
// library execs a tar in it), retrying: the stream is known to break now
// and then. It returns the files written below Dir/partial.
func (r *run) retrieve(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.RetrieveTimeout)
	defer cancel()
	dest := filepath.Join(r.opts.Dir, PartialDir)
	var lastErr error
	for attempt := 1; ; attempt++ {
		os.RemoveAll(dest)
		files, err := r.retrieveOnce(ctx, dest)
		if err != nil && strings.Contains(err.Error(), "no valid entries in result") && !r.resultsPending() {
			// the aggregator's results directory is empty and nothing will
			// be written to it: a run cut short before its plugin finished
			return nil, nil
		}
		if err == nil {
			if attempt > 1 {
				r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("results retrieved at attempt %d (earlier: %v)", attempt, lastErr))
			}
			r.log.Info("results retrieved", "files", len(files), "attempt", attempt)
			return files, nil
		}
		lastErr = err
		r.log.Warn("retrieving results failed; retrying", "attempt", attempt, "err", err)
		if err := wait.Sleep(ctx, time.Duration(min(attempt, 4))*5*time.Second); err != nil {
			return nil, fmt.Errorf("gave up after %d attempts within %s: %w", attempt, r.opts.RetrieveTimeout, lastErr)
		}
	}
}

// resultsPending reports whether the aggregator is writing or has written
// its results (post-processing or complete), so an empty read is worth
// retrying.
func (r *run) resultsPending() bool {
	st, err := r.sc.GetStatus(&client.StatusConfig{Namespace: r.ns})
	return err != nil || st.Status == aggregation.PostProcessingStatus || st.Status == aggregation.CompleteStatus
}

func (r *run) retrieveOnce(ctx context.Context, dest string) ([]string, error) {
	reader, errc, err := r.sc.RetrieveResults(&client.RetrieveConfig{Namespace: r.ns, Path: sonoconfig.AggregatorResultsPath})
	if err != nil {
		return nil, err
	}
	if reader == nil {
		return nil, <-errc
	}
	type result struct {
		files []string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		files, err := client.UntarAll(reader, dest, "")
		// the stream's own error (exec failed, connection lost) comes last
		for e := range errc {
			err = errors.Join(err, e)
		}
		done <- result{files, err}
	}()
	select {
	case res := <-done:
		return res.files, res.err
	case <-ctx.Done():
		// The library's stream takes no context; leave it to end on its own.
		return nil, context.Cause(ctx)
	}
}

// cleanup removes what a run put into the cluster: sonobuoy's namespace
// ns (with the plugin's pods, config maps and service account), the
// cluster-wide RBAC sonobuoy labels with that namespace, and the e2e
// framework's namespaces created since the run started (start). It waits,
// bounded, until they are gone.
func cleanup(ctx context.Context, log *slog.Logger, t *Target, sc *client.SonobuoyClient, ns string, start time.Time, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := sc.Delete(&client.DeleteConfig{Namespace: ns, EnableRBAC: true}); err != nil {
		log.Warn("sonobuoy delete reported an error; checking what is left", "err", err)
	}
	cs := t.clientset
	e2eNamespaces := func(ctx context.Context) ([]string, error) {
		list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "e2e-framework,e2e-run"})
		if err != nil {
			return nil, err
		}
		var out []string
		for _, ns := range list.Items {
			// the e2e framework's namespaces of this run: created after it
			// started, while no other run could be active
			if !ns.CreationTimestamp.Time.Before(start.Add(-5 * time.Second)) {
				out = append(out, ns.Name)
				if ns.DeletionTimestamp == nil {
					if err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
						return nil, err
					}
				}
			}
		}
		return out, nil
	}
	selector := "component=sonobuoy,namespace=" + ns
	err := wait.For(ctx, log, wait.Spec{
		What:    fmt.Sprintf("sonobuoy's namespace %s, its cluster roles and bindings and this run's e2e namespaces to be deleted", ns),
		Timeout: timeout, Interval: 5 * time.Second, ReportEvery: 30 * time.Second,
	}, func(ctx context.Context) (bool, string, error) {
		var left []string
		if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
			left = append(left, "namespace "+ns)
		} else if !apierrors.IsNotFound(err) {
			return false, "", nil
		}
		crbs, err := cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, "", nil
		}
		for _, o := range crbs.Items {
			left = append(left, "clusterrolebinding "+o.Name)
			_ = cs.RbacV1().ClusterRoleBindings().Delete(ctx, o.Name, metav1.DeleteOptions{})
		}
		crs, err := cs.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, "", nil
		}
		for _, o := range crs.Items {
			left = append(left, "clusterrole "+o.Name)
			_ = cs.RbacV1().ClusterRoles().Delete(ctx, o.Name, metav1.DeleteOptions{})
		}
		e2e, err := e2eNamespaces(ctx)
		if err != nil {
			return false, "", nil
		}
		for _, n := range e2e {
			left = append(left, "namespace "+n)
		}
		if len(left) == 0 {
			return true, "", nil
		}
		return false, strconv.Itoa(len(left)) + " left: " + strings.Join(left, ", "), nil
	})
	if err != nil {
		return fmt.Errorf("removing sonobuoy from cluster %s: %w", t.Name, err)
	}
	log.Info("sonobuoy removed from the cluster", "namespace", ns)
	return nil
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func oneLineErr(err error) string { return oneLine(err.Error()) }
