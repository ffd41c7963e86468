package remote

import (
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"al.essio.dev/pkg/shellescape"
	"go.yaml.in/yaml/v3"
)

// bootstrapScript is /usr/local/sbin/capilab-bootstrap on the node.
//
//go:embed capilab-bootstrap.sh
var bootstrapScript string

// Paths on the node.
const (
	nodeBootstrap = "/usr/local/sbin/capilab-bootstrap"
	nodeEnvFile   = "/etc/capilab/bootstrap.env"
	nodeLib       = "/var/lib/capilab"
)

// NodeSetup is what the node's cloud-init needs. None of it is secret:
// the lab's credential reaches the node over ssh, never through the user
// data (which the node's metadata service serves to every process on it).
type NodeSetup struct {
	Prefix string
	User   string // login user of the image (ssh_username)
	// Go is the toolchain release the node builds capilab with, and the
	// sha256 of its golang.org/toolchain zip per architecture.
	Go       string
	GoSHA256 map[string]string
	// GoProxy is the GOPROXY the node fetches Go modules and the toolchain through.
	GoProxy string
	// HTTPProxy and NoProxy reach apt, Docker and capilab on the node.
	HTTPProxy string
	NoProxy   string
	// DockerMTU is the MTU of Docker's (and so kind's) networks; 0 takes
	// the MTU of the node's interface to its default route.
	DockerMTU int
}

// Home is the login user's home directory on the node.
func (s NodeSetup) Home() string { return "/home/" + s.User }

// SourceDir is where capilab's source goes on the node.
func (s NodeSetup) SourceDir() string { return s.Home() + "/capilab" }

// StateDir is the state directory of capilab on the node; it lives outside
// the source directory, which each `make create` replaces.
func (s NodeSetup) StateDir() string { return s.Home() + "/capilab-state" }

// ArtifactsDir is the artifacts directory of capilab on the node.
func (s NodeSetup) ArtifactsDir() string { return s.Home() + "/capilab-artifacts" }

// cloudConfig is the subset of cloud-init's schema capilab writes, in the
// order a reader expects.
type cloudConfig struct {
	PackageUpdate bool        `yaml:"package_update"`
	Packages      []string    `yaml:"packages"`
	Apt           *aptConfig  `yaml:"apt,omitempty"`
	WriteFiles    []writeFile `yaml:"write_files"`
	RunCmd        [][]string  `yaml:"runcmd"`
	FinalMessage  string      `yaml:"final_message"`
}

type aptConfig struct {
	HTTPProxy  string `yaml:"http_proxy"`
	HTTPSProxy string `yaml:"https_proxy"`
}

type writeFile struct {
	Path        string `yaml:"path"`
	Permissions string `yaml:"permissions"`
	Owner       string `yaml:"owner"`
	Content     string `yaml:"content"`
}

// nodePackages are installed by cloud-init: Docker for kind, make and the
// tools capilab-bootstrap uses.
var nodePackages = []string{"ca-certificates", "curl", "docker.io", "make", "unzip"}

// UserData renders the node's cloud-init user data (#cloud-config).
func (s NodeSetup) UserData() (string, error) {
	if err := s.check(); err != nil {
		return "", err
	}
	env := s.bootstrapEnv()
	cfg := cloudConfig{
		PackageUpdate: true,
		Packages:      slices.Clone(nodePackages),
		WriteFiles: []writeFile{
			{Path: nodeEnvFile, Permissions: "0644", Owner: "root:root", Content: env},
			{Path: nodeBootstrap, Permissions: "0755", Owner: "root:root", Content: bootstrapScript},
			{Path: "/etc/sysctl.d/90-capilab.conf", Permissions: "0644", Owner: "root:root", Content: sysctls},
		},
		RunCmd:       [][]string{{nodeBootstrap, "prepare"}},
		FinalMessage: "capilab: cloud-init finished after $UPTIME seconds",
	}
	if s.HTTPProxy != "" {
		cfg.Apt = &aptConfig{HTTPProxy: s.HTTPProxy, HTTPSProxy: s.HTTPProxy}
		cfg.WriteFiles = append(cfg.WriteFiles, writeFile{
			Path: "/etc/systemd/system/docker.service.d/capilab-proxy.conf", Permissions: "0644", Owner: "root:root",
			Content: "[Service]\n" + systemdEnv("HTTP_PROXY", s.HTTPProxy) + systemdEnv("HTTPS_PROXY", s.HTTPProxy) + systemdEnv("NO_PROXY", s.NoProxy),
		})
	}
	body, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	header := "#cloud-config\n# capilab lab " + s.Prefix + ": management node. Rendered by capilab; holds no secret.\n"
	return header + string(body), nil
}

// sysctls: kind's kube-proxy sets conntrack limits and every kind node
// watches many files.
const sysctls = "net.netfilter.nf_conntrack_max = 131072\nfs.inotify.max_user_watches = 524288\nfs.inotify.max_user_instances = 512\n"

func systemdEnv(k, v string) string {
	if v == "" {
		return ""
	}
	return "Environment=" + strconv.Quote(k+"="+v) + "\n"
}

func (s NodeSetup) check() error {
	var missing []string
	for name, v := range map[string]string{"prefix": s.Prefix, "user": s.User, "go": s.Go} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	for _, arch := range []string{"amd64", "arm64"} {
		if s.GoSHA256[arch] == "" {
			missing = append(missing, "go sha256 for "+arch)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("node setup: %s missing", strings.Join(missing, ", "))
	}
	if strings.ContainsAny(s.User, "/ \t\n'\"$") {
		return fmt.Errorf("node setup: %q is not a login user name", s.User)
	}
	return nil
}

// bootstrapEnv is /etc/capilab/bootstrap.env, sourced by capilab-bootstrap
// (with allexport, so the proxies reach make and Go).
func (s NodeSetup) bootstrapEnv() string {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, shellescape.Quote(v)) }
	b.WriteString("# capilab-bootstrap settings (rendered by capilab)\n")
	line("CAPILAB_USER", s.User)
	line("CAPILAB_STATE", s.StateDir())
	line("CAPILAB_GO", s.Go)
	line("CAPILAB_GO_SHA256_amd64", s.GoSHA256["amd64"])
	line("CAPILAB_GO_SHA256_arm64", s.GoSHA256["arm64"])
	line("CAPILAB_DOCKER_MTU", strconv.Itoa(s.DockerMTU))
	line("GOPROXY", s.GoProxy)
	if s.HTTPProxy != "" {
		for _, k := range []string{"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"} {
			line(k, s.HTTPProxy)
		}
		for _, k := range []string{"no_proxy", "NO_PROXY"} {
			line(k, s.NoProxy)
		}
	}
	return b.String()
}
