package dataplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/loadbalancers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/capilab/capilab/internal/dataplane/cloudinit"
	"github.com/capilab/capilab/internal/dataplane/docker"
)

// SelfCheck proves, with real resources, what the data plane depends on:
// Octavia brings a load balancer to ACTIVE and the agent forwards it; Nova
// boots a server of a node image and the agent runs it as a container
// whose cloud-init finishes. devcloud.sh start and status run it (cached:
// a recent pass is not repeated) and say what is broken.
type SelfCheck struct {
	Compute, Network, Image, LoadBalancer *gophercloud.ServiceClient
	Docker                                *docker.Client
	// NodeImage is the container image of the check's server and of the
	// agent's helpers; empty or not in the engine: the server check and
	// the forwarding check are reported as not run.
	NodeImage string
	Property  string // node-image property (DefaultNodeImageProperty)
	Timeout   time.Duration
	Log       *slog.Logger
}

// CheckResult is one check's outcome.
type CheckResult struct {
	Name    string  `json:"name"`
	OK      bool    `json:"ok"`
	Skipped string  `json:"skipped,omitempty"`
	Seconds float64 `json:"seconds"`
	Detail  string  `json:"detail"`
}

// SelfCheckReport is what SelfCheck writes (selfcheck.json).
type SelfCheckReport struct {
	Time   time.Time     `json:"time"`
	OK     bool          `json:"ok"`
	Checks []CheckResult `json:"checks"`
}

// Run runs the checks and cleans up after itself.
func (s *SelfCheck) Run(ctx context.Context) SelfCheckReport {
	if s.Timeout <= 0 {
		s.Timeout = 3 * time.Minute
	}
	if s.Property == "" {
		s.Property = DefaultNodeImageProperty
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	rep := SelfCheckReport{Time: time.Now().UTC(), OK: true}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "devcloud-selfcheck-" + hex.EncodeToString(b)
	var cleanups []func(context.Context) error
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		for i := len(cleanups) - 1; i >= 0; i-- {
			if err := cleanups[i](cctx); err != nil && !gophercloud.ResponseCodeIs(err, 404) {
				s.Log.Warn("self-check cleanup failed", "err", err)
			}
		}
	}()
	add := func(r CheckResult) {
		rep.Checks = append(rep.Checks, r)
		if !r.OK && r.Skipped == "" {
			rep.OK = false
		}
	}

	// A network of its own (CGNAT range, unlikely to overlap a lab's).
	n, err := networks.Create(ctx, s.Network, networks.CreateOpts{Name: name}).Extract()
	if err != nil {
		add(CheckResult{Name: "network", Detail: "Neutron: creating a network failed: " + err.Error()})
		return rep
	}
	cleanups = append(cleanups, func(ctx context.Context) error { return networks.Delete(ctx, s.Network, n.ID).ExtractErr() })
	cidr := fmt.Sprintf("100.%d.%d.0/28", 64+int(b[0])%64, b[1])
	sn, err := subnets.Create(ctx, s.Network, subnets.CreateOpts{Name: name, NetworkID: n.ID, CIDR: cidr, IPVersion: gophercloud.IPv4}).Extract()
	if err != nil {
		add(CheckResult{Name: "network", Detail: "Neutron: creating a subnet failed: " + err.Error()})
		return rep
	}
	cleanups = append(cleanups, func(ctx context.Context) error { return subnets.Delete(ctx, s.Network, sn.ID).ExtractErr() })

	add(s.checkLB(ctx, name, sn.ID, &cleanups))
	add(s.checkServer(ctx, name, n.ID, &cleanups))
	return rep
}

func (s *SelfCheck) poll(ctx context.Context, what string, cond func(ctx context.Context) (bool, string, error)) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	last := ""
	for {
		done, st, err := cond(ctx)
		if st != "" {
			last = st
		}
		if err != nil {
			return last, err
		}
		if done {
			return last, nil
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("timed out after %s waiting for %s (last: %s)", s.Timeout, what, last)
		case <-time.After(time.Second):
		}
	}
}

func (s *SelfCheck) checkLB(ctx context.Context, name, subnetID string, cleanups *[]func(context.Context) error) CheckResult {
	r := CheckResult{Name: "load balancer"}
	start := time.Now()
	defer func() { r.Seconds = time.Since(start).Seconds() }()
	// Cleanup by name: a create whose answer was lost may have made one.
	*cleanups = append(*cleanups, func(ctx context.Context) error {
		lbs, err := s.lbsNamed(ctx, name)
		if err != nil {
			return err
		}
		for _, lb := range lbs {
			if err := loadbalancers.Delete(ctx, s.LoadBalancer, lb.ID, loadbalancers.DeleteOpts{Cascade: true}).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, 404) {
				return err
			}
		}
		_, err = s.poll(ctx, "the load balancers to be deleted", func(ctx context.Context) (bool, string, error) {
			lbs, err := s.lbsNamed(ctx, name)
			return err == nil && len(lbs) == 0, "", nil
		})
		return err
	})
	lb, err := s.createLB(ctx, name, subnetID)
	if err != nil {
		r.Detail = "Octavia: creating a load balancer failed: " + err.Error()
		return r
	}
	_, err = s.poll(ctx, "load balancer "+lb.ID+" to be ACTIVE", func(ctx context.Context) (bool, string, error) {
		got, err := loadbalancers.Get(ctx, s.LoadBalancer, lb.ID).Extract()
		if err != nil {
			return false, err.Error(), nil
		}
		if got.ProvisioningStatus == "ERROR" {
			return false, "ERROR", errors.New("the load balancer went to ERROR: Octavia's worker cannot build it (see /var/lib/devcloud/log/octavia-worker.log)")
		}
		return got.ProvisioningStatus == "ACTIVE", got.ProvisioningStatus, nil
	})
	if err != nil {
		r.Detail = "Octavia: " + err.Error()
		return r
	}
	active := time.Since(start)
	if s.Docker == nil {
		r.OK, r.Detail = true, fmt.Sprintf("ACTIVE in %.0fs (no Docker engine: forwarding not checked)", active.Seconds())
		return r
	}
	if _, err := s.Docker.ImageInspect(ctx, s.NodeImage); s.NodeImage == "" || err != nil {
		r.OK, r.Detail = true, fmt.Sprintf("ACTIVE in %.0fs; forwarding not checked: the helper image %q is not in the Docker engine (make kind-image), so load balancers and floating IPs do not forward yet", active.Seconds(), s.NodeImage)
		return r
	}
	_, err = s.poll(ctx, "the data plane to forward load balancer "+lb.ID, func(ctx context.Context) (bool, string, error) {
		cs, err := s.Docker.ContainerList(ctx, map[string][]string{"label": {LabelLBID + "=" + lb.ID}})
		if err != nil {
			return false, err.Error(), nil
		}
		for _, c := range cs {
			if c.State == "running" {
				return true, "", nil
			}
		}
		return false, "no running helper container", nil
	})
	if err != nil {
		r.Detail = fmt.Sprintf("ACTIVE in %.0fs, but the data plane does not forward it: %v (agent log: /var/lib/devcloud/log/dataplane.out)", active.Seconds(), err)
		return r
	}
	r.OK, r.Detail = true, fmt.Sprintf("ACTIVE in %.0fs, forwarded by the data plane %.0fs later", active.Seconds(), (time.Since(start)-active).Seconds())
	return r
}

func (s *SelfCheck) checkServer(ctx context.Context, name, networkID string, cleanups *[]func(context.Context) error) CheckResult {
	r := CheckResult{Name: "server as node container"}
	start := time.Now()
	defer func() { r.Seconds = time.Since(start).Seconds() }()
	switch {
	case s.Docker == nil:
		r.Skipped = "no Docker engine"
	case s.NodeImage == "":
		r.Skipped = "no node image configured"
	default:
		if _, err := s.Docker.ImageInspect(ctx, s.NodeImage); err != nil {
			r.Skipped = "node image " + s.NodeImage + " is not in the Docker engine (make kind-image)"
		}
	}
	if r.Skipped != "" {
		r.Detail = "not run: " + r.Skipped
		return r
	}
	img, err := images.Create(ctx, s.Image, images.CreateOpts{Name: name, DiskFormat: "raw", ContainerFormat: "bare",
		Properties: map[string]string{s.Property: s.NodeImage}}).Extract()
	if err != nil {
		r.Detail = "Glance: creating an image failed: " + err.Error()
		return r
	}
	*cleanups = append(*cleanups, func(ctx context.Context) error { return images.Delete(ctx, s.Image, img.ID).ExtractErr() })
	if err := imagedata.Upload(ctx, s.Image, img.ID, strings.NewReader("x")).ExtractErr(); err != nil {
		r.Detail = "Glance: uploading failed: " + err.Error()
		return r
	}
	p, err := ports.Create(ctx, s.Network, ports.CreateOpts{Name: name, NetworkID: networkID}).Extract()
	if err != nil {
		r.Detail = "Neutron: creating a port failed: " + err.Error()
		return r
	}
	*cleanups = append(*cleanups, func(ctx context.Context) error { return ports.Delete(ctx, s.Network, p.ID).ExtractErr() })
	flavor, err := smallestFlavor(ctx, s.Compute)
	if err != nil {
		r.Detail = "Nova: " + err.Error()
		return r
	}
	srv, err := servers.Create(ctx, s.Compute, servers.CreateOpts{Name: name, ImageRef: img.ID, FlavorRef: flavor,
		Networks: []servers.Network{{Port: p.ID}}, UserData: []byte("#cloud-config\nruncmd:\n- echo devcloud self-check\n")}, nil).Extract()
	if err != nil {
		r.Detail = "Nova: creating a server failed: " + err.Error()
		return r
	}
	*cleanups = append(*cleanups, func(ctx context.Context) error {
		if err := servers.Delete(ctx, s.Compute, srv.ID).ExtractErr(); err != nil {
			return err
		}
		_, err := s.poll(ctx, "the server to be deleted", func(ctx context.Context) (bool, string, error) {
			_, err := servers.Get(ctx, s.Compute, srv.ID).Extract()
			return gophercloud.ResponseCodeIs(err, 404), "", nil
		})
		return err
	})
	var cid string
	_, err = s.poll(ctx, "server "+srv.ID+" to run cloud-init in its node container", func(ctx context.Context) (bool, string, error) {
		got, err := servers.Get(ctx, s.Compute, srv.ID).Extract()
		if err != nil {
			return false, err.Error(), nil
		}
		if got.Status == "ERROR" {
			msg := "the server went to ERROR"
			if got.Fault.Message != "" {
				msg += ": " + got.Fault.Message
			}
			return false, "ERROR", errors.New(msg)
		}
		if got.Status != "ACTIVE" {
			return false, "server " + got.Status, nil
		}
		if cid == "" {
			cs, err := s.Docker.ContainerList(ctx, map[string][]string{"label": {LabelServerID + "=" + srv.ID}})
			if err != nil || len(cs) == 0 || cs[0].State != "running" {
				return false, "server ACTIVE, no running node container yet", nil
			}
			cid = cs[0].ID
		}
		res, err := s.Docker.Exec(ctx, cid, []string{"cat", cloudinit.StateRoot + "/" + srv.ID + "/status"}, nil)
		if err != nil || res.ExitCode != 0 {
			return false, "node container running, cloud-init not started yet", nil
		}
		st := strings.TrimSpace(string(res.Stdout))
		if strings.HasPrefix(st, cloudinit.StatusFailed) {
			return false, st, errors.New("cloud-init " + st)
		}
		return st == cloudinit.StatusDone, "cloud-init " + st, nil
	})
	if err != nil {
		r.Detail = "data plane: " + err.Error()
		return r
	}
	r.OK, r.Detail = true, fmt.Sprintf("server create -> node container ran its cloud-init in %.0fs", time.Since(start).Seconds())
	return r
}

// createLB creates the load balancer. A POST that lost its answer (the
// connection closed under a loaded API) may still be processed later, so it
// is never repeated: the name says whether it was made (the cleanup
// deletes every load balancer of that name).
func (s *SelfCheck) createLB(ctx context.Context, name, subnetID string) (*loadbalancers.LoadBalancer, error) {
	lb, err := loadbalancers.Create(ctx, s.LoadBalancer, loadbalancers.CreateOpts{Name: name, VipSubnetID: subnetID}).Extract()
	if err == nil {
		return lb, nil
	}
	var status gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &status) {
		return nil, err // an answer
	}
	s.Log.Warn("creating the self-check load balancer lost its answer; looking for it by name", "err", err)
	var found *loadbalancers.LoadBalancer
	_, perr := s.poll(ctx, "load balancer "+name+" to appear", func(ctx context.Context) (bool, string, error) {
		lbs, err := s.lbsNamed(ctx, name)
		if err != nil {
			return false, err.Error(), nil
		}
		if len(lbs) > 0 {
			found = &lbs[0]
			return true, "", nil
		}
		return false, "not there (yet)", nil
	})
	if perr != nil {
		return nil, fmt.Errorf("%w; and it never appeared: %v", err, perr)
	}
	return found, nil
}

func (s *SelfCheck) lbsNamed(ctx context.Context, name string) ([]loadbalancers.LoadBalancer, error) {
	pages, err := loadbalancers.List(s.LoadBalancer, loadbalancers.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	return loadbalancers.ExtractLoadBalancers(pages)
}

func smallestFlavor(ctx context.Context, compute *gophercloud.ServiceClient) (string, error) {
	pages, err := flavors.ListDetail(compute, nil).AllPages(ctx)
	if err != nil {
		return "", err
	}
	fs, err := flavors.ExtractFlavors(pages)
	if err != nil || len(fs) == 0 {
		return "", fmt.Errorf("no flavors: %v", err)
	}
	best := fs[0]
	for _, f := range fs[1:] {
		if f.RAM < best.RAM {
			best = f
		}
	}
	return best.ID, nil
}

// WriteReport writes the report as dir/selfcheck.json.
func WriteReport(dir string, rep SelfCheckReport) error {
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := filepath.Join(dir, "selfcheck.json")
	if err := os.WriteFile(p+".tmp", raw, 0o644); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}
