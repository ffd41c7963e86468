package devcloudtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/testing/faultproxy"
)

// Cloud names devcloud writes into clouds.yaml.
const (
	AdminCloud  = "devcloud"
	MemberCloud = "devcloud-member"
)

// OpenstackCLI is Debian's openstack client (python3-openstackclient). It is run by
// absolute path so that a pyenv or venv python earlier in PATH cannot shadow it.
const OpenstackCLI = "/usr/bin/openstack"

// Cloud is one clouds.yaml entry: Name in the file CloudsYAML.
type Cloud struct {
	Name       string
	CloudsYAML string
}

// CloudsYAMLPath is where devcloud writes its entries: $OS_CLIENT_CONFIG_FILE if
// set, else ~/.config/openstack/clouds.yaml.
func CloudsYAMLPath() string {
	if p := os.Getenv("OS_CLIENT_CONFIG_FILE"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".config", "openstack", "clouds.yaml")
}

// Member is devcloud's tenant: a non-admin user with the member and
// load-balancer_member roles in its own project.
func Member() Cloud { return Cloud{Name: MemberCloud, CloudsYAML: CloudsYAMLPath()} }

// Admin is devcloud's admin user in project admin.
func Admin() Cloud { return Cloud{Name: AdminCloud, CloudsYAML: CloudsYAMLPath()} }

// Env is the environment that points OpenStack clients (CLI, mage targets) at c.
func (c Cloud) Env() []string {
	return []string{"OS_CLOUD=" + c.Name, "OS_CLIENT_CONFIG_FILE=" + c.CloudsYAML}
}

// Entry returns the cloud's clouds.yaml entry as parsed YAML.
func (c Cloud) Entry(t testing.TB) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(c.CloudsYAML)
	if err != nil {
		t.Fatalf("devcloudtest: read %s: %v (is devcloud up? run `make devcloud-up`)", c.CloudsYAML, err)
	}
	var doc struct {
		Clouds map[string]map[string]any `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("devcloudtest: parse %s: %v", c.CloudsYAML, err)
	}
	e, ok := doc.Clouds[c.Name]
	if !ok {
		t.Fatalf("devcloudtest: no cloud %q in %s (is devcloud up? run `make devcloud-up`)", c.Name, c.CloudsYAML)
	}
	return e
}

// AuthOptions parses the cloud's clouds.yaml entry.
func (c Cloud) AuthOptions(t testing.TB) (gophercloud.AuthOptions, gophercloud.EndpointOpts) {
	t.Helper()
	ao, eo, _, err := clouds.Parse(clouds.WithCloudName(c.Name), clouds.WithLocations(c.CloudsYAML))
	if err != nil {
		t.Fatalf("devcloudtest: cloud %q in %s: %v", c.Name, c.CloudsYAML, err)
	}
	ao.AllowReauth = true
	return ao, eo
}

// Provider authenticates as the cloud's user. It fails the test — it never
// skips — when devcloud does not answer.
func (c Cloud) Provider(t testing.TB) (*gophercloud.ProviderClient, gophercloud.EndpointOpts) {
	t.Helper()
	ao, eo := c.AuthOptions(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pc, err := config.NewProviderClient(ctx, ao)
	if err != nil {
		t.Fatalf("devcloudtest: authenticate as cloud %q at %s: %v (is devcloud up? run `make devcloud-up`)", c.Name, ao.IdentityEndpoint, err)
	}
	return pc, eo
}

func (c Cloud) service(t testing.TB, kind string, mk func(*gophercloud.ProviderClient, gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error)) *gophercloud.ServiceClient {
	t.Helper()
	pc, eo := c.Provider(t)
	sc, err := mk(pc, eo)
	if err != nil {
		t.Fatalf("devcloudtest: %s client for cloud %q: %v", kind, c.Name, err)
	}
	return sc
}

// Compute returns a Nova client (microversion 2.79, what CAPO v0.14 uses at least).
func (c Cloud) Compute(t testing.TB) *gophercloud.ServiceClient {
	sc := c.service(t, "compute", openstack.NewComputeV2)
	sc.Microversion = "2.79"
	return sc
}

// Network returns a Neutron client.
func (c Cloud) Network(t testing.TB) *gophercloud.ServiceClient {
	return c.service(t, "network", openstack.NewNetworkV2)
}

// Image returns a Glance client.
func (c Cloud) Image(t testing.TB) *gophercloud.ServiceClient {
	return c.service(t, "image", openstack.NewImageV2)
}

// BlockStorage returns a Cinder v3 client.
func (c Cloud) BlockStorage(t testing.TB) *gophercloud.ServiceClient {
	return c.service(t, "block-storage", openstack.NewBlockStorageV3)
}

// LoadBalancer returns an Octavia client.
func (c Cloud) LoadBalancer(t testing.TB) *gophercloud.ServiceClient {
	return c.service(t, "load-balancer", openstack.NewLoadBalancerV2)
}

// Identity returns a Keystone v3 client.
func (c Cloud) Identity(t testing.TB) *gophercloud.ServiceClient {
	return c.service(t, "identity", openstack.NewIdentityV3)
}

// ---- the real openstack CLI --------------------------------------------------------------------

// CLIRun runs `openstack args...` as the cloud and returns stdout, stderr and the error
// (nil on exit status 0). Use it when a failure is the expected outcome.
//
// A run that could not reach the cloud ("Unable to establish connection": the
// CLI itself never retries) is repeated, up to three attempts, only where a
// repeat cannot do the command twice: see retryable. The stderr returned
// then starts with what the earlier attempts printed.
func (c Cloud) CLIRun(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var earlier strings.Builder
	for attempt := 1; ; attempt++ {
		stdout, stderr, err = c.cliOnce(ctx, args...)
		if err == nil || attempt == 3 || ctx.Err() != nil || !retryable(args, stderr) {
			return stdout, earlier.String() + stderr, err
		}
		fmt.Fprintf(&earlier, "[attempt %d, repeated: %s]\n", attempt, strings.TrimSpace(stderr))
	}
}

// unreachable finds the URL and the reason in the openstack CLI's
// "Unable to establish connection to URL: reason".
var unreachable = regexp.MustCompile(`Unable to establish connection to (\S+): (.*)`)

// retryable says whether `openstack args...`, which failed with stderr, may be
// run again. Only a failure to reach the cloud is retried, and only when the
// command's own request cannot have been done: the connection was never
// opened, the failure was in authentication (which comes first), or the
// command only reads or sets (show, list, set, unset, token issue). A request
// that was sent and got no answer may have been done: devcloud's API server
// closes a connection without a response when a worker takes too long, and the
// worker still finishes; repeating a create there makes a second resource.
func retryable(args []string, stderr string) bool {
	m := unreachable.FindStringSubmatch(stderr)
	if m == nil {
		return false
	}
	url, reason := m[1], m[2]
	if strings.Contains(reason, "Failed to establish a new connection") || strings.Contains(reason, "Connection refused") ||
		strings.HasSuffix(url, "/auth/tokens") {
		return true
	}
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		switch a {
		case "show", "list", "set", "unset", "issue":
			return true
		}
	}
	return false
}

func (c Cloud) cliOnce(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, OpenstackCLI, args...)
	cmd.Env = append(cleanEnv(), c.Env()...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("openstack %s (OS_CLOUD=%s): %w", strings.Join(args, " "), c.Name, err)
	}
	return out.String(), errb.String(), err
}

// CLI runs `openstack args...` as the cloud (bounded by 5 minutes) and returns its
// stdout; any failure fails the test with the CLI's stderr.
func (c Cloud) CLI(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, stderr, err := c.CLIRun(ctx, args...)
	if err != nil {
		t.Fatalf("%v\nstderr: %s", err, strings.TrimSpace(stderr))
	}
	return out
}

// CLIJSON runs `openstack args... -f json` and decodes the output into v.
func (c Cloud) CLIJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	out := c.CLI(t, append(args, "-f", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("openstack %s: decode JSON: %v\noutput: %s", strings.Join(args, " "), err, out)
	}
}

// cleanEnv is the process environment without OS_* variables (the cloud comes
// from clouds.yaml only) and with Debian's tools first in PATH.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OS_") || strings.HasPrefix(kv, "PATH=") ||
			strings.HasPrefix(kv, "PYTHONPATH=") || strings.HasPrefix(kv, "VIRTUAL_ENV=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
}

// ---- names, cleanup, waiting -------------------------------------------------------------------

// NamePrefix starts every name Name makes, so leftovers of a killed run are easy to find.
const NamePrefix = "capilab-it-"

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// Name returns a unique resource name for the test: capilab-it-<kind>-<test>-<random>.
func Name(t testing.TB, kind string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	test := strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(test) > 30 {
		test = test[len(test)-30:]
	}
	return fmt.Sprintf("%s%s-%s-%s", NamePrefix, strings.Trim(nonName.ReplaceAllString(strings.ToLower(kind), "-"), "-"),
		strings.Trim(test, "-"), hex.EncodeToString(b))
}

// CleanupTimeout bounds each cleanup function.
const CleanupTimeout = 3 * time.Minute

// Cleanup registers del to run when the test ends (t.Cleanup order: last
// registered runs first), with its own context bounded by CleanupTimeout. A 404
// counts as deleted; any other error fails the test, naming what was leaked.
func Cleanup(t testing.TB, what string, del func(ctx context.Context) error) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), CleanupTimeout)
		defer cancel()
		if err := del(ctx); err != nil && !IsNotFound(err) {
			t.Errorf("cleanup of %s failed (it may be left behind): %v", what, err)
		}
	})
}

// IsNotFound reports whether err is an HTTP 404 from OpenStack.
func IsNotFound(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusNotFound) }

// IsConflict reports whether err is an HTTP 409 from OpenStack.
func IsConflict(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusConflict) }

// Poll calls cond every interval until it reports done, it returns an error, or
// timeout passes; what says what is awaited, for the failure message.
func Poll(ctx context.Context, timeout, interval time.Duration, what string, cond func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		done, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: not done after %v: %w", what, timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// WaitFor is Poll for tests: it fails the test when the wait fails.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := Poll(t.Context(), timeout, time.Second, what, cond); err != nil {
		t.Fatal(err)
	}
}

// ---- faults ------------------------------------------------------------------------------------

// WithFaults starts a fault proxy in front of base (cfg.Upstream defaults to the
// base entry's auth_url) and returns a Cloud that goes through it — its own
// clouds.yaml in a temporary directory, entry <base>-faulty — and the proxy.
// The proxy stops when the test ends.
func WithFaults(t testing.TB, base Cloud, cfg faultproxy.Config) (Cloud, *faultproxy.Proxy) {
	t.Helper()
	entry := base.Entry(t)
	if cfg.Upstream == "" {
		auth, _ := entry["auth"].(map[string]any)
		u, _ := auth["auth_url"].(string)
		if u == "" {
			t.Fatalf("devcloudtest: cloud %q has no auth.auth_url", base.Name)
		}
		cfg.Upstream = u
	}
	p, err := faultproxy.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("devcloudtest: start fault proxy: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("fault proxy: %v", err)
		}
	})
	c := Cloud{Name: base.Name + "-faulty", CloudsYAML: filepath.Join(t.TempDir(), "clouds.yaml")}
	if err := p.WriteCloudsYAML(c.CloudsYAML, c.Name, entry); err != nil {
		t.Fatalf("devcloudtest: %v", err)
	}
	return c, p
}
