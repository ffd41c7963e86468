// Package remote is the optional remote management node (setting
// mgmt_mode: remote): a VM in the cloud, built with OpenTofu or Terraform
// from the checkout's terraform/, on which capilab itself runs `make
// create` — for teams whose machines cannot reach the cloud's internal
// networks, as SCS's management VM did.
//
// The Go API is Node: Create (preflight, plan/apply, then the node's
// bootstrap, bounded and followed), Kubeconfig (the management cluster's
// kubeconfig with the floating IP as server), Delete (the node's `make
// clean`, then destroy), Status and SSH.
//
// Division of work on a create:
//
//  1. preflight, before anything is planned: the external network, image,
//     flavor and zone exist; no resource carries the node's names unless
//     this lab's OpenTofu state tracks it (exit code 2 otherwise);
//  2. the lab's application credential <prefix>-appcred (created or reused
//     by the caller) and an ssh key in the state directory (0600);
//  3. OpenTofu plans and applies terraform/ in <state_dir>/terraform,
//     workspace <prefix>; the provider comes from its registry or, when
//     none answers, from a local build in a filesystem mirror;
//  4. cloud-init on the node installs Docker, make and the pinned Go
//     toolchain (checked by sha256) and writes capilab-bootstrap; the user
//     data holds no secret;
//  5. over ssh, capilab ships its source at the checkout's HEAD commit
//     (git archive), the lab's settings (lab.yaml) and the credential's
//     clouds.yaml entry (0600), and starts `make create` on the node, whose
//     log it follows until it ends, bounded by remote_timeout.
package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/command"
	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/fsutil"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/versions"
	"github.com/capilab/capilab/internal/wait"
)

// Credential is the lab's application credential as the node gets it: its
// clouds.yaml entry (it holds the secret) and the CA bundle it names.
type Credential struct {
	CloudName  string         // the entry's name, <prefix>
	Entry      map[string]any // clouds.yaml entry; never logged
	CACertFile string         // local CA bundle of the cloud ("" if none)
}

// Options is everything a Node needs; the lab fills it from the settings.
type Options struct {
	Settings *config.Settings
	// Sources says where each setting came from (problem lines name it).
	Sources map[string]string
	Pins    versions.Remote
	// RepoDir is capilab's checkout: terraform/ and the source the node gets.
	RepoDir string
	// StateDir is the lab's state directory.
	StateDir string
	// Catalog answers the preflight's lookups; ServerExists whether the
	// node's server still exists (Delete skips its `make clean` if not).
	Catalog      Catalog
	ServerExists func(ctx context.Context, id string) (bool, error)
	Tools        *Tools
	// LabCredential creates or reuses the lab's application credential.
	LabCredential func(ctx context.Context) (Credential, error)
	// RevokeLabCredential revokes it once the node is gone (its secret
	// lived on the node's disk).
	RevokeLabCredential func(ctx context.Context) error
	// GoProxy is the GOPROXY the node uses (this machine's).
	GoProxy string
	// Env is the environment tofu, ssh and git start from (nil: this process's).
	Env []string
	// SSHClient is the ssh command (default "ssh").
	SSHClient string
	Log       *slog.Logger
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
	// Poll is the longest pause between looks at the node's progress (default 10s).
	Poll time.Duration
}

// Node is the remote management node of one lab.
type Node struct {
	opts    Options
	names   Names
	shipped string // the commit shipped in this run
}

// New returns the node of the lab the settings describe.
func New(opts Options) (*Node, error) {
	if opts.Settings == nil || opts.StateDir == "" || opts.RepoDir == "" {
		return nil, errors.New("remote: Settings, StateDir and RepoDir are required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	if opts.Poll <= 0 {
		opts.Poll = 10 * time.Second
	}
	return &Node{opts: opts, names: Names{Prefix: opts.Settings.Prefix}}, nil
}

// Names are the node's resource names.
func (n *Node) Names() Names { return n.names }

// Workspace is the lab's OpenTofu workspace, without a binary (enough to
// read its state).
func (n *Node) Workspace() *Workspace {
	return &Workspace{
		Dir:             filepath.Join(n.opts.StateDir, "terraform"),
		Module:          filepath.Join(n.opts.RepoDir, "terraform"),
		Name:            n.names.Workspace(),
		ProviderVersion: n.opts.Pins.OpenStackProvider,
		Env:             n.opts.Env,
		Log:             n.opts.Log,
	}
}

// KeyFile is the lab's ssh private key (0600).
func (n *Node) KeyFile() string { return filepath.Join(n.Workspace().LabDir(), "id_ed25519") }

func (n *Node) knownHosts() string { return filepath.Join(n.Workspace().LabDir(), "known_hosts") }
func (n *Node) recordFile() string { return filepath.Join(n.Workspace().LabDir(), "node.json") }

// setup is the node's cloud-init input.
func (n *Node) setup() NodeSetup {
	s := n.opts.Settings
	return NodeSetup{
		Prefix: s.Prefix, User: s.SSHUsername,
		Go: n.opts.Pins.NodeGo, GoSHA256: n.opts.Pins.NodeGoSHA256,
		GoProxy: n.opts.GoProxy, HTTPProxy: s.HTTPProxy, NoProxy: s.NoProxy, DockerMTU: s.KindMTU,
	}
}

// UserData is the node's rendered cloud-init user data.
func (n *Node) UserData() (string, error) { return n.setup().UserData() }

// BadInputError is input the cloud refuses before anything was planned.
type BadInputError struct{ Err error }

func (e *BadInputError) Error() string { return e.Err.Error() }
func (e *BadInputError) Unwrap() error { return e.Err }

// ready resolves the tools and prepares the working directory (under the
// workspace lock, which the caller releases).
func (n *Node) ready(ctx context.Context) (*Workspace, func(), error) {
	ws := n.Workspace()
	if err := os.MkdirAll(ws.LabDir(), 0o700); err != nil {
		return nil, nil, err
	}
	unlock, err := fsutil.Lock(ctx, n.opts.Log, filepath.Join(ws.Dir, ".capilab.lock"),
		wait.Spec{What: "the lock on the OpenTofu working directory " + ws.Dir + " (another capilab run plans or applies there)", Timeout: 30 * time.Minute, Interval: time.Second, ReportEvery: 30 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*Workspace, func(), error) { unlock(); return nil, nil, err }
	if n.opts.Tools == nil {
		return fail(errors.New("remote: no Tools"))
	}
	bin, err := n.opts.Tools.Find(ctx)
	if err != nil {
		return fail(err)
	}
	ws.Bin = bin
	n.opts.Log.Info("using "+bin.Kind+" "+bin.Version, "path", bin.Path, "from", bin.Source)
	if n.opts.Tools.RegistryAnswers(ctx, bin) {
		n.opts.Log.Info("the OpenStack provider comes from " + bin.registryHost())
	} else {
		mirror, err := n.opts.Tools.Mirror(ctx)
		if err != nil {
			return fail(fmt.Errorf("no provider registry answers, and building the OpenStack provider failed: %w", err))
		}
		ws.CLIConfig = mirrorCLIConfig(mirror)
		n.opts.Log.Info("no provider registry answers: the OpenStack provider comes from a local build", "mirror", mirror)
	}
	if err := ws.Sync(); err != nil {
		return fail(err)
	}
	if err := ws.Init(ctx); err != nil {
		return fail(err)
	}
	return ws, unlock, nil
}

// Plan runs the preflight and writes the variables; it is the first half
// of Create, and what a dry run or a test needs.
func (n *Node) Plan(ctx context.Context) (Variables, error) {
	s := n.opts.Settings
	ws := n.Workspace()
	st, err := ws.ReadState()
	if err != nil {
		return Variables{}, err
	}
	if n.opts.Catalog == nil {
		return Variables{}, errors.New("remote: no Catalog for the preflight")
	}
	res, err := Preflight(ctx, n.opts.Catalog, s, n.opts.Sources, st)
	var invalid *config.InvalidError
	if errors.As(err, &invalid) {
		return Variables{}, &BadInputError{Err: err}
	}
	if err != nil {
		return Variables{}, err
	}
	pub, err := ensureKey(ctx, n.KeyFile(), "capilab lab "+s.Prefix)
	if err != nil {
		return Variables{}, err
	}
	userData, err := n.UserData()
	if err != nil {
		return Variables{}, err
	}
	v := NewVariables(s, res, pub, userData)
	if err := v.Write(ws.VarFile()); err != nil {
		return Variables{}, err
	}
	return v, nil
}

// Apply plans and applies the module (no-op when nothing differs) and
// returns the node's floating IP.
func (n *Node) Apply(ctx context.Context) (string, error) {
	ws, unlock, err := n.ready(ctx)
	if err != nil {
		return "", err
	}
	defer unlock()
	step := logging.StartStep(n.opts.Log, "plan and apply "+ws.Bin.Kind+" workspace "+ws.Name)
	changes, err := ws.Plan(ctx)
	if err == nil && changes {
		err = ws.Apply(ctx)
	}
	step.Done(err, "changes", changes)
	if err != nil {
		return "", err
	}
	if !changes {
		n.opts.Log.Info("the management node's resources are as planned: nothing to change")
	}
	return n.floatingIP()
}

func (n *Node) floatingIP() (string, error) {
	st, err := n.Workspace().ReadState()
	if err != nil {
		return "", err
	}
	var fip string
	ok, err := st.Output("floating_ip", &fip)
	if err != nil {
		return "", err
	}
	if !ok || fip == "" {
		return "", fmt.Errorf("lab %s has no remote management node (no floating_ip in %s): run make create MGMT_MODE=remote", n.names.Prefix, n.Workspace().StateFile())
	}
	return fip, nil
}

// DryRun runs the preflight and plans without applying: the changes an
// apply would make (SCS's make dry-run). It creates nothing in the cloud;
// locally it writes the variables and, the first time, the lab's ssh key.
func (n *Node) DryRun(ctx context.Context) ([]Change, error) {
	if _, err := n.Plan(ctx); err != nil {
		return nil, err
	}
	ws, unlock, err := n.ready(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer os.Remove(ws.planFile())
	if _, err := ws.Plan(ctx); err != nil {
		return nil, err
	}
	return ws.ShowPlan(ctx)
}

// Create builds the node and has it run `make create`: preflight (bad
// input is a *BadInputError, nothing planned), the lab's credential, plan
// and apply, then the bootstrap, followed and bounded by remote_timeout.
func (n *Node) Create(ctx context.Context) error {
	s := n.opts.Settings
	src, err := n.sourceRef(ctx)
	if err != nil {
		return err
	}
	if _, err := n.Plan(ctx); err != nil {
		return err
	}
	if n.opts.LabCredential == nil {
		return errors.New("remote: no LabCredential")
	}
	cred, err := n.opts.LabCredential(ctx)
	if err != nil {
		return err
	}
	fip, err := n.Apply(ctx)
	if err != nil {
		return err
	}
	n.opts.Log.Info("management node "+n.names.Server()+" is at "+fip, "ssh", n.ssh(fip).Line())
	return n.bootstrap(ctx, fip, src, cred, s.RemoteTimeout)
}

// record is what capilab did on the node, kept in the lab's state.
type record struct {
	ServerID string    `json:"server_id"`
	Source   string    `json:"source"`   // commit shipped
	Started  time.Time `json:"started"`  // when make create was started there
	Finished time.Time `json:"finished"` // when it ended well (zero: not yet)
	Clean    bool      `json:"clean"`    // make clean ended well there
}

func (n *Node) readRecord() (record, error) {
	var r record
	data, err := os.ReadFile(n.recordFile())
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(data, &r)
}

func (n *Node) writeRecord(r record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(n.recordFile(), append(data, '\n'), 0o600)
}

func (n *Node) ssh(host string) SSH {
	return SSH{Client: n.opts.SSHClient, Host: host, User: n.opts.Settings.SSHUsername, KeyFile: n.KeyFile(), KnownHosts: n.knownHosts(), Env: n.opts.Env}
}

// Delete deletes the management cluster on the node — with workload, the
// lab's workload clusters first (`make clean` there); without, `make
// mgmt-delete` there, which refuses while workload clusters exist — when
// `make create` ever ran on this server and it still exists; then it
// destroys the node, deletes the workspace and the lab's local files of
// it, and revokes the lab's credential.
func (n *Node) Delete(ctx context.Context, workload bool) error {
	ws := n.Workspace()
	st, err := ws.ReadState()
	if err != nil {
		return err
	}
	if len(st.Resources) == 0 {
		n.opts.Log.Info("lab " + n.names.Prefix + " has no remote management node in its state: nothing to destroy")
	} else {
		job := "mgmt-delete"
		if workload {
			job = "clean"
		}
		if err := n.cleanOnNode(ctx, st, job); err != nil {
			return err
		}
		if _, err := os.Stat(ws.VarFile()); errors.Is(err, fs.ErrNotExist) {
			// Destroy needs every variable set; their values do not matter.
			if err := (Variables{Prefix: n.names.Prefix, Cloud: n.opts.Settings.Cloud, MgmtCIDR: n.opts.Settings.MgmtCIDR, RestrictMgmtServer: []string{"0.0.0.0/0"}, DNSNameservers: []string{}}).Write(ws.VarFile()); err != nil {
				return err
			}
		}
	}
	if _, err := os.Stat(filepath.Dir(ws.StateFile())); err == nil {
		wsr, unlock, err := n.ready(ctx)
		if err != nil {
			return err
		}
		if len(st.Resources) > 0 {
			step := logging.StartStep(n.opts.Log, "destroy "+wsr.Bin.Kind+" workspace "+wsr.Name)
			err = wsr.Destroy(ctx)
			step.Done(err)
		}
		if err == nil {
			err = wsr.DeleteWorkspace(ctx)
		}
		unlock()
		if err != nil {
			return err
		}
	}
	for _, f := range []string{ws.VarFile(), n.KeyFile(), n.KeyFile() + ".pub", n.knownHosts(), n.recordFile(), ws.planFile()} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	_ = os.Remove(ws.LabDir()) // only when empty
	if n.opts.RevokeLabCredential != nil {
		return n.opts.RevokeLabCredential(ctx)
	}
	return nil
}

// cleanOnNode runs job (make clean or make mgmt-delete) on the node when
// a management cluster can exist there.
func (n *Node) cleanOnNode(ctx context.Context, st *State, job string) error {
	rec, err := n.readRecord()
	if err != nil {
		return err
	}
	ids := st.IDs("openstack_compute_instance_v2")
	if rec.Started.IsZero() || len(ids) == 0 || rec.ServerID != ids[0] {
		n.opts.Log.Info("make create never started on the management node: no workload clusters to delete there")
		return nil
	}
	if n.opts.ServerExists != nil {
		exists, err := n.opts.ServerExists(ctx, ids[0])
		if err != nil {
			return err
		}
		if !exists {
			n.opts.Log.Warn("the management node's server " + ids[0] + " is gone (deleted outside capilab?): its workload clusters cannot be deleted through it; make fullclean deletes what is left of them")
			return nil
		}
	}
	fip, err := n.floatingIP()
	if err != nil {
		return err
	}
	sh := n.ssh(fip)
	step := logging.StartStep(n.opts.Log, "make "+job+" on the management node "+fip)
	err = n.runJob(ctx, sh, job, n.opts.Settings.RemoteTimeout)
	step.Done(err)
	if err != nil {
		return fmt.Errorf("%w\nthe node and its workload clusters were left as they are; to delete everything of the lab from the cloud without the node: make fullclean, then make clean", err)
	}
	rec.Clean = true
	return n.writeRecord(rec)
}

// Status is the node as capilab sees it.
type Status struct {
	Exists     bool   // the state tracks a server
	ServerID   string // from the state
	FloatingIP string
	Resources  []StateResource
	// ServerFound is whether the cloud still has the server (when checked).
	ServerFound bool
	// Create is when `make create` was last started and whether it ended well, from the local record.
	CreateStarted  time.Time
	CreateFinished time.Time
}

// Status reads the state and record and asks the cloud whether the server exists.
func (n *Node) Status(ctx context.Context) (Status, error) {
	st, err := n.Workspace().ReadState()
	if err != nil {
		return Status{}, err
	}
	s := Status{Resources: st.Resources}
	ids := st.IDs("openstack_compute_instance_v2")
	if len(ids) == 0 {
		return s, nil
	}
	s.Exists, s.ServerID = true, ids[0]
	_, _ = st.Output("floating_ip", &s.FloatingIP)
	if n.opts.ServerExists != nil {
		if s.ServerFound, err = n.opts.ServerExists(ctx, s.ServerID); err != nil {
			return s, err
		}
	}
	rec, err := n.readRecord()
	if err != nil {
		return s, err
	}
	s.CreateStarted, s.CreateFinished = rec.Started, rec.Finished
	return s, nil
}

// SSH opens ssh to the node with the terminal of the caller (args: a
// command to run there instead of a login shell).
func (n *Node) SSH(ctx context.Context, args ...string) error {
	fip, err := n.floatingIP()
	if err != nil {
		return err
	}
	c := n.ssh(fip).Interactive(args...)
	c.Stdin, c.Stdout, c.Stderr = n.opts.Stdin, n.opts.Stdout, n.opts.Stderr
	return c.Run(ctx)
}

// sourceRef is the commit the node gets: the checkout's HEAD. Uncommitted
// changes do not reach the node; that is said, not hidden.
func (n *Node) sourceRef(ctx context.Context) (string, error) {
	git := func(args ...string) *command.Cmd {
		return command.New("git", append([]string{"-C", n.opts.RepoDir}, args...)...).WithEnv(n.opts.Env)
	}
	out, err := git("rev-parse", "--verify", "HEAD^{commit}").Output(ctx)
	if err != nil {
		return "", fmt.Errorf("mgmt_mode remote ships the checkout's HEAD commit to the node, and %s has none: %w", n.opts.RepoDir, err)
	}
	ref := strings.TrimSpace(string(out))
	if dirty, err := git("status", "--porcelain", "--untracked-files=no").Output(ctx); err == nil && len(strings.TrimSpace(string(dirty))) > 0 {
		n.opts.Log.Warn("the checkout has uncommitted changes: the node gets commit " + ref[:12] + " without them")
	}
	return ref, nil
}

// Forward runs `make <target>` on the node (create_cluster,
// delete_cluster, check, check-quick, …) with this run's settings — the
// node's lab.yaml is written anew from them, so CLUSTER, SONOMODE and the
// cluster's settings apply there as they would here — and follows it to
// its end, bounded by remote_timeout.
func (n *Node) Forward(ctx context.Context, target string) error {
	fip, err := n.floatingIP()
	if err != nil {
		return err
	}
	sh := n.ssh(fip)
	settings, err := n.NodeSettings(n.names.Prefix)
	if err != nil {
		return err
	}
	if err := n.putFile(ctx, sh, n.setup().SourceDir()+"/lab.yaml", settings); err != nil {
		return err
	}
	step := logging.StartStep(n.opts.Log, "make "+target+" on the management node "+fip, "bound", n.opts.Settings.RemoteTimeout)
	err = n.runJob(ctx, sh, target, n.opts.Settings.RemoteTimeout)
	step.Done(err)
	return err
}

// ErrNoCluster says a workload cluster does not exist on the node.
var ErrNoCluster = errors.New("no such workload cluster on the management node")

// Kubeconfig is the management cluster's admin kubeconfig, read from its
// kind node container on the node, with the floating IP and the port the
// API server is published on as its server. When the API server listens on
// the node's loopback only, the kubeconfig is still returned and a warning
// says how to reach it (an ssh tunnel).
func (n *Node) Kubeconfig(ctx context.Context) ([]byte, error) {
	fip, err := n.floatingIP()
	if err != nil {
		return nil, err
	}
	cp := n.names.KindControlPlane()
	script := fmt.Sprintf("set -e; docker port %[1]s 6443/tcp; echo ---capilab---; docker exec %[1]s cat /etc/kubernetes/admin.conf", cp)
	out, err := n.ssh(fip).Command(script).Output(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the management cluster's kubeconfig from %s on the node (is make create done there? make ssh MGMT_MODE=remote): %w", cp, err)
	}
	ports, conf, ok := strings.Cut(string(out), "---capilab---\n")
	if !ok {
		return nil, fmt.Errorf("unexpected answer from the node reading the kubeconfig")
	}
	addr, port, err := publishedPort(ports)
	if err != nil {
		return nil, err
	}
	if !reachableFromOutside(addr) {
		n.opts.Log.Warn(fmt.Sprintf("the management cluster's API server listens on %s:%s on the node only; reach it through ssh: %s -N -L %s:127.0.0.1:%s (and use server https://127.0.0.1:%s)", addr, port, n.ssh(fip).Line(), port, port, port))
	}
	return RewriteKubeconfig([]byte(conf), fip, port, n.names.KindCluster())
}

// WorkloadKubeconfig is the admin kubeconfig of workload cluster cluster
// (its Cluster API secret <cluster>-kubeconfig in namespace), read through
// the management cluster on the node; ErrNoCluster when there is none.
func (n *Node) WorkloadKubeconfig(ctx context.Context, cluster, namespace string) ([]byte, error) {
	fip, err := n.floatingIP()
	if err != nil {
		return nil, err
	}
	script := fmt.Sprintf("docker exec %s kubectl --kubeconfig /etc/kubernetes/admin.conf get secret -n %s %s-kubeconfig -o 'jsonpath={.data.value}' --ignore-not-found | base64 -d",
		n.names.KindControlPlane(), namespace, cluster)
	out, err := n.ssh(fip).Command(script).Output(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading workload cluster %s's kubeconfig through the management cluster: %w", cluster, err)
	}
	if len(strings.TrimSpace(string(out))) == 0 {
		return nil, ErrNoCluster
	}
	return out, nil
}
