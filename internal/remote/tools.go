package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/command"
	"github.com/capilab/capilab/internal/modbuild"
	"github.com/capilab/capilab/internal/versions"
)

// Binary is the OpenTofu or Terraform binary capilab drives.
type Binary struct {
	Path    string
	Kind    string // "opentofu" or "terraform"
	Version string // as it reports it, e.g. "v1.2.3"
	Source  string // "setting", "PATH" or "built"
}

// registryHost is where this binary looks up providers by default.
func (b Binary) registryHost() string {
	if b.Kind == "terraform" {
		return "registry.terraform.io"
	}
	return "registry.opentofu.org"
}

// Tools finds or builds what the remote node's OpenTofu run needs: the
// tofu (or terraform) binary and, when no provider registry answers, the
// OpenStack provider in a local filesystem mirror.
type Tools struct {
	// Binary is the tofu setting: a path or a command name; "" searches
	// PATH for tofu, then terraform, and otherwise builds OpenTofu.
	Binary string
	// Build builds OpenTofu and the provider from their Go modules
	// (CacheDir: the lab's tool cache).
	Build *modbuild.Builder
	Pins  versions.Remote
	// LookPath finds commands (default exec.LookPath).
	LookPath func(string) (string, error)
	// HTTP probes provider registries (default: a client with a 5 s timeout).
	HTTP *http.Client
	Log  *slog.Logger
}

func (t *Tools) lookPath(name string) (string, error) {
	if t.LookPath != nil {
		return t.LookPath(name)
	}
	return exec.LookPath(name)
}

// Find returns the binary to use.
func (t *Tools) Find(ctx context.Context) (Binary, error) {
	if t.Binary != "" {
		p, err := t.lookPath(t.Binary)
		if err != nil {
			return Binary{}, fmt.Errorf("setting tofu=%s: %w", t.Binary, err)
		}
		return t.identify(ctx, p, "setting")
	}
	for _, name := range []string{"tofu", "terraform"} {
		if p, err := t.lookPath(name); err == nil {
			return t.identify(ctx, p, "PATH")
		}
	}
	if t.Build == nil {
		return Binary{}, errors.New("no tofu or terraform on PATH and no builder to build OpenTofu")
	}
	p, err := t.Build.Build(ctx, t.tofuProgram())
	if err != nil {
		return Binary{}, err
	}
	return t.identify(ctx, p, "built")
}

func (t *Tools) tofuProgram() modbuild.Program {
	// dev=no: a release build, which reports its version without "-dev".
	return modbuild.Program{Name: "tofu", Module: "github.com/opentofu/opentofu", Version: t.Pins.OpenTofu, Package: "./cmd/tofu",
		LDFlags: []string{"-X github.com/opentofu/opentofu/version.dev=no"}}
}

func (t *Tools) providerProgram() modbuild.Program {
	return modbuild.Program{Name: "terraform-provider-openstack", Module: "github.com/terraform-provider-openstack/terraform-provider-openstack/v3", Version: t.Pins.OpenStackProvider, Package: "."}
}

// identify asks the binary what it is: "OpenTofu v1.2.3" or "Terraform v1.2.3".
func (t *Tools) identify(ctx context.Context, path, source string) (Binary, error) {
	out, err := command.New(path, "version").WithEnv(nil, "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1").Output(ctx)
	if err != nil {
		return Binary{}, err
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	fields := strings.Fields(first)
	if len(fields) < 2 {
		return Binary{}, fmt.Errorf("%s version: unexpected answer %q", path, first)
	}
	b := Binary{Path: path, Version: fields[1], Source: source}
	switch fields[0] {
	case "OpenTofu":
		b.Kind = "opentofu"
	case "Terraform":
		b.Kind = "terraform"
	default:
		return Binary{}, fmt.Errorf("%s is neither OpenTofu nor Terraform (it says %q)", path, first)
	}
	return b, nil
}

// RegistryAnswers reports whether the binary's default provider registry
// answers its service discovery request: then it installs the provider
// itself (at the pinned version); otherwise capilab builds it.
func (t *Tools) RegistryAnswers(ctx context.Context, b Binary) bool {
	client := t.HTTP
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+b.registryHost()+"/.well-known/terraform.json", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		t.log().Debug("provider registry does not answer", "host", b.registryHost(), "error", err)
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (t *Tools) log() *slog.Logger {
	if t.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Log
}

// providerSource is where the provider package comes from.
const providerSource = "terraform-provider-openstack/openstack"

// Mirror builds the OpenStack provider (cached by content) and lays it out
// as a filesystem mirror for both registries' addresses; it returns the
// mirror's directory.
func (t *Tools) Mirror(ctx context.Context) (string, error) {
	if t.Build == nil {
		return "", errors.New("no builder for the OpenStack provider")
	}
	bin, err := t.Build.Build(ctx, t.providerProgram())
	if err != nil {
		return "", err
	}
	version := strings.TrimPrefix(t.Pins.OpenStackProvider, "v")
	mirror := filepath.Join(t.Build.CacheDir, "terraform-mirror")
	for _, host := range []string{"registry.opentofu.org", "registry.terraform.io"} {
		dir := filepath.Join(mirror, host, providerSource, version, runtime.GOOS+"_"+runtime.GOARCH)
		target := filepath.Join(dir, "terraform-provider-openstack_"+t.Pins.OpenStackProvider)
		if cur, err := os.Readlink(target); err == nil && cur == bin {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		tmp := target + ".tmp"
		os.Remove(tmp)
		if err := os.Symlink(bin, tmp); err != nil {
			return "", err
		}
		if err := os.Rename(tmp, target); err != nil {
			return "", err
		}
	}
	return mirror, nil
}

// mirrorCLIConfig is a CLI configuration that installs the OpenStack
// provider from the mirror only.
func mirrorCLIConfig(mirror string) string {
	return fmt.Sprintf(`# Written by capilab: the OpenStack provider from a local build, no registry.
provider_installation {
  filesystem_mirror {
    path    = %q
    include = ["registry.opentofu.org/%s", "registry.terraform.io/%s"]
  }
}
`, mirror, providerSource, providerSource)
}
