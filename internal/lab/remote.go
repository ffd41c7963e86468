package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/appcred"
	"github.com/capilab/capilab/internal/command"
	"github.com/capilab/capilab/internal/mgmt"
	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/naming"
	"github.com/capilab/capilab/internal/remote"
	"github.com/capilab/capilab/internal/state"
)

// ByMgmtMode runs local or remote according to the setting mgmt_mode.
func ByMgmtMode(local, remote Target) Target {
	return func(ctx context.Context, r *Run) error {
		if r.Settings.MgmtMode == "remote" {
			return remote(ctx, r)
		}
		return local(ctx, r)
	}
}

// RemoteNode is the lab's remote management node (mgmt_mode remote);
// withCloud connects to the cloud for the preflight and server checks
// (make ssh needs no cloud).
func (r *Run) RemoteNode(ctx context.Context, withCloud bool) (*remote.Node, error) {
	s := r.Settings
	env := r.opts.Environ
	cache, err := r.toolCache()
	if err != nil {
		return nil, err
	}
	opts := remote.Options{
		Settings: s,
		Sources:  r.Loaded.Sources,
		Pins:     r.Loaded.Versions.Remote,
		RepoDir:  r.Dir,
		StateDir: string(r.State()),
		Tools: &remote.Tools{
			Binary: s.Tofu,
			Build:  &modbuild.Builder{CacheDir: cache, RepoRoot: r.Dir, Env: env, Log: r.Log},
			Pins:   r.Loaded.Versions.Remote,
			Log:    r.Log,
		},
		GoProxy: r.goProxy(ctx),
		Env:     env,
		Log:     r.Log,
		Stdin:   r.opts.Stdin,
		Stdout:  r.Stdout,
		Stderr:  r.opts.Stderr,
	}
	opts.LabCredential = func(ctx context.Context) (remote.Credential, error) { return r.labCredential(ctx) }
	opts.RevokeLabCredential = func(ctx context.Context) error {
		m, _, err := r.AppcredManager(ctx)
		if err != nil {
			return err
		}
		d, err := m.Delete(ctx, s.Prefix, "")
		if err == nil && d.Existed {
			r.Log.Info("revoked the lab's application credential " + naming.AppCred(s.Prefix, "") + ": its secret lived on the management node")
		}
		return err
	}
	if withCloud {
		c, err := r.Cloud(ctx)
		if err != nil {
			return nil, err
		}
		ostack := remote.OpenStack{Cloud: c}
		opts.Catalog, opts.ServerExists = ostack, ostack.ServerExists
	}
	return remote.New(opts)
}

// toolCache is where OpenTofu and the provider are built: the user's
// cache directory, shared by every lab and checkout on the machine.
func (r *Run) toolCache() (string, error) {
	env := environMap(r.opts.Environ)
	if d := env["CAPILAB_TOOL_CACHE"]; d != "" {
		return d, nil
	}
	base := env["XDG_CACHE_HOME"]
	if base == "" {
		home := env["HOME"]
		if home == "" {
			return "", errors.New("neither XDG_CACHE_HOME nor HOME is set: no place for capilab's tool cache (set CAPILAB_TOOL_CACHE)")
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "capilab", "tools"), nil
}

// goProxy is this machine's GOPROXY, which the node uses too.
func (r *Run) goProxy(ctx context.Context) string {
	if v := environMap(r.opts.Environ)["GOPROXY"]; v != "" {
		return v
	}
	out, err := command.New("go", "env", "GOPROXY").WithEnv(r.opts.Environ).Output(ctx)
	if v := strings.TrimSpace(string(out)); err == nil && v != "" {
		return v
	}
	return "https://proxy.golang.org,direct"
}

// labCredential creates or reuses the lab's application credential and
// returns its clouds.yaml entry for the node.
func (r *Run) labCredential(ctx context.Context) (remote.Credential, error) {
	m, _, err := r.AppcredManager(ctx)
	if err != nil {
		return remote.Credential{}, err
	}
	cred, err := m.Ensure(ctx, r.Settings.Prefix, "", appcred.Options{})
	if err != nil {
		return remote.Credential{}, err
	}
	printCred(r, cred)
	data, err := os.ReadFile(cred.CloudsFile)
	if err != nil {
		return remote.Credential{}, err
	}
	var doc struct {
		Clouds map[string]map[string]any `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return remote.Credential{}, fmt.Errorf("%s: %w", cred.CloudsFile, err)
	}
	entry, ok := doc.Clouds[cred.CloudName]
	if !ok {
		return remote.Credential{}, fmt.Errorf("%s has no entry %s after creating it", cred.CloudsFile, cred.CloudName)
	}
	ca, _ := entry["cacert"].(string)
	return remote.Credential{CloudName: cred.CloudName, Entry: entry, CACertFile: ca}, nil
}

// remoteError maps the node's bad input to exit code 2.
func remoteError(err error) error {
	var bad *remote.BadInputError
	if errors.As(err, &bad) {
		return &ExitError{Code: ExitBadInput, Err: err}
	}
	return err
}

// RemoteCreate is `make create` with mgmt_mode remote: the node is built
// (or found as planned) and runs `make create` itself.
func RemoteCreate(ctx context.Context, r *Run) error {
	n, err := r.RemoteNode(ctx, true)
	if err != nil {
		return err
	}
	if r.Settings.DryRun {
		changes, err := n.DryRun(ctx)
		if err != nil {
			return remoteError(err)
		}
		return printChanges(r, changes)
	}
	if err := n.Create(ctx); err != nil {
		return remoteError(err)
	}
	fmt.Fprintf(r.Stdout, "management node %s is ready; make get-kubeconfig MGMT_MODE=remote writes its kubeconfig, make ssh MGMT_MODE=remote logs in\n", n.Names().Server())
	return nil
}

// RemoteDelete is `make clean` (workload: the workload clusters through
// the node first) and `make mgmt-delete` with mgmt_mode remote: the
// management cluster on the node, then the node.
func RemoteDelete(workload bool) Target {
	return func(ctx context.Context, r *Run) error {
		n, err := r.RemoteNode(ctx, true)
		if err != nil {
			return err
		}
		if err := n.Delete(ctx, workload); err != nil {
			return remoteError(err)
		}
		if err := os.Remove(r.mgmtKubeconfigPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		fmt.Fprintf(r.Stdout, "remote management node of lab %s: deleted\n", r.Settings.Prefix)
		return nil
	}
}

// RemoteForward runs make target on the remote management node with this
// run's settings and follows it (bounded by remote_timeout).
func RemoteForward(target string) Target {
	return func(ctx context.Context, r *Run) error {
		n, err := r.RemoteNode(ctx, false)
		if err != nil {
			return err
		}
		if err := n.Forward(ctx, target); err != nil {
			return remoteError(err)
		}
		fmt.Fprintf(r.Stdout, "make %s on the management node of lab %s: done\n", target, r.Settings.Prefix)
		return nil
	}
}

// RemoteStatus is `mage mgmt:status` with mgmt_mode remote: what the state
// records of the node, whether its server exists, when make create last
// ran there.
func RemoteStatus(ctx context.Context, r *Run) error {
	n, err := r.RemoteNode(ctx, true)
	if err != nil {
		return err
	}
	st, err := n.Status(ctx)
	if err != nil {
		return err
	}
	if !st.Exists {
		fmt.Fprintf(r.Stdout, "remote management node %s does not exist (make create MGMT_MODE=remote)\n", n.Names().Server())
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("remote management node %s does not exist", n.Names().Server())}
	}
	tw := tabwriter.NewWriter(r.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "server\t%s (%s), exists in the cloud: %v\n", n.Names().Server(), st.ServerID, st.ServerFound)
	fmt.Fprintf(tw, "floating IP\t%s\n", st.FloatingIP)
	created := "never started"
	switch {
	case !st.CreateFinished.IsZero():
		created = "ended well " + st.CreateFinished.Format(time.RFC3339)
	case !st.CreateStarted.IsZero():
		created = "started " + st.CreateStarted.Format(time.RFC3339) + ", not ended well"
	}
	fmt.Fprintf(tw, "make create on the node\t%s\n", created)
	fmt.Fprintf(tw, "resources in the state\t%d\n", len(st.Resources))
	if err := tw.Flush(); err != nil {
		return err
	}
	if !st.ServerFound {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("the state records server %s, which the cloud does not have (make fullclean, then make clean)", st.ServerID)}
	}
	return nil
}

// mgmtKubeconfigPath is where the management cluster's kubeconfig is kept
// in either mode.
func (r *Run) mgmtKubeconfigPath() string {
	return (&mgmt.Manager{State: r.State()}).KubeconfigPath()
}

// RemoteKubeconfig is `make get-kubeconfig` with mgmt_mode remote: the
// management cluster's kubeconfig with the node's floating IP as server,
// and CLUSTER's when it exists, both 0600 in the state directory.
func RemoteKubeconfig(ctx context.Context, r *Run) error {
	n, err := r.RemoteNode(ctx, false)
	if err != nil {
		return err
	}
	data, err := n.Kubeconfig(ctx)
	if err != nil {
		return err
	}
	p := r.mgmtKubeconfigPath()
	if err := state.WriteSecretFile(p, data); err != nil {
		return err
	}
	fmt.Fprintf(r.Stdout, "management cluster: KUBECONFIG=%s\n", p)
	wl, err := n.WorkloadKubeconfig(ctx, r.Settings.Cluster, r.Settings.ClusterNamespace())
	switch {
	case errors.Is(err, remote.ErrNoCluster):
		fmt.Fprintf(r.Stdout, "workload cluster %s: does not exist on the management node (yet)\n", r.Settings.Cluster)
		return nil
	case err != nil:
		return err
	}
	p = filepath.Join(r.State().ClusterDir(r.Settings.Cluster), "kubeconfig")
	if err := state.WriteSecretFile(p, wl); err != nil {
		return err
	}
	fmt.Fprintf(r.Stdout, "workload cluster %s: KUBECONFIG=%s\n", r.Settings.Cluster, p)
	return nil
}

// MgmtSSH is `make ssh`: a shell on the remote management node.
func MgmtSSH(ctx context.Context, r *Run) error {
	if r.Settings.MgmtMode != "remote" {
		return &ExitError{Code: ExitBadInput, Err: errors.New("make ssh logs in to the remote management node, and mgmt_mode is local (the management cluster runs on this machine): set MGMT_MODE=remote")}
	}
	n, err := r.RemoteNode(ctx, false)
	if err != nil {
		return err
	}
	return n.SSH(ctx)
}

// printChanges is the dry run's plan: one line per resource.
func printChanges(r *Run, changes []remote.Change) error {
	tw := tabwriter.NewWriter(r.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tRESOURCE\tNAME")
	n := 0
	for _, c := range changes {
		action := strings.Join(c.Actions, ",")
		if action == "no-op" {
			continue
		}
		n++
		name, _ := c.After["name"].(string)
		fmt.Fprintf(tw, "%s\t%s\t%s\n", action, c.Address, name)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(r.Stdout, "dry run for the remote management node of lab %s: %d change(s) planned, nothing applied\n", r.Settings.Prefix, n)
	return nil
}
