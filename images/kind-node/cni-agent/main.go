// Command cni-agent gives the pods of a kind cluster built on capilab's node
// image a network: it stands in for kindnetd (whose module the Go proxy does not
// serve). It runs as a DaemonSet on every node (host network) and
//
//   - writes a CNI config list for this node: Debian's bridge + host-local +
//     portmap plugins, pod addresses from the node's spec.podCIDRs;
//   - routes every other node's podCIDRs via that node's InternalIP (the kind
//     nodes share one Docker network, so no encapsulation is needed);
//   - masquerades traffic from this node's pods that leaves the cluster's pod
//     subnet, so pods reach node, host and outside addresses.
//
// It lists the Node objects every --resync and reconciles. It uses only the
// standard library (a small REST client, see apiserver.go): it is compiled
// on every cold image build, and client-go would add minutes to that.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.NodeName, "node-name", os.Getenv("NODE_NAME"), "name of the node this agent runs on")
	flag.StringVar(&cfg.PodSubnet, "pod-subnet", "", "the cluster's pod subnet(s), comma separated (kind: networking.podSubnet)")
	flag.StringVar(&cfg.ConfDir, "cni-conf-dir", "/etc/cni/net.d", "directory the node's container runtime reads CNI configs from")
	flag.DurationVar(&cfg.Resync, "resync", 5*time.Second, "how often the nodes are listed and the node reconciled")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, cfg); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("cni-agent failed", "err", err)
		os.Exit(1)
	}
}

type config struct {
	NodeName  string
	PodSubnet string
	ConfDir   string
	Resync    time.Duration
}

func run(ctx context.Context, log *slog.Logger, cfg config) error {
	if cfg.NodeName == "" {
		return errors.New("--node-name (or NODE_NAME) is required")
	}
	if cfg.Resync <= 0 {
		return errors.New("--resync must be positive")
	}
	subnets, err := parseCIDRs(cfg.PodSubnet)
	if err != nil {
		return fmt.Errorf("--pod-subnet: %w", err)
	}
	api, err := inClusterAPI()
	if err != nil {
		return err
	}
	r := &reconciler{log: log, cfg: cfg, clusterSubnets: subnets, host: execHost{}}
	ticker := time.NewTicker(cfg.Resync)
	defer ticker.Stop()
	log.Info("cni-agent started", "node", cfg.NodeName, "podSubnet", cfg.PodSubnet, "apiserver", api.base)
	for {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		nodes, err := api.listNodes(lctx)
		cancel()
		if err != nil {
			log.Error("list nodes", "err", err)
		} else if err := r.reconcile(ctx, nodes); err != nil {
			log.Error("reconcile", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

func parseCIDRs(s string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		_, n, err := net.ParseCIDR(part)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no subnet given")
	}
	return out, nil
}
