package providers

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	clusterctlv1 "sigs.k8s.io/cluster-api/cmd/clusterctl/api/v1alpha3"
	clusterctl "sigs.k8s.io/cluster-api/cmd/clusterctl/client"
	"sigs.k8s.io/cluster-api/cmd/clusterctl/client/config"
	clusterctllog "sigs.k8s.io/cluster-api/cmd/clusterctl/log"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Installer runs clusterctl (its Go library, not a binary) against a
// management cluster.
//
// Every client gets its own in-memory configuration: clusterctl's default
// configuration reader is a process-wide viper instance that also reads
// the environment, so variables of the process would leak into
// components and parallel users would share state.
type Installer struct {
	// Providers are every provider of the lab: clusterctl resolves the
	// installed ones too (the core provider) when it adds another.
	Providers  []Provider
	Kubeconfig string
	Context    string
	Source     Source
	Repo       Repository
	Log        *slog.Logger
	// Variables are clusterctl variables for the components
	// (CLUSTER_TOPOLOGY=true is always set).
	Variables map[string]string
	// WaitProviderTimeout bounds clusterctl's wait per provider.
	WaitProviderTimeout time.Duration
}

// clusterctlLogMu serialises the use of clusterctl's logger, which the
// library keeps in a package variable.
var clusterctlLogMu sync.Mutex

func (in *Installer) client(ctx context.Context) (clusterctl.Client, error) {
	reader := config.NewMemoryReader()
	for _, p := range in.Providers {
		if in.Source == Local || p.RenderedUpstream {
			if _, err := reader.AddProvider(p.Name, p.Type, in.Repo.ComponentsURL(p)); err != nil {
				return nil, err
			}
		} else if p.UpstreamURL != "" {
			if _, err := reader.AddProvider(p.Name, p.Type, p.UpstreamURL); err != nil {
				return nil, err
			}
		}
	}
	reader.Set("CLUSTER_TOPOLOGY", "true")
	for k, v := range in.Variables {
		reader.Set(k, v)
	}
	cfg, err := config.New(ctx, "", config.InjectReader(reader))
	if err != nil {
		return nil, fmt.Errorf("clusterctl configuration: %w", err)
	}
	return clusterctl.New(ctx, "", clusterctl.InjectConfig(cfg))
}

// withClusterctlLog routes clusterctl's log lines to in.Log for the call.
func (in *Installer) withClusterctlLog(f func() error) error {
	clusterctlLogMu.Lock()
	defer clusterctlLogMu.Unlock()
	prev := clusterctllog.Log
	clusterctllog.SetLogger(logr.FromSlogHandler(in.Log.With("component", "clusterctl").Handler()))
	defer clusterctllog.SetLogger(prev)
	return f()
}

func (in *Installer) kubeconfig() clusterctl.Kubeconfig {
	return clusterctl.Kubeconfig{Path: in.Kubeconfig, Context: in.Context}
}

// Init installs providers into the management cluster and waits for
// them. Providers already installed must not be passed (clusterctl
// refuses to install a provider twice).
func (in *Installer) Init(ctx context.Context, ps []Provider) error {
	if len(ps) == 0 {
		return nil
	}
	c, err := in.client(ctx)
	if err != nil {
		return err
	}
	opts := clusterctl.InitOptions{Kubeconfig: in.kubeconfig(), WaitProviders: true, WaitProviderTimeout: in.WaitProviderTimeout,
		IgnoreValidationErrors: false}
	var names []string
	for _, p := range ps {
		names = append(names, p.Label()+":"+p.Version)
		switch p.Type {
		case clusterctlv1.CoreProviderType:
			opts.CoreProvider = p.Arg()
		case clusterctlv1.BootstrapProviderType:
			opts.BootstrapProviders = append(opts.BootstrapProviders, p.Arg())
		case clusterctlv1.ControlPlaneProviderType:
			opts.ControlPlaneProviders = append(opts.ControlPlaneProviders, p.Arg())
		case clusterctlv1.InfrastructureProviderType:
			opts.InfrastructureProviders = append(opts.InfrastructureProviders, p.Arg())
		case clusterctlv1.RuntimeExtensionProviderType:
			opts.RuntimeExtensionProviders = append(opts.RuntimeExtensionProviders, p.Arg())
		default:
			return fmt.Errorf("provider %s: type %s is not supported", p.Name, p.Type)
		}
	}
	in.Log.Info("clusterctl init", "providers", strings.Join(names, " "), "source", in.Source)
	start := time.Now()
	err = in.withClusterctlLog(func() error {
		_, err := c.Init(ctx, opts)
		return err
	})
	if err != nil {
		return fmt.Errorf("clusterctl init %s: %w", strings.Join(names, " "), err)
	}
	in.Log.Info("clusterctl init done", "elapsed", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// Upgrade moves installed providers to the versions of ps.
func (in *Installer) Upgrade(ctx context.Context, installed []Installed, ps []Provider) error {
	c, err := in.client(ctx)
	if err != nil {
		return err
	}
	opts := clusterctl.ApplyUpgradeOptions{Kubeconfig: in.kubeconfig(), WaitProviders: true, WaitProviderTimeout: in.WaitProviderTimeout}
	for _, p := range ps {
		arg := p.Arg()
		for _, i := range installed {
			if i.Label == p.Label() {
				arg = i.Namespace + "/" + arg
			}
		}
		switch p.Type {
		case clusterctlv1.CoreProviderType:
			opts.CoreProvider = arg
		case clusterctlv1.BootstrapProviderType:
			opts.BootstrapProviders = append(opts.BootstrapProviders, arg)
		case clusterctlv1.ControlPlaneProviderType:
			opts.ControlPlaneProviders = append(opts.ControlPlaneProviders, arg)
		case clusterctlv1.InfrastructureProviderType:
			opts.InfrastructureProviders = append(opts.InfrastructureProviders, arg)
		case clusterctlv1.RuntimeExtensionProviderType:
			opts.RuntimeExtensionProviders = append(opts.RuntimeExtensionProviders, arg)
		}
	}
	return in.withClusterctlLog(func() error { return c.ApplyUpgrade(ctx, opts) })
}

// Installed is one provider in clusterctl's inventory.
type Installed struct {
	Label     string // clusterctl manifest label
	Name      string
	Type      string
	Version   string
	Namespace string
}

// Inventory reads clusterctl's inventory (Provider objects); none when its
// CRD does not exist yet.
func Inventory(ctx context.Context, c client.Reader) ([]Installed, error) {
	var list clusterctlv1.ProviderList
	if err := c.List(ctx, &list); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("clusterctl inventory: %w", err)
	}
	out := make([]Installed, 0, len(list.Items))
	for _, p := range list.Items {
		out = append(out, Installed{Label: clusterctlv1.ManifestLabel(p.ProviderName, p.GetProviderType()), Name: p.ProviderName,
			Type: p.Type, Version: p.Version, Namespace: p.Namespace})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	return out, nil
}

// Difference is how an installed management cluster differs from the pins.
type Difference struct {
	Missing []Provider  // not installed
	Changed []Change    // installed at another version
	Extra   []Installed // installed, not pinned (left alone)
}

// Change is one provider at another version than pinned.
type Change struct {
	Provider  Provider
	Installed Installed
}

// Empty reports no difference that needs action.
func (d Difference) Empty() bool { return len(d.Missing) == 0 && len(d.Changed) == 0 }

// String says what differs, one provider per item.
func (d Difference) String() string {
	var parts []string
	for _, p := range d.Missing {
		parts = append(parts, p.Label()+" "+p.Version+" is not installed")
	}
	for _, c := range d.Changed {
		parts = append(parts, fmt.Sprintf("%s is %s, pinned %s", c.Provider.Label(), c.Installed.Version, c.Provider.Version))
	}
	if len(parts) == 0 {
		return "every provider is at its pinned version"
	}
	return strings.Join(parts, "; ")
}

// Compare diffs the inventory against the pinned providers.
func Compare(pinned []Provider, installed []Installed) Difference {
	var d Difference
	byLabel := map[string]Installed{}
	for _, i := range installed {
		byLabel[i.Label] = i
	}
	seen := map[string]bool{}
	for _, p := range pinned {
		seen[p.Label()] = true
		i, ok := byLabel[p.Label()]
		switch {
		case !ok:
			d.Missing = append(d.Missing, p)
		case i.Version != p.Version:
			d.Changed = append(d.Changed, Change{Provider: p, Installed: i})
		}
	}
	for _, i := range installed {
		if !seen[i.Label] {
			d.Extra = append(d.Extra, i)
		}
	}
	return d
}
