// Command dataplane is devcloud's data-plane agent (see package
// internal/dataplane). scripts/devcloud/devcloud.sh builds it (static, so
// helper containers can run it too) and starts it with devcloud when a
// Docker engine answers.
//
//	dataplane agent [flags]          reconcile devcloud into Docker until SIGTERM
//	dataplane lb --config FILE       a load balancer helper: forward the VIP's
//	                                 listeners to the members FILE names
//	dataplane selfcheck [flags]      prove an LB reaches ACTIVE and is forwarded,
//	                                 and a server boots into a node container;
//	                                 exit 1 and say what is broken otherwise
//	dataplane registry --cache-dir D --config FILE --listen A --root R
//	                                 build (cached) devcloud's registry mirror at
//	                                 its pinned version, write its config and
//	                                 print the binary's path
//
// Bad flags exit 2 before any cloud or Docker call.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/dataplane"
	"github.com/capilab/capilab/internal/dataplane/docker"
	"github.com/capilab/capilab/internal/dataplane/mirror"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/versions"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var code int
	switch os.Args[1] {
	case "agent":
		code = agent(os.Args[2:])
	case "lb":
		code = lb(os.Args[2:])
	case "registry":
		code = registry(os.Args[2:])
	case "selfcheck":
		code = selfcheck(os.Args[2:])
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "dataplane: unknown command %q\n", os.Args[1])
		usage()
		code = 2
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: dataplane agent [flags] | dataplane lb --config FILE   (-h lists the flags)")
}

func agent(args []string) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	cloudName := fs.String("cloud", "devcloud", "clouds.yaml entry with admin credentials")
	cloudsFile := fs.String("clouds-file", os.Getenv("OS_CLIENT_CONFIG_FILE"), "clouds.yaml to read (default: the standard search)")
	stateDir := fs.String("state-dir", "/var/lib/devcloud/dataplane", "directory for the agent's status and load balancer configs")
	ports := fs.String("api-ports", "5000,9292,8774,8778,9696,9876,8776", "ports forwarded from each external network's gateway to -api-target")
	target := fs.String("api-target", "127.0.0.1", "address the API ports are forwarded to")
	interval := fs.Duration("interval", 2*time.Second, "time between reconciliation passes")
	socket := fs.String("docker-socket", docker.DefaultSocket, "Docker engine socket")
	kindNets := fs.String("kind-networks", "kind", "comma-separated Docker networks of kind clusters allowed to reach floating IPs")
	iptables := fs.String("iptables", "iptables", "iptables command for the DOCKER-USER rules (empty: no rules)")
	property := fs.String("node-image-property", dataplane.DefaultNodeImageProperty, "Glance image property naming the container image of a node image")
	region := fs.String("region", "RegionOne", "region name in the nodes' instance data")
	helper := fs.String("helper-image", defaultHelperImage(), "image of load balancer and floating IP helpers (needs /bin/sh, sleep, iptables)")
	faultDB := fs.String("nova-db-command", "mysql --protocol=socket -uroot nova", "command reading SQL on stdin against Nova's database, to record faults (empty: ERROR without a fault)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var bad []string
	apiPorts, err := parsePorts(*ports)
	if err != nil {
		bad = append(bad, "-api-ports: "+err.Error())
	}
	if *interval < 200*time.Millisecond {
		bad = append(bad, "-interval: at least 200ms")
	}
	secrets := logging.NewSecrets()
	log, err := logging.New(os.Stdout, logging.Options{Format: *logFormat, Level: *logLevel, Secrets: secrets})
	if err != nil {
		bad = append(bad, err.Error())
	}
	if len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintln(os.Stderr, "dataplane agent: "+b)
		}
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	dc, err := docker.New(ctx, *socket)
	if err != nil {
		log.Error("no Docker engine", "err", err)
		return 1
	}
	c, err := connect(ctx, log, cloud.Options{Cloud: *cloudName, CloudsFile: *cloudsFile, Log: log, Secrets: secrets})
	if err != nil {
		log.Error("cannot reach the cloud", "cloud", *cloudName, "err", err)
		return 1
	}
	netc, err := c.Network()
	if err != nil {
		log.Error("cloud", "err", err)
		return 1
	}
	compute, err := c.Compute()
	if err != nil {
		log.Error("cloud", "err", err)
		return 1
	}
	img, err := c.Image()
	if err != nil {
		log.Error("cloud", "err", err)
		return 1
	}
	octavia, err := c.LoadBalancer()
	if err != nil {
		log.Error("cloud", "err", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		log.Error("cannot find this program's path (mounted into load balancer helpers)", "err", err)
		return 1
	}
	opts := dataplane.Options{
		Network:           netc,
		Compute:           compute,
		Image:             img,
		LoadBalancer:      octavia,
		HelperImage:       *helper,
		AgentBinary:       self,
		NodeImageProperty: *property,
		Region:            *region,
		Docker:            dc,
		APIPorts:          apiPorts,
		APITarget:         *target,
		StateDir:          *stateDir,
		Interval:          *interval,
		Log:               log,
	}
	if *kindNets != "" {
		opts.KindNetworks = strings.Split(*kindNets, ",")
	} else {
		opts.KindNetworks = []string{}
	}
	if *faultDB != "" {
		opts.Faults = dataplane.NovaDBFaults{Command: strings.Fields(*faultDB), Host: "devcloud"}
	}
	if *iptables != "" {
		opts.Firewall = &dataplane.IPTables{Bin: *iptables, Owner: dataplane.DefaultOwner}
	}
	a, err := dataplane.New(opts)
	if err != nil {
		log.Error("agent", "err", err)
		return 1
	}
	if err := a.Run(ctx); err != nil {
		log.Error("agent stopped with an error", "err", err)
		return 1
	}
	return 0
}

func defaultHelperImage() string {
	pins, err := versions.Load()
	if err != nil {
		return ""
	}
	return pins.KindNode.Image()
}

func registry(args []string) int {
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	cache := fs.String("cache-dir", "", "build cache (modbuild)")
	goCmd := fs.String("go", "go", "the go command")
	config := fs.String("config", "", "where to write the registry's configuration")
	listen := fs.String("listen", "127.0.0.1:5001", "address the registry listens on")
	root := fs.String("root", "/var/lib/devcloud/registry", "storage directory")
	repo := fs.String("repo", ".", "capilab's checkout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cache == "" || *config == "" {
		fmt.Fprintln(os.Stderr, "dataplane registry: -cache-dir and -config are required")
		return 2
	}
	pins, err := versions.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dataplane registry:", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	b := &modbuild.Builder{CacheDir: *cache, Go: *goCmd, RepoRoot: *repo, Log: log}
	bin, err := b.Build(ctx, mirror.RegistryProgram(pins.Devcloud.Registry))
	if err != nil {
		log.Error("building the registry", "err", err)
		return 1
	}
	if err := os.WriteFile(*config, []byte(mirror.RegistryConfig(*listen, *root)), 0o644); err != nil {
		log.Error("registry config", "err", err)
		return 1
	}
	fmt.Println(bin)
	return 0
}

func selfcheck(args []string) int {
	fs := flag.NewFlagSet("selfcheck", flag.ContinueOnError)
	cloudName := fs.String("cloud", "devcloud", "clouds.yaml entry with admin credentials")
	cloudsFile := fs.String("clouds-file", os.Getenv("OS_CLIENT_CONFIG_FILE"), "clouds.yaml to read")
	stateDir := fs.String("state-dir", "/var/lib/devcloud/dataplane", "where selfcheck.json is written")
	nodeImage := fs.String("node-image", defaultHelperImage(), "container image of the check's server")
	socket := fs.String("docker-socket", docker.DefaultSocket, "Docker engine socket")
	timeout := fs.Duration("timeout", 3*time.Minute, "bound of each wait")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	secrets := logging.NewSecrets()
	log, _ := logging.New(os.Stderr, logging.Options{Secrets: secrets})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c, err := cloud.Connect(ctx, cloud.Options{Cloud: *cloudName, CloudsFile: *cloudsFile, Log: log, Secrets: secrets})
	if err != nil {
		fmt.Fprintln(os.Stderr, "selfcheck: Keystone:", err)
		return 1
	}
	sc := &dataplane.SelfCheck{NodeImage: *nodeImage, Timeout: *timeout, Log: log}
	for _, x := range []struct {
		dst **gophercloud.ServiceClient
		mk  func() (*gophercloud.ServiceClient, error)
	}{{&sc.Compute, c.Compute}, {&sc.Network, c.Network}, {&sc.Image, c.Image}, {&sc.LoadBalancer, c.LoadBalancer}} {
		if *x.dst, err = x.mk(); err != nil {
			fmt.Fprintln(os.Stderr, "selfcheck:", err)
			return 1
		}
	}
	if dc, err := docker.New(ctx, *socket); err == nil {
		sc.Docker = dc
	}
	rep := sc.Run(ctx)
	if err := dataplane.WriteReport(*stateDir, rep); err != nil {
		fmt.Fprintln(os.Stderr, "selfcheck:", err)
	}
	for _, r := range rep.Checks {
		state := "ok"
		if r.Skipped != "" {
			state = "not run"
		} else if !r.OK {
			state = "BROKEN"
		}
		fmt.Printf("self-check %-26s %-7s %s\n", r.Name, state, r.Detail)
	}
	if !rep.OK {
		return 1
	}
	return 0
}

func lb(args []string) int {
	fs := flag.NewFlagSet("lb", flag.ContinueOnError)
	cfg := fs.String("config", "", "load balancer config (JSON) written by the agent")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfg == "" {
		fmt.Fprintln(os.Stderr, "dataplane lb: -config is required")
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := dataplane.RunLB(ctx, *cfg, log); err != nil {
		log.Error("lb", "err", err)
		return 1
	}
	return 0
}

// connect authenticates, retrying while the cloud is still starting
// (bounded: 5 minutes).
func connect(ctx context.Context, log *slog.Logger, opts cloud.Options) (*cloud.Cloud, error) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c, err := cloud.Connect(ctx, opts)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, errors.Join(err, ctx.Err())
		}
		log.Warn("cloud not reachable yet; retrying in 5s", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}

func parsePorts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%q is not a port", f)
		}
		out = append(out, p)
	}
	return out, nil
}
