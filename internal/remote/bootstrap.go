package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/command"
	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/wait"
)

// bootstrap waits for the node (ssh, then cloud-init's preparation),
// ships capilab, its settings and the credential, and runs `make create`
// there; all of it within budget.
func (n *Node) bootstrap(ctx context.Context, fip, src string, cred Credential, budget time.Duration) error {
	deadline := time.Now().Add(budget)
	left := func() time.Duration { return max(time.Until(deadline).Round(time.Second), time.Second) }
	sh := n.ssh(fip)
	step := logging.StartStep(n.opts.Log, "bootstrap of the management node "+n.names.Server()+" at "+fip, "bound", budget)

	err := n.waitSSH(ctx, sh, left())
	if err == nil {
		err = n.follow(ctx, sh, "prepare", "cloud-init to prepare the node (packages, Docker, Go "+n.opts.Pins.NodeGo+")", left())
	}
	if err == nil {
		err = n.ship(ctx, sh, src, cred)
	}
	if err == nil {
		err = n.runJob(ctx, sh, "create", left())
	}
	step.Done(err)
	if err != nil {
		return fmt.Errorf("management node %s (%s): %w\n(log in with: make ssh MGMT_MODE=remote, or %s)", n.names.Server(), fip, err, sh.Line())
	}
	rec, rerr := n.readRecord()
	if rerr != nil {
		return rerr
	}
	rec.Finished = time.Now().UTC()
	return n.writeRecord(rec)
}

// waitSSH waits until ssh to the node runs a command.
func (n *Node) waitSSH(ctx context.Context, sh SSH, bound time.Duration) error {
	n.opts.Log.Info("waiting for ssh to "+sh.User+"@"+sh.Host+" (the node booting)", "bound", bound)
	return wait.For(ctx, n.opts.Log, wait.Spec{What: "ssh to " + sh.User + "@" + sh.Host + " (the node booting)", Timeout: bound, Interval: n.opts.Poll, ReportEvery: 15 * time.Second},
		func(ctx context.Context) (bool, string, error) {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			err := sh.Command("true").Run(cctx)
			if err != nil {
				return false, lastLine(err), nil
			}
			return true, "", nil
		})
}

// runJob starts a make target on the node through capilab-bootstrap and
// follows it to its end.
func (n *Node) runJob(ctx context.Context, sh SSH, job string, bound time.Duration) error {
	if !slices.Contains(NodeTargets, job) {
		return fmt.Errorf("make %s is not a target capilab runs on the management node (%s)", job, strings.Join(NodeTargets, ", "))
	}
	if err := sh.Command(nodeBootstrap + " start " + job).Run(ctx); err != nil {
		return fmt.Errorf("starting make %s on the node: %w", job, err)
	}
	if job == "create" {
		rec, err := n.readRecord()
		if err != nil {
			return err
		}
		st, err := n.Workspace().ReadState()
		if err != nil {
			return err
		}
		rec.ServerID, rec.Source = firstOr(st.IDs("openstack_compute_instance_v2"), ""), n.shipped
		rec.Started, rec.Finished, rec.Clean = time.Now().UTC(), time.Time{}, false
		if err := n.writeRecord(rec); err != nil {
			return err
		}
	}
	return n.follow(ctx, sh, job, "make "+job+" on the node", bound)
}

// NodeTargets are the make targets capilab runs on the management node
// (capilab-bootstrap start accepts the same list).
var NodeTargets = []string{"create", "clean", "mgmt-delete", "create_cluster", "delete_cluster", "check", "check-quick", "check-conformance", "check-storage", "check-csi"}

// progress is one look at a job on the node.
type progress struct {
	CloudInit string // cloud-init's status: running, done, error, … ("" unknown)
	Size      int64  // bytes in the job's log
	Status    string // not-started, running, ok, failed: …
	Log       []byte // the log from the offset asked for
}

// progressScript prints cloud-init's status, then capilab-bootstrap's.
func progressScript(job string, offset int64) string {
	return fmt.Sprintf(`printf 'cloud-init=%%s\n' "$(cloud-init status 2>/dev/null | sed -n 's/^status: //p')"; if [ -x %s ]; then %s status %s %d; else echo '0 not-written'; fi`,
		nodeBootstrap, nodeBootstrap, job, offset)
}

func parseProgress(out []byte) (progress, error) {
	var p progress
	line, rest, ok := bytes.Cut(out, []byte("\n"))
	if !ok || !bytes.HasPrefix(line, []byte("cloud-init=")) {
		return p, fmt.Errorf("unexpected progress answer %q", firstBytes(out, 80))
	}
	p.CloudInit = string(bytes.TrimPrefix(line, []byte("cloud-init=")))
	line, rest, _ = bytes.Cut(rest, []byte("\n"))
	size, status, ok := strings.Cut(strings.TrimSpace(string(line)), " ")
	n, err := strconv.ParseInt(size, 10, 64)
	if !ok || err != nil {
		return p, fmt.Errorf("unexpected progress answer %q", firstBytes(line, 80))
	}
	p.Size, p.Status, p.Log = n, status, rest
	return p, nil
}

func firstBytes(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// follow waits for a job on the node to end, relaying its log as it grows.
func (n *Node) follow(ctx context.Context, sh SSH, job, what string, bound time.Duration) error {
	var offset int64
	var tail []string
	relay := &lineWriter{emit: func(line string) {
		n.opts.Log.Info("node " + job + ": " + line)
		tail = append(tail, line)
		if len(tail) > 30 {
			tail = tail[len(tail)-30:]
		}
	}}
	var failure error
	err := wait.For(ctx, n.opts.Log, wait.Spec{What: what, Timeout: bound, Interval: n.opts.Poll, ReportEvery: time.Minute},
		func(ctx context.Context) (bool, string, error) {
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			out, err := sh.Command(progressScript(job, offset)).Output(cctx)
			if err != nil {
				// The node may be rebooting or the network flaky: keep looking until the bound.
				return false, "ssh: " + lastLine(err), nil
			}
			p, err := parseProgress(out)
			if err != nil {
				return false, "", err
			}
			if p.Size < offset { // a new run truncated the log
				offset = 0
			}
			relay.Write(p.Log)
			offset = max(offset, p.Size)
			switch {
			case p.Status == "ok":
				relay.Flush()
				return true, "", nil
			case strings.HasPrefix(p.Status, "failed"):
				relay.Flush()
				failure = fmt.Errorf("%s %s; last lines of its log:\n  %s", what, p.Status, strings.Join(tail, "\n  "))
				return true, "", nil
			case job == "prepare" && p.Status != "running" && (p.CloudInit == "done" || p.CloudInit == "error" || p.CloudInit == "degraded done"):
				failure = fmt.Errorf("cloud-init ended (%s) without preparing the node (capilab-bootstrap: %s): see /var/log/cloud-init-output.log on the node", p.CloudInit, p.Status)
				return true, "", nil
			}
			return false, fmt.Sprintf("%s; cloud-init %s; %d bytes of log", p.Status, orUnknown(p.CloudInit), p.Size), nil
		})
	if err != nil {
		return err
	}
	return failure
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func lastLine(err error) string {
	var re *command.RunError
	if errors.As(err, &re) && strings.TrimSpace(re.Tail) != "" {
		lines := strings.Split(strings.TrimSpace(re.Tail), "\n")
		return strings.TrimSpace(lines[len(lines)-1])
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// ship puts capilab's source at commit src, the lab's settings and the
// credential on the node. Secrets travel on ssh's standard input only,
// never on a command line, and land in 0600 files.
func (n *Node) ship(ctx context.Context, sh SSH, src string, cred Credential) error {
	setup := n.setup()
	n.shipped = src
	step := logging.StartStep(n.opts.Log, "ship capilab "+src[:min(12, len(src))]+", settings and credential to the node")
	tarball, err := command.New("git", "-C", n.opts.RepoDir, "archive", "--format=tar", src).WithEnv(n.opts.Env).Output(ctx)
	if err != nil {
		step.Done(err)
		return err
	}
	dir := setup.SourceDir()
	unpack := fmt.Sprintf("set -e; rm -rf %[1]s.new; mkdir -p %[1]s.new; tar -x -C %[1]s.new; rm -rf %[1]s; mv %[1]s.new %[1]s", dir)
	if err := sh.Command(unpack).WithStdin(bytes.NewReader(tarball)).Run(ctx); err != nil {
		step.Done(err)
		return fmt.Errorf("unpacking capilab on the node: %w", err)
	}
	stateDir := setup.StateDir()
	entry := maps.Clone(cred.Entry)
	if cred.CACertFile != "" {
		ca, err := os.ReadFile(cred.CACertFile)
		if err != nil {
			step.Done(err)
			return err
		}
		remoteCA := path.Join(stateDir, "cacert-"+cred.CloudName+".pem")
		if err := n.putFile(ctx, sh, remoteCA, ca); err != nil {
			step.Done(err)
			return err
		}
		entry["cacert"] = remoteCA
	}
	// Merge the entry into the node's clouds.yaml: the node's capilab keeps
	// its own entries (its clusters' credentials) there.
	current, err := sh.Command("cat " + stateDir + "/clouds.yaml 2>/dev/null || true").Output(ctx)
	if err != nil {
		step.Done(err)
		return err
	}
	doc := map[string]any{}
	if len(bytes.TrimSpace(current)) > 0 {
		if err := yaml.Unmarshal(current, &doc); err != nil {
			step.Done(err)
			return fmt.Errorf("the node's %s/clouds.yaml: %w", stateDir, err)
		}
	}
	clouds, _ := doc["clouds"].(map[string]any)
	if clouds == nil {
		clouds = map[string]any{}
	}
	clouds[cred.CloudName] = entry
	doc["clouds"] = clouds
	data, err := yaml.Marshal(doc)
	if err != nil {
		step.Done(err)
		return err
	}
	if err := n.putFile(ctx, sh, stateDir+"/clouds.yaml", data); err != nil {
		step.Done(err)
		return err
	}
	settings, err := n.NodeSettings(cred.CloudName)
	if err != nil {
		step.Done(err)
		return err
	}
	err = n.putFile(ctx, sh, dir+"/lab.yaml", settings)
	step.Done(err)
	return err
}

// putFile writes a private file (0600, in a 0700 directory) on the node,
// atomically, from ssh's standard input.
func (n *Node) putFile(ctx context.Context, sh SSH, file string, data []byte) error {
	script := fmt.Sprintf("set -e; umask 077; mkdir -p %[1]s; cat > %[2]s.tmp; mv -f %[2]s.tmp %[2]s", path.Dir(file), file)
	if err := sh.Command(script).WithStdin(bytes.NewReader(data)).Run(ctx); err != nil {
		return fmt.Errorf("writing %s on the node: %w", file, err)
	}
	return nil
}

// nodeOverrides are the settings the node's capilab gets instead of this
// machine's: it runs the management cluster locally, with the lab's
// credential, and keeps its state outside the source it gets anew.
func (n *Node) nodeOverrides(cloudName string) map[string]any {
	setup := n.setup()
	return map[string]any{
		"cloud":         cloudName,
		"mgmt_mode":     "local",
		"tofu":          "",
		"state_dir":     setup.StateDir(),
		"artifacts_dir": setup.ArtifactsDir(),
	}
}

// NodeSettings is the lab.yaml the node's capilab reads: every setting of
// this run, with the node's overrides.
func (n *Node) NodeSettings(cloudName string) ([]byte, error) {
	over := n.nodeOverrides(cloudName)
	doc := map[string]any{}
	for _, k := range config.Knobs() {
		doc[k.Key] = k.Value(n.opts.Settings)
	}
	maps.Copy(doc, over)
	keys := slices.Sorted(maps.Keys(doc))
	var b strings.Builder
	b.WriteString("# Written by capilab on " + time.Now().UTC().Format(time.RFC3339) + " for the management node of lab " + n.names.Prefix + ":\n# the settings of the make create that built the node, run here with mgmt_mode local.\n")
	for _, k := range keys {
		line, err := yaml.Marshal(map[string]any{k: doc[k]})
		if err != nil {
			return nil, err
		}
		b.Write(line)
	}
	return []byte(b.String()), nil
}

func firstOr(list []string, def string) string {
	if len(list) == 0 {
		return def
	}
	return list[0]
}
