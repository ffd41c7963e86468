package remote

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBinary writes an executable that answers `version` like OpenTofu or
// Terraform do (first line "<Name> v<version>").
func fakeBinary(t *testing.T, dir, name, firstLine string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	script := "#!/bin/sh\n[ \"$1\" = version ] || exit 3\necho '" + firstLine + "'\necho 'on linux_amd64'\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestToolsFind(t *testing.T) {
	dir := t.TempDir()
	tofu := fakeBinary(t, dir, "tofu", "OpenTofu v1.10.6")
	terraform := fakeBinary(t, dir, "terraform", "Terraform v1.11.4")
	other := fakeBinary(t, dir, "other", "Pulumi v3.0.0")
	path := func(names ...string) func(string) (string, error) {
		return func(name string) (string, error) {
			for _, n := range names {
				if n == name {
					return filepath.Join(dir, n), nil
				}
			}
			if filepath.IsAbs(name) {
				return name, nil
			}
			return "", exec.ErrNotFound
		}
	}
	for _, tc := range []struct {
		name    string
		setting string
		onPath  []string
		want    Binary
		wantErr string
	}{
		{name: "tofu first", onPath: []string{"tofu", "terraform"}, want: Binary{Path: tofu, Kind: "opentofu", Version: "v1.10.6", Source: "PATH"}},
		{name: "terraform when no tofu", onPath: []string{"terraform"}, want: Binary{Path: terraform, Kind: "terraform", Version: "v1.11.4", Source: "PATH"}},
		{name: "the setting wins", setting: terraform, onPath: []string{"tofu"}, want: Binary{Path: terraform, Kind: "terraform", Version: "v1.11.4", Source: "setting"}},
		{name: "setting names a command on PATH", setting: "tofu", onPath: []string{"tofu", "terraform"}, want: Binary{Path: tofu, Kind: "opentofu", Version: "v1.10.6", Source: "setting"}},
		{name: "setting not found", setting: "tofu-1.9", onPath: []string{"tofu"}, wantErr: "setting tofu=tofu-1.9"},
		{name: "neither OpenTofu nor Terraform", setting: other, wantErr: "neither OpenTofu nor Terraform"},
		{name: "nothing on PATH, no builder", wantErr: "no tofu or terraform on PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tools := &Tools{Binary: tc.setting, LookPath: path(tc.onPath...)}
			got, err := tools.Find(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error %q, got %v (%+v)", tc.wantErr, err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// roundTripper answers every request with fn.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestRegistryAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bin    Binary
		status int
		err    error
		want   bool
		host   string
	}{
		{name: "OpenTofu's registry answers", bin: Binary{Kind: "opentofu"}, status: http.StatusOK, want: true, host: "registry.opentofu.org"},
		{name: "Terraform's registry answers", bin: Binary{Kind: "terraform"}, status: http.StatusOK, want: true, host: "registry.terraform.io"},
		{name: "no route to the registry", bin: Binary{Kind: "opentofu"}, err: errors.New("dial tcp: connect: network is unreachable"), want: false, host: "registry.opentofu.org"},
		{name: "a proxy's error page", bin: Binary{Kind: "terraform"}, status: http.StatusForbidden, want: false, host: "registry.terraform.io"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked string
			client := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
				asked = r.URL.String()
				if tc.err != nil {
					return nil, tc.err
				}
				return &http.Response{StatusCode: tc.status, Body: http.NoBody, Request: r}, nil
			})}
			tools := &Tools{HTTP: client}
			if got := tools.RegistryAnswers(context.Background(), tc.bin); got != tc.want {
				t.Errorf("RegistryAnswers = %v, want %v", got, tc.want)
			}
			if want := "https://" + tc.host + "/.well-known/terraform.json"; asked != want {
				t.Errorf("asked %q, want %q", asked, want)
			}
		})
	}
}

func TestMirrorCLIConfigInstallsOnlyFromTheMirror(t *testing.T) {
	cfg := mirrorCLIConfig("/cache/terraform-mirror")
	for _, want := range []string{
		`filesystem_mirror {`,
		`path    = "/cache/terraform-mirror"`,
		`"registry.opentofu.org/terraform-provider-openstack/openstack"`,
		`"registry.terraform.io/terraform-provider-openstack/openstack"`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("CLI configuration lacks %s:\n%s", want, cfg)
		}
	}
	// Without a direct {} block, neither binary contacts a registry.
	if strings.Contains(cfg, "direct") || strings.Contains(cfg, "network_mirror") {
		t.Errorf("CLI configuration allows another installation method:\n%s", cfg)
	}
}
