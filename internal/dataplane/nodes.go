package dataplane

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/dataplane/cloudinit"
	"github.com/capilab/capilab/internal/dataplane/docker"
	"github.com/capilab/capilab/internal/image"
)

// DefaultNodeImageProperty is the Glance image property that marks a node
// image: its value is the container image a server of that image runs as
// (e.g. the locally built kind node image).
const DefaultNodeImageProperty = image.PropNodeContainerImage

// FaultRecorder makes a failure visible on the server (Nova's fault, as
// `openstack server show` prints it) before the agent sets it to ERROR.
type FaultRecorder interface {
	RecordFault(ctx context.Context, serverID string, message, details string) error
}

// node is a server the agent runs as a container.
type node struct {
	server  Server
	image   string // container image
	port    Port   // primary port
	subnet  string // the port's address in the mirrored subnet
	ip      string
	network string // Neutron network of the primary port
	extra   []Port // further ports (attached without MAC mirroring)
}

// nodeState is what the agent remembers about a node container between
// passes (rebuilt from Docker after a restart).
type nodeState struct {
	startedAt string // the container start the program was launched for
	done      bool   // cloud-init finished (done or failed) and was handled
	reported  bool   // ERROR already reported
	running   time.Time
}

// desiredNodes picks the servers that run as containers and their ports.
func (a *Agent) desiredNodes(ctx context.Context, servers []Server, ports []Port) (map[string]*node, map[string]string) {
	byDevice := map[string][]Port{}
	for _, p := range ports {
		byDevice[p.DeviceID] = append(byDevice[p.DeviceID], p)
	}
	nodes := map[string]*node{}
	problems := map[string]string{}
	for _, s := range servers {
		img, err := a.glance.containerImage(ctx, s.ImageID())
		if err != nil {
			problems[s.ID] = err.Error()
			continue
		}
		if img == "" {
			continue
		}
		ps := byDevice[s.ID]
		n := &node{server: s, image: img}
		sort.Slice(ps, func(i, j int) bool { return ps[i].ID < ps[j].ID })
		for _, p := range ps {
			if n.ip == "" {
				for _, f := range p.FixedIPs {
					if strings.Contains(f.IPAddress, ".") {
						n.port, n.ip, n.subnet, n.network = p, f.IPAddress, f.SubnetID, p.NetworkID
						break
					}
				}
				if n.ip != "" {
					continue
				}
			}
			n.extra = append(n.extra, p)
		}
		nodes[s.ID] = n
	}
	return nodes, problems
}

// nodeContainerName names a server's container: recognisable, unique per server.
func (a *Agent) nodeContainerName(s Server) string {
	return a.opts.Owner + "-" + sanitize(s.HostnameOrName(), 40) + "-" + short(s.ID)
}

// specHash changes when the container must be made anew.
func (n *node) specHash(netName string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{n.image, n.ip, n.port.MACAddress, netName, n.server.HostnameOrName()}, "\x00")))
	return hex.EncodeToString(h[:8])
}

// containerSpec is a kind-style node: privileged, its own cgroup
// namespace, tmpfs /run and /tmp, an anonymous /var (removed with the
// container), the host's kernel modules read-only, systemd as init.
func (a *Agent) nodeContainerSpec(n *node, m mirror) docker.ContainerSpec {
	no := false
	return docker.ContainerSpec{
		Name:     a.nodeContainerName(n.server),
		Image:    n.image,
		Hostname: n.server.HostnameOrName(),
		Tty:      true,
		Labels: map[string]string{
			LabelOwner:     a.opts.Owner,
			LabelKind:      KindNode,
			LabelServerID:  n.server.ID,
			LabelNetworkID: n.network,
			LabelSpec:      n.specHash(m.DockerName),
		},
		Network:      m.DockerName,
		IPv4:         n.ip,
		MAC:          n.port.MACAddress,
		Privileged:   true,
		SecurityOpt:  []string{"seccomp=unconfined", "apparmor=unconfined"},
		Tmpfs:        map[string]string{"/run": "rw", "/tmp": "rw"},
		Volumes:      []string{"/var"},
		Binds:        []string{"/lib/modules:/lib/modules:ro"},
		CgroupnsMode: "private",
		Init:         &no,
	}
}

// reconcileNodes converges node containers: create and start the ones of
// ACTIVE servers, run their cloud-init once, stop the ones of stopped
// servers, remove the ones whose server is gone.
func (a *Agent) reconcileNodes(ctx context.Context, nodes map[string]*node, mirrors map[string]mirror, netProblems map[string]string) (int, []error) {
	existing, err := a.opts.Docker.ContainerList(ctx, map[string][]string{"label": {LabelOwner + "=" + a.opts.Owner, LabelKind + "=" + KindNode}})
	if err != nil {
		return 0, []error{err}
	}
	byServer := map[string]docker.ContainerSummary{}
	var errs []error
	for _, c := range existing {
		sid := c.Labels[LabelServerID]
		n, ok := nodes[sid]
		if !ok || serverGone(n.server) {
			a.log.Info("removing node container: its server is gone", "container", c.Name(), "server", sid)
			if err := a.opts.Docker.ContainerRemove(ctx, c.ID); err != nil {
				errs = append(errs, fmt.Errorf("remove container %s: %w", c.Name(), err))
			}
			a.forgetNode(c.ID)
			continue
		}
		if _, dup := byServer[sid]; dup {
			a.log.Warn("removing duplicate node container", "container", c.Name(), "server", sid)
			if err := a.opts.Docker.ContainerRemove(ctx, c.ID); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		byServer[sid] = c
	}
	running := 0
	ids := make([]string, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		n := nodes[id]
		c, have := byServer[id]
		switch {
		case serverGone(n.server):
			continue
		case n.server.Status == "ACTIVE":
			ok, err := a.ensureNode(ctx, n, c, have, mirrors, netProblems)
			if err != nil {
				errs = append(errs, fmt.Errorf("server %s (%s): %w", n.server.Name, n.server.ID, err))
			}
			if ok {
				running++
			}
		case have && (n.server.Status == "SHUTOFF" || n.server.Status == "SUSPENDED" || n.server.Status == "PAUSED" || n.server.Status == "SHELVED" || n.server.Status == "SHELVED_OFFLOADED"):
			if c.State == "running" {
				a.log.Info("stopping node container: server is "+n.server.Status, "container", c.Name())
				if err := a.opts.Docker.ContainerStop(ctx, c.ID, 30*time.Second); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return running, errs
}

func serverGone(s Server) bool {
	return s.Status == "DELETED" || s.Status == "SOFT_DELETED" || (s.TaskState != nil && *s.TaskState == "deleting")
}

func (a *Agent) forgetNode(containerID string) {
	a.mu.Lock()
	delete(a.nodes, containerID)
	a.mu.Unlock()
}

// ensureNode makes the container of an ACTIVE server exist and run, and
// drives its cloud-init. It reports whether the container runs.
func (a *Agent) ensureNode(ctx context.Context, n *node, c docker.ContainerSummary, have bool, mirrors map[string]mirror, netProblems map[string]string) (bool, error) {
	if n.ip == "" {
		return false, a.fail(ctx, n, "the server has no port with an IPv4 address: devcloud's data plane needs one to place its node container", "")
	}
	m, ok := mirrors[n.network]
	if !ok {
		if p := netProblems[n.network]; p != "" {
			return false, a.fail(ctx, n, p, "")
		}
		return false, nil // the network mirror comes in a later pass
	}
	if have && c.Labels[LabelSpec] != n.specHash(m.DockerName) {
		a.log.Info("node container differs from its server (image, address or network changed): recreating", "container", c.Name())
		if err := a.opts.Docker.ContainerRemove(ctx, c.ID); err != nil {
			return false, err
		}
		a.forgetNode(c.ID)
		have = false
	}
	if !have {
		spec := a.nodeContainerSpec(n, m)
		if _, err := a.opts.Docker.ImageInspect(ctx, n.image); err != nil {
			if docker.IsNotFound(err) {
				return false, a.fail(ctx, n, fmt.Sprintf("node container image %s (Glance property %s of image %s) is not in the Docker engine", n.image, a.opts.NodeImageProperty, n.server.ImageID()), "")
			}
			return false, err
		}
		start := time.Now()
		id, err := a.opts.Docker.ContainerCreate(ctx, spec)
		if docker.IsConflict(err) {
			// A container of that name exists without our labels for this
			// server: never ours to touch.
			return false, a.fail(ctx, n, fmt.Sprintf("a Docker container named %s already exists and is not this server's", spec.Name), err.Error())
		}
		if err != nil {
			return false, a.fail(ctx, n, "creating the node container failed", err.Error())
		}
		for _, p := range n.extra {
			a.log.Warn("extra port of the server is not attached (one network per node container)", "server", n.server.ID, "port", p.ID)
		}
		if err := a.opts.Docker.ContainerStart(ctx, id); err != nil {
			_ = a.opts.Docker.ContainerRemove(ctx, id)
			return false, a.fail(ctx, n, "starting the node container failed", err.Error())
		}
		a.log.Info("node container started", "container", spec.Name, "server", n.server.ID, "ip", n.ip, "image", n.image,
			"took", time.Since(start).Round(time.Millisecond), "since_server_created", time.Since(n.server.Created).Round(time.Second))
		c = docker.ContainerSummary{ID: id, Names: []string{"/" + spec.Name}, State: "running", Labels: spec.Labels}
	}
	if c.State != "running" {
		a.log.Info("starting node container of an ACTIVE server", "container", c.Name(), "state", c.State)
		if err := a.opts.Docker.ContainerStart(ctx, c.ID); err != nil {
			return false, a.fail(ctx, n, "starting the node container failed", err.Error())
		}
	}
	return true, a.bootstrap(ctx, n, c.ID, c.Name())
}

// bootstrap runs the server's cloud-init in its container once per boot of
// the container and reports a failure once.
func (a *Agent) bootstrap(ctx context.Context, n *node, cid, name string) error {
	info, err := a.opts.Docker.ContainerInspect(ctx, cid)
	if err != nil {
		return err
	}
	if !info.State.Running {
		return nil
	}
	a.mu.Lock()
	st := a.nodes[cid]
	if st == nil {
		st = &nodeState{}
		a.nodes[cid] = st
	}
	a.mu.Unlock()
	if st.reported {
		return nil
	}
	prog, perr := a.program(n)
	if perr != nil {
		st.reported = true
		return a.fail(ctx, n, "cloud-init: "+perr.Error(), "")
	}
	if st.startedAt != info.State.StartedAt {
		if err := a.stage(ctx, cid, prog); err != nil {
			return err
		}
		// Detached: the program outlives this call and an agent restart;
		// its own lock keeps a second start from running it twice.
		cmd := []string{"/bin/sh", "-c", "setsid /bin/sh " + cloudinit.ShellQuote(prog.Entry()) + " </dev/null >/dev/null 2>&1 &"}
		res, err := a.opts.Docker.Exec(ctx, cid, cmd, nil)
		if err != nil {
			return fmt.Errorf("start cloud-init in %s: %w", name, err)
		}
		if res.ExitCode == 126 || res.ExitCode == 127 {
			st.reported = true
			return a.fail(ctx, n, fmt.Sprintf("node container image %s cannot run cloud-init: /bin/sh is missing or not executable (exit %d)", n.image, res.ExitCode), string(res.Stderr)+string(res.Stdout))
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("start cloud-init in %s: exit %d: %s", name, res.ExitCode, res.Stderr)
		}
		st.startedAt = info.State.StartedAt
		st.done = false
		a.log.Info("cloud-init started", "container", name, "server", n.server.ID)
	}
	if st.done {
		return nil
	}
	res, err := a.opts.Docker.Exec(ctx, cid, []string{"cat", prog.StatusFile()}, nil)
	if err != nil {
		return err
	}
	status := strings.TrimSpace(string(res.Stdout))
	switch {
	case status == cloudinit.StatusDone:
		st.done = true
		a.log.Info("cloud-init done", "container", name, "server", n.server.ID, "since_server_created", time.Since(n.server.Created).Round(time.Second))
	case strings.HasPrefix(status, cloudinit.StatusFailed):
		st.done, st.reported = true, true
		tail, _ := a.opts.Docker.Exec(ctx, cid, []string{"tail", "-c", "4000", prog.OutputFile()}, nil)
		details := ""
		if tail != nil {
			details = string(tail.Stdout)
		}
		return a.fail(ctx, n, "cloud-init "+status+": "+lastLine(details, 120), details)
	}
	return nil
}

func lastLine(s string, max int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "=== ") {
			if len(l) > max {
				l = l[:max] + "…"
			}
			return l
		}
	}
	return ""
}

// program parses the server's user data into its cloud-init program.
func (a *Agent) program(n *node) (*cloudinit.Program, error) {
	ud, err := n.server.DecodedUserData()
	if err != nil {
		return nil, fmt.Errorf("user data is not base64: %w", err)
	}
	cfg, err := cloudinit.Parse(ud, cloudinit.InstanceData{
		InstanceID:       n.server.ID,
		Name:             n.server.Name,
		Hostname:         n.server.HostnameOrName(),
		AvailabilityZone: n.server.AZ,
		Region:           a.opts.Region,
		ProjectID:        n.server.ProjectID,
		Meta:             n.server.Metadata,
	})
	if err != nil {
		return nil, err
	}
	if len(cfg.Ignored) > 0 {
		a.log.Info("cloud-init modules ignored by devcloud", "server", n.server.ID, "modules", cfg.Ignored)
	}
	return cfg.Program(n.server.ID)
}

// stage copies the program's files into the container (one archive), unless
// they are there already.
func (a *Agent) stage(ctx context.Context, cid string, p *cloudinit.Program) error {
	res, err := a.opts.Docker.Exec(ctx, cid, []string{"test", "-e", p.Entry()}, nil)
	if err != nil {
		return err
	}
	if res.ExitCode == 0 {
		return nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(p.Files))
	for name := range p.Files {
		names = append(names, name)
	}
	sort.Strings(names) // run.sh last would be nicer; the entry only runs after the put anyway
	for _, name := range names {
		f := p.Files[name]
		hdr := &tar.Header{Name: strings.TrimPrefix(p.Dir, "/") + "/" + name, Mode: f.Mode, Size: int64(len(f.Data)), ModTime: time.Now(), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return a.opts.Docker.PutArchive(ctx, cid, "/", &buf)
}

// fail makes the server go to ERROR with the reason visible, once.
func (a *Agent) fail(ctx context.Context, n *node, message, details string) error {
	a.mu.Lock()
	already := a.failed[n.server.ID]
	a.failed[n.server.ID] = true
	a.mu.Unlock()
	if already {
		return nil
	}
	a.log.Warn("server goes to ERROR", "server", n.server.ID, "name", n.server.Name, "reason", message)
	var errs []error
	if a.opts.Faults != nil {
		if err := a.opts.Faults.RecordFault(ctx, n.server.ID, "devcloud data plane: "+message, details); err != nil {
			errs = append(errs, fmt.Errorf("record fault: %w", err))
		}
	}
	if err := a.nova.resetError(ctx, n.server.ID); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		a.mu.Lock()
		delete(a.failed, n.server.ID) // try again next pass
		a.mu.Unlock()
	}
	return errors.Join(errs...)
}
