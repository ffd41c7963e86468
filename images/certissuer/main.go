// Command certissuer is capilab's certificate issuer: a controller that
// issues cert-manager.io Certificates from a lab CA and injects CA bundles
// where cert-manager.io/inject-ca-from asks (see internal/certissuer). It
// runs in the management cluster in place of cert-manager, whose commands
// cannot be built from the Go module proxy.
//
// The image is the static binary alone (no shell, no base image); the
// Deployment of certissuer.Manifests runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/capilab/capilab/internal/certissuer"
)

func main() {
	var opts certissuer.Options
	flag.StringVar(&opts.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "namespace of the lab CA Secret and the leader Lease (default $POD_NAMESPACE)")
	flag.BoolVar(&opts.LeaderElection, "leader-elect", true, "elect a leader among replicas; only the leader reconciles")
	flag.StringVar(&opts.HealthProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz (0: off)")
	flag.StringVar(&opts.MetricsAddr, "metrics-bind-address", "0", "address of the Prometheus metrics (0: off)")
	level := flag.String("log-level", "info", "debug, info, warn or error")
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "certissuer: -log-level %q: use debug, info, warn or error\n", *level)
		os.Exit(2)
	}
	if opts.Namespace == "" {
		fmt.Fprintln(os.Stderr, "certissuer: -namespace (or $POD_NAMESPACE) is required")
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	opts.Log = log
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error("no Kubernetes client configuration", "error", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("certissuer starting", "namespace", opts.Namespace, "leaderElection", opts.LeaderElection)
	if err := certissuer.Run(ctx, cfg, opts); err != nil {
		log.Error("certissuer stopped", "error", err)
		os.Exit(1)
	}
}
