package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/capilab/capilab/internal/command"
	"github.com/capilab/capilab/internal/conformance"
	"github.com/capilab/capilab/internal/conformance/imagebuild"
	"github.com/capilab/capilab/internal/dataplane/mirror"
	"github.com/capilab/capilab/internal/kindcluster"
	"github.com/capilab/capilab/internal/kindimage"
	"github.com/capilab/capilab/internal/report"
)

// CheckRun is `make check`: the mode SONOMODE.
func CheckRun(ctx context.Context, r *Run) error { return r.Check(ctx, r.Settings.Sonomode) }

// CheckQuick is `make check-quick`.
func CheckQuick(ctx context.Context, r *Run) error {
	return r.Check(ctx, string(conformance.ModeQuick))
}

// CheckConformance is `make check-conformance`.
func CheckConformance(ctx context.Context, r *Run) error {
	return r.Check(ctx, string(conformance.ModeConformance))
}

// CheckStorage is `make check-storage`.
func CheckStorage(ctx context.Context, r *Run) error {
	return r.Check(ctx, string(conformance.ModeStorage))
}

// CheckCSI is `make check-csi`.
func CheckCSI(ctx context.Context, r *Run) error { return r.Check(ctx, string(conformance.ModeCSI)) }

// badInput is a one-line problem with the input: exit code 2, nothing done.
func badInput(format string, args ...any) error {
	return &ExitError{Code: ExitBadInput, Err: fmt.Errorf(format, args...)}
}

// Check runs a conformance mode against CLUSTER's kubeconfig (or
// KUBECONFIG), writes the report (junit.xml, summary.md, report.html,
// report.json, the results tarball) under artifacts/check/, and fails
// unless every selected test passed and at least one ran (exit 1). Bad
// input — unknown mode, no kubeconfig, a cluster that does not answer or
// refuses the credentials — exits 2 before anything is started; a cluster
// another check runs against exits 4 (ExitBusy), nothing started.
func (r *Run) Check(ctx context.Context, modeName string) error {
	paths, name, err := r.checkKubeconfig()
	if err != nil {
		return err
	}
	// a cluster of the lab made with no cloud selected is the local lab's
	// (the cluster targets' rule)
	localLab := r.LocalLab() || (r.Settings.Kubeconfig == "" && r.Settings.Cloud == "")
	rep, files, err := r.runCheck(ctx, modeName, paths, name, "", localLab)
	if rep == nil {
		return err
	}
	for _, c := range rep.Bad() {
		fmt.Fprintf(r.Stdout, "FAILED: %s\n", c.Name)
	}
	fmt.Fprintf(r.Stdout, "report: %s\njunit: %s\nsummary: %s\njson: %s\n", files.HTML, files.JUnit, files.Markdown, files.JSON)
	if err != nil {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("%s; and %w", rep.Summary(), err)}
	}
	if !rep.OK() {
		return &ExitError{Code: ExitFailure, Err: errors.New(rep.Summary())}
	}
	fmt.Fprintln(r.Stdout, rep.Summary())
	return nil
}

// CheckCluster runs the check of mode against one cluster's kubeconfig,
// writing its files into dir: what the nightly run calls for each of its
// clusters. The report is nil when nothing was started (the error says
// why: bad input is an *ExitError with ExitBadInput, a cluster busy with
// another run one with ExitBusy); a report with an error means the run
// happened but sonobuoy could not be removed completely.
func (r *Run) CheckCluster(ctx context.Context, mode, kubeconfig, name, dir string) (*report.Report, error) {
	rep, _, err := r.runCheck(ctx, mode, filepath.SplitList(kubeconfig), name, dir, r.LocalLab())
	return rep, err
}

// checkTimeout bounds the check of the nightly run: CHECK_TIMEOUT, else
// the default of SONOMODE's mode.
func (r *Run) checkTimeout() time.Duration {
	if t := r.Settings.CheckTimeout; t > 0 {
		return t
	}
	if m, err := conformance.ParseMode(r.Settings.Sonomode); err == nil {
		return m.DefaultTimeout()
	}
	return conformance.ModeConformance.DefaultTimeout()
}

// runCheck is one check: the plan from the settings, the cluster reached
// and reserved, its images made available (localLab: pushed to the local
// lab's registry mirror, where its nodes pull from), the run, the report
// written into dir ("": artifacts/check/<cluster>-<mode>-<time>).
func (r *Run) runCheck(ctx context.Context, modeName string, paths []string, name, dir string, localLab bool) (*report.Report, report.Files, error) {
	s := r.Settings
	mode, err := conformance.ParseMode(modeName)
	if err != nil {
		return nil, report.Files{}, badInput("%v", err)
	}
	plan := conformance.Plan{
		Mode:            mode,
		Selection:       mode.Resolve(conformance.Overrides{Focus: s.E2EFocus, Skip: s.E2ESkip, Parallel: s.E2EParallel}),
		Timeout:         s.CheckTimeout,
		DryRun:          s.E2EDryRun,
		SonobuoyVersion: r.Loaded.Versions.Sonobuoy.Version,
		WorkerImage:     "sonobuoy/sonobuoy:" + r.Loaded.Versions.Sonobuoy.Version,
	}
	if plan.Timeout == 0 {
		plan.Timeout = mode.DefaultTimeout()
	}
	if mode.NeedsTestDriver() {
		if plan.TestDriver, err = r.readInput(s.CSITestDriver, "csi_test_driver", conformance.CinderTestDriver); err != nil {
			return nil, report.Files{}, err
		}
	}
	if s.E2ERepoConfig != "" {
		if plan.RepoList, err = r.readInput(s.E2ERepoConfig, "e2e_repo_config", nil); err != nil {
			return nil, report.Files{}, err
		}
	}
	// the version is the cluster's: validate the rest now, before connecting
	probe := plan
	probe.KubeVersion = "v0.0.0"
	if err := probe.Validate(); err != nil {
		return nil, report.Files{}, badInput("check %s: %v", mode, err)
	}

	quietSonobuoyLibrary(r.Log)
	target, err := conformance.Connect(ctx, name, paths)
	if err != nil {
		if conformance.IsInputError(err) {
			return nil, report.Files{}, &ExitError{Code: ExitBadInput, Err: err}
		}
		return nil, report.Files{}, err
	}
	plan.KubeVersion = target.Facts.Version
	if target.Facts.Provider == "openstack" {
		plan.Provider = "openstack" // as SCS ran the e2e plugin on OpenStack clusters
	}
	r.Log.Info("cluster", "name", target.Name, "server", target.Facts.Server, "version", target.Facts.Version,
		"nodes", len(target.Facts.Nodes), "provider", target.Facts.Provider, "kind", target.KindCluster)

	if dir == "" {
		dir = filepath.Join(r.Path(s.ArtifactsDir), "check", fmt.Sprintf("%s-%s-%s", safeName(target.Name), mode, time.Now().UTC().Format("20060102-150405")))
	}
	session, err := target.Reserve(ctx, conformance.Options{Log: r.Log, Dir: dir, LockDir: filepath.Join(string(r.State()), "locks")})
	if err != nil {
		if conformance.IsBusy(err) {
			return nil, report.Files{}, &ExitError{Code: ExitBusy, Err: err}
		}
		return nil, report.Files{}, err
	}
	defer session.Close()
	notes, err := r.checkImages(ctx, target, &plan, localLab)
	if err != nil {
		return nil, report.Files{}, err
	}
	rep, runErr := session.Run(ctx, plan)
	if rep == nil {
		return nil, report.Files{}, runErr
	}
	rep.Notes = append(rep.Notes, notes...)
	files, err := report.WriteFiles(dir, rep)
	if err != nil {
		return rep, files, errors.Join(err, runErr)
	}
	return rep, files, runErr
}

// checkKubeconfig is KUBECONFIG (a list, merged), else the kubeconfig the
// lab keeps for CLUSTER. The name reports use is CLUSTER unless KUBECONFIG
// was given and CLUSTER was not (then the kubeconfig's context).
func (r *Run) checkKubeconfig() (paths []string, name string, err error) {
	s := r.Settings
	if s.Kubeconfig != "" {
		for _, p := range filepath.SplitList(s.Kubeconfig) {
			if p != "" {
				paths = append(paths, r.Path(p))
			}
		}
		if r.Loaded.Sources["cluster"] != "default" {
			name = s.Cluster
		}
		return paths, name, nil
	}
	p := filepath.Join(string(r.State()), "clusters", s.Cluster, "kubeconfig")
	if _, err := os.Stat(p); err != nil {
		return nil, "", badInput("cluster %s: no kubeconfig at %s (the lab has not made this cluster); set KUBECONFIG to check another cluster", s.Cluster, p)
	}
	return []string{p}, s.Cluster, nil
}

// readInput reads a file named by a setting; builtin is used when the
// setting is empty.
func (r *Run) readInput(path, key string, builtin []byte) ([]byte, error) {
	if path == "" {
		return builtin, nil
	}
	data, err := os.ReadFile(r.Path(path))
	if err != nil {
		return nil, badInput("%s: %v", key, err)
	}
	return data, nil
}

func safeName(s string) string {
	if s == "" {
		return "cluster"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, s)
}

// checkImages makes the images of the run available where the cluster's
// nodes cannot get them from a registry:
//   - on the local lab (localLab) the nodes pull through devcloud's
//     registry mirror, which holds only what was pushed: the images are
//     built here and pushed to it;
//   - on a kind cluster of this machine's Docker engine whose nodes cannot
//     reach registry.k8s.io (it does not resolve here) they are built here
//     and loaded into the nodes that lack them.
//
// Built are sonobuoy, the conformance image of the cluster's version and
// the test images that can be made; those that cannot are returned as
// notes. Anywhere else the cluster pulls the images as usual (from its
// registry or mirror); an image sonobuoy's own pods cannot pull ends the
// run at once.
func (r *Run) checkImages(ctx context.Context, target *conformance.Target, plan *conformance.Plan, localLab bool) ([]string, error) {
	env := r.buildEnv()
	mod := r.Builder()
	mod.Env = env
	b := &imagebuild.Builder{
		Mod:         mod,
		DebianSuite: r.Loaded.Versions.KindNode.DebianSuite, CacheDir: filepath.Join(r.CacheDir(), "conformance"), Env: env, Log: r.Log,
	}
	var deliver func(ctx context.Context, refs []string) error
	switch {
	case localLab:
		r.Log.Info("local lab: making the images here (cached by content) and pushing them to its registry mirror", "mirror", mirror.DevcloudRegistry)
		deliver = func(ctx context.Context, refs []string) error {
			start := time.Now()
			if err := r.mirrorPusher().Push(ctx, refs); err != nil {
				return fmt.Errorf("%w (is devcloud's registry mirror running? scripts/devcloud/devcloud.sh status)", err)
			}
			r.Log.Info("images pushed to the local lab's registry mirror", "images", len(refs), "elapsed", time.Since(start).Round(time.Second))
			return nil
		}
	case target.KindCluster != "":
		mgr := kindcluster.New(r.Log)
		clusters, err := mgr.List()
		if err != nil || !slices.Contains(clusters, target.KindCluster) {
			r.Log.Info("kind cluster of another engine: its nodes pull images themselves", "kind", target.KindCluster)
			return nil, nil
		}
		host := kindimage.RegistryHost("registry.k8s.io/conformance")
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		addrs, rerr := kindimage.DefaultResolver(lctx, host)
		cancel()
		if rerr == nil && len(addrs) > 0 {
			r.Log.Info("registry resolves: the kind nodes pull the upstream images", "registry", host)
			return nil, nil
		}
		r.Log.Info("no registry: making the images here (cached by content) and loading what the kind nodes lack", "registry", host, "kind", target.KindCluster)
		deliver = func(ctx context.Context, refs []string) error {
			start := time.Now()
			missing, err := missingOnNodes(ctx, mgr, target.KindCluster, refs)
			if err != nil {
				return err
			}
			if len(missing) == 0 {
				r.Log.Info("the kind nodes have every image already", "images", len(refs))
				return nil
			}
			if err := mgr.LoadImages(ctx, target.KindCluster, missing...); err != nil {
				return err
			}
			r.Log.Info("images loaded into the kind nodes", "cluster", target.KindCluster, "images", len(missing), "current", len(refs)-len(missing), "elapsed", time.Since(start).Round(time.Second))
			return nil
		}
	default:
		return nil, nil
	}

	start := time.Now()
	sono, err := b.Sonobuoy(ctx, r.Loaded.Versions.Sonobuoy.Version)
	if err != nil {
		return nil, err
	}
	bins, err := b.KubernetesBinaries(ctx, target.Facts.Version)
	if err != nil {
		return nil, err
	}
	conf, err := b.Conformance(ctx, bins)
	if err != nil {
		return nil, err
	}
	refs := []string{sono, conf}
	var notes []string
	quick := conformance.ModeQuick.Selection()
	// quick's one test needs only pause, which the node has; a dry run runs no test
	if (plan.Selection.Focus != quick.Focus || plan.Selection.Skip != quick.Skip) && !plan.DryRun {
		all, err := b.ListImages(ctx, bins)
		if err != nil {
			return nil, err
		}
		var wanted []string
		for _, ref := range all {
			if !target.NodeImages[ref] {
				wanted = append(wanted, ref)
			}
		}
		made, unbuildable, err := b.TestImages(ctx, bins, wanted)
		if err != nil {
			return nil, err
		}
		refs = append(refs, made...)
		if len(unbuildable) > 0 {
			notes = append(notes, fmt.Sprintf("%d of the e2e binary's %d test images cannot be made without a registry; tests that use them fail: %s",
				len(unbuildable), len(all), strings.Join(unbuildable, " ")))
			r.Log.Warn("e2e test images not available without a registry: tests that use them will fail", "count", len(unbuildable), "images", unbuildable)
		}
	}
	r.Log.Info("images ready", "images", len(refs), "elapsed", time.Since(start).Round(time.Second))
	if err := deliver(ctx, refs); err != nil {
		return nil, err
	}
	return notes, nil
}

// nodeImageScript prints, for each reference given, the reference and the
// config digest (the Docker image ID) of the image the node's containerd
// has under it.
const nodeImageScript = `for r in "$@"; do
  m=$(ctr -n k8s.io images ls "name==$r" 2>/dev/null | awk 'NR==2{print $3}')
  [ -n "$m" ] || continue
  c=$(ctr -n k8s.io content get "$m" 2>/dev/null | jq -r '.config.digest // empty')
  echo "$r $c"
done`

// missingOnNodes returns the refs some node of the kind cluster lacks, or
// has as a different image than the Docker engine's.
func missingOnNodes(ctx context.Context, mgr *kindcluster.Manager, cluster string, refs []string) ([]string, error) {
	want := map[string]string{}
	for _, ref := range refs {
		id, err := command.New("docker", "image", "inspect", "--format", "{{.Id}}", ref).Output(ctx)
		if err != nil {
			return nil, err
		}
		want[ref] = strings.TrimSpace(string(id))
	}
	nodes, err := mgr.NodeNames(cluster)
	if err != nil {
		return nil, err
	}
	// containerd names Docker Hub images in full
	full := make([]string, len(refs))
	for i, ref := range refs {
		full[i] = ref
		if kindimage.RegistryHost(ref) == "registry-1.docker.io" {
			if strings.Contains(ref, "/") {
				full[i] = "docker.io/" + ref
			} else {
				full[i] = "docker.io/library/" + ref
			}
		}
	}
	missing := map[string]bool{}
	for _, n := range nodes {
		out, err := command.New("docker", append([]string{"exec", n, "sh", "-c", nodeImageScript, "--"}, full...)...).Output(ctx)
		if err != nil {
			return refs, nil // cannot tell: load them all
		}
		have := map[string]string{}
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) == 2 {
				have[f[0]] = f[1]
			}
		}
		for i, ref := range refs {
			if have[full[i]] != want[ref] {
				missing[ref] = true
			}
		}
	}
	var out []string
	for _, ref := range refs {
		if missing[ref] {
			out = append(out, ref)
		}
	}
	return out, nil
}

// buildEnv is the environment of image builds: the process's, with a PATH
// that reaches the Go toolchain running this program and the system tools.
func (r *Run) buildEnv() []string {
	env := slices.Clone(r.opts.Environ)
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	extra := []string{filepath.Join(runtime.GOROOT(), "bin"), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}
	for _, p := range extra {
		if !slices.Contains(filepath.SplitList(path), p) {
			if path != "" {
				path += string(filepath.ListSeparator)
			}
			path += p
		}
	}
	return append(env, "PATH="+path)
}

// quietSonobuoyLibrary sends the sonobuoy library's logrus output to the
// run's log at debug level. Its level must stay at info or below: the
// library passes it to the aggregator, which refuses "warning". The hooks
// are replaced as a whole, so checks of several clusters at once (the
// nightly run) leave one hook, not one each.
func quietSonobuoyLibrary(log *slog.Logger) {
	logrus.SetOutput(io.Discard)
	logrus.SetLevel(logrus.InfoLevel)
	hooks := logrus.LevelHooks{}
	hooks.Add(slogHook{log: log})
	logrus.StandardLogger().ReplaceHooks(hooks)
}

type slogHook struct{ log *slog.Logger }

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	attrs := make([]any, 0, 2*len(e.Data)+2)
	attrs = append(attrs, "lib", "sonobuoy")
	for k, v := range e.Data {
		attrs = append(attrs, k, fmt.Sprint(v))
	}
	h.log.Debug(e.Message, attrs...)
	return nil
}
