package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
)

// routeProto marks the routes this agent owns (ip route ... proto 250), so a
// restart finds and prunes stale ones without any state file.
const routeProto = "250"

// confName is the CNI config file the agent owns in --cni-conf-dir.
const confName = "10-capilab.conflist"

// host is what the reconciler changes on the node; execHost runs ip/iptables,
// tests use a fake.
type host interface {
	// Routes lists the routes with proto routeProto as "dst via gw".
	Routes(ctx context.Context) ([]route, error)
	ReplaceRoute(ctx context.Context, r route) error
	DeleteRoute(ctx context.Context, r route) error
	// EnsureMasquerade makes sure traffic from src to outside every dst in
	// cluster is masqueraded (idempotent).
	EnsureMasquerade(ctx context.Context, src *net.IPNet, cluster []*net.IPNet) error
}

type route struct {
	Dst string // CIDR
	Via string // IP
}

type reconciler struct {
	log            *slog.Logger
	cfg            config
	clusterSubnets []*net.IPNet
	host           host
	lastConf       []byte
	masqDone       map[string]bool
}

func (r *reconciler) reconcile(ctx context.Context, nodes []node) error {
	var self *node
	for i := range nodes {
		if nodes[i].Metadata.Name == r.cfg.NodeName {
			self = &nodes[i]
		}
	}
	if self == nil {
		return fmt.Errorf("node %q not found", r.cfg.NodeName)
	}
	own := podCIDRs(self)
	if len(own) == 0 {
		r.log.Info("waiting for the node's podCIDR to be allocated", "node", self.Metadata.Name)
		return nil
	}
	var errs []error
	conf, err := conflist(own)
	if err != nil {
		return err
	}
	if !bytes.Equal(conf, r.lastConf) {
		if err := writeFileAtomic(filepath.Join(r.cfg.ConfDir, confName), conf); err != nil {
			errs = append(errs, err)
		} else {
			r.lastConf = conf
			r.log.Info("wrote CNI config", "file", filepath.Join(r.cfg.ConfDir, confName), "podCIDRs", own)
		}
	}
	if r.masqDone == nil {
		r.masqDone = map[string]bool{}
	}
	for _, c := range own {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("podCIDR %q: %w", c, err))
			continue
		}
		if r.masqDone[c] {
			continue
		}
		if err := r.host.EnsureMasquerade(ctx, n, r.clusterSubnets); err != nil {
			errs = append(errs, err)
		} else {
			r.masqDone[c] = true
		}
	}
	errs = append(errs, r.syncRoutes(ctx, desiredRoutes(self.Metadata.Name, nodes)))
	return errors.Join(errs...)
}

func (r *reconciler) syncRoutes(ctx context.Context, want []route) error {
	have, err := r.host.Routes(ctx)
	if err != nil {
		return err
	}
	haveSet := map[route]bool{}
	for _, h := range have {
		haveSet[h] = true
	}
	wantSet := map[route]bool{}
	var errs []error
	for _, w := range want {
		wantSet[w] = true
		if haveSet[w] {
			continue
		}
		if err := r.host.ReplaceRoute(ctx, w); err != nil {
			errs = append(errs, err)
			continue
		}
		r.log.Info("route added", "dst", w.Dst, "via", w.Via)
	}
	for _, h := range have {
		if wantSet[h] {
			continue
		}
		if err := r.host.DeleteRoute(ctx, h); err != nil {
			errs = append(errs, err)
			continue
		}
		r.log.Info("stale route removed", "dst", h.Dst, "via", h.Via)
	}
	return errors.Join(errs...)
}

// podCIDRs returns a node's pod CIDRs (spec.podCIDRs, or the legacy podCIDR).
func podCIDRs(n *node) []string {
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs
	}
	if n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return nil
}

// desiredRoutes: every other node's podCIDRs via its InternalIP of the same family.
func desiredRoutes(self string, nodes []node) []route {
	var out []route
	for i := range nodes {
		n := &nodes[i]
		if n.Metadata.Name == self {
			continue
		}
		for _, c := range podCIDRs(n) {
			ip, _, err := net.ParseCIDR(c)
			if err != nil {
				continue
			}
			for _, a := range n.Status.Addresses {
				gw := net.ParseIP(a.Address)
				if a.Type != "InternalIP" || gw == nil || (gw.To4() == nil) != (ip.To4() == nil) {
					continue
				}
				out = append(out, route{Dst: c, Via: gw.String()})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dst < out[j].Dst })
	return out
}

// conflist is the CNI config for a node with the given pod CIDRs.
func conflist(cidrs []string) ([]byte, error) {
	var ranges [][]map[string]string
	var routes []map[string]string
	for _, c := range cidrs {
		ip, _, err := net.ParseCIDR(c)
		if err != nil {
			return nil, fmt.Errorf("podCIDR %q: %w", c, err)
		}
		ranges = append(ranges, []map[string]string{{"subnet": c}})
		if ip.To4() != nil {
			routes = append(routes, map[string]string{"dst": "0.0.0.0/0"})
		} else {
			routes = append(routes, map[string]string{"dst": "::/0"})
		}
	}
	doc := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "capilab",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      "cni0",
				"isGateway":   true,
				"ipMasq":      false, // the agent masquerades only traffic leaving the pod subnet
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": ranges,
					"routes": routes,
				},
			},
			map[string]any{
				"type":         "portmap",
				"capabilities": map[string]bool{"portMappings": true},
			},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode CNI config: %w", err)
	}
	return append(b, '\n'), nil
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
