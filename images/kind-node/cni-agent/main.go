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
// It watches Node objects and reconciles on every change and every --resync.
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
	"syscall"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.NodeName, "node-name", os.Getenv("NODE_NAME"), "name of the node this agent runs on")
	flag.StringVar(&cfg.PodSubnet, "pod-subnet", "", "the cluster's pod subnet(s), comma separated (kind: networking.podSubnet)")
	flag.StringVar(&cfg.ConfDir, "cni-conf-dir", "/etc/cni/net.d", "directory the node's container runtime reads CNI configs from")
	flag.DurationVar(&cfg.Resync, "resync", 30*time.Second, "reconcile at least this often")
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
	subnets, err := parseCIDRs(cfg.PodSubnet)
	if err != nil {
		return fmt.Errorf("--pod-subnet: %w", err)
	}
	restCfg, err := rest.InClusterConfig()
	if err != nil {
		return fmt.Errorf("in-cluster config: %w", err)
	}
	// kind sets CONTROL_PLANE_ENDPOINT (host:port of the API server on the
	// node network): usable before kube-proxy programs the Service VIP.
	if ep := os.Getenv("CONTROL_PLANE_ENDPOINT"); ep != "" {
		restCfg.Host = "https://" + ep
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}

	factory := informers.NewSharedInformerFactory(client, cfg.Resync)
	nodes := factory.Core().V1().Nodes()
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}); err != nil {
		return fmt.Errorf("watch nodes: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	syncCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), nodes.Informer().HasSynced) {
		return fmt.Errorf("node cache did not sync within 2m: %w", context.Cause(syncCtx))
	}

	r := &reconciler{log: log, cfg: cfg, clusterSubnets: subnets, host: execHost{}}
	ticker := time.NewTicker(cfg.Resync)
	defer ticker.Stop()
	log.Info("cni-agent started", "node", cfg.NodeName, "podSubnet", cfg.PodSubnet)
	for {
		list, err := nodes.Lister().List(everything())
		if err != nil {
			log.Error("list nodes", "err", err)
		} else if err := r.reconcile(ctx, list); err != nil {
			log.Error("reconcile", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-kick:
		case <-ticker.C:
		}
	}
}

func parseCIDRs(s string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, part := range splitComma(s) {
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
