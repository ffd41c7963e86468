// Package cloud connects capilab to an OpenStack cloud: clouds.yaml read the
// standard way (gophercloud/v2 openstack/config/clouds: OS_CLOUD,
// OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack, /etc/openstack), an HTTP
// transport that retries transient failures and counts calls, and secrets
// registered for redaction the moment they are read.
package cloud

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/wait"
)

// Options say which cloud to use and how to talk to it.
type Options struct {
	Cloud   string // clouds.yaml entry (OS_CLOUD)
	Log     *slog.Logger
	Secrets *logging.Secrets
	Retry   RetryPolicy
	// CloudsFile, when set, is the only clouds.yaml searched (as OS_CLIENT_CONFIG_FILE).
	CloudsFile string
	// TokenCache, when set, is a directory where tokens are kept between
	// runs (see tokencache.go); "" logs in every time.
	TokenCache string
}

// Cloud is an authenticated connection to one cloud.
type Cloud struct {
	Name      string
	Provider  *gophercloud.ProviderClient
	Endpoint  gophercloud.EndpointOpts
	ProjectID string
	UserID    string
	AuthURL   string
	Stats     *Stats
	tls       *tls.Config
	log       *slog.Logger
}

// Profile is what clouds.yaml says about a cloud, without connecting.
type Profile struct {
	Name     string
	Auth     gophercloud.AuthOptions // holds secrets: never print it
	Endpoint gophercloud.EndpointOpts
	TLS      *tls.Config
}

// Resolve reads the cloud's clouds.yaml entry (and secure.yaml) and
// registers its secrets for redaction. It makes no network call.
func Resolve(opts Options) (*Profile, error) {
	if opts.Cloud == "" {
		return nil, errors.New("no cloud selected: set OS_CLOUD (or cloud: in lab.yaml) to a clouds.yaml entry")
	}
	parseOpts := []clouds.ParseOption{clouds.WithCloudName(opts.Cloud)}
	if opts.CloudsFile != "" {
		parseOpts = append(parseOpts, clouds.WithLocations(opts.CloudsFile))
	}
	ao, eo, tlsConfig, err := clouds.Parse(parseOpts...)
	if err != nil {
		return nil, fmt.Errorf("cloud %s: reading clouds.yaml: %w", opts.Cloud, err)
	}
	opts.Secrets.Add(ao.Password, ao.ApplicationCredentialSecret, ao.TokenID)
	ao.AllowReauth = true
	return &Profile{Name: opts.Cloud, Auth: ao, Endpoint: eo, TLS: tlsConfig}, nil
}

// Connect resolves the cloud and authenticates.
func Connect(ctx context.Context, opts Options) (*Cloud, error) {
	p, err := Resolve(opts)
	if err != nil {
		return nil, err
	}
	return p.Connect(ctx, opts)
}

// Connect authenticates against the profile's Keystone.
func (p *Profile) Connect(ctx context.Context, opts Options) (*Cloud, error) {
	log := opts.Log
	if log == nil {
		log = logging.Discard()
	}
	stats := &Stats{}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = p.TLS
	// Bound connection set-up and waiting for response headers; bodies
	// (image uploads) may take as long as they take.
	base.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	base.ResponseHeaderTimeout = 5 * time.Minute
	rt := &transport{next: base, policy: opts.Retry.withDefaults(), stats: stats, log: log, sleep: wait.Sleep}

	provider, err := openstack.NewClient(p.Auth.IdentityEndpoint)
	if err != nil {
		return nil, fmt.Errorf("cloud %s: auth_url %q: %w", p.Name, p.Auth.IdentityEndpoint, err)
	}
	provider.HTTPClient = http.Client{Transport: rt}
	if opts.TokenCache != "" {
		cached, err := connectCached(ctx, provider, p.Auth, opts.TokenCache, time.Now())
		if err != nil {
			return nil, fmt.Errorf("cloud %s: authenticating at %s: %w", p.Name, p.Auth.IdentityEndpoint, err)
		}
		log.Debug("authenticated", "cloud", p.Name, "from_cache", cached)
	} else if err := openstack.Authenticate(ctx, provider, p.Auth); err != nil {
		return nil, fmt.Errorf("cloud %s: authenticating at %s: %w", p.Name, p.Auth.IdentityEndpoint, err)
	}
	opts.Secrets.Add(provider.Token())
	c := &Cloud{Name: p.Name, Provider: provider, Endpoint: p.Endpoint, AuthURL: p.Auth.IdentityEndpoint, Stats: stats, tls: p.TLS, log: log}
	if r, ok := provider.GetAuthResult().(tokens.CreateResult); ok {
		if proj, err := r.ExtractProject(); err == nil && proj != nil {
			c.ProjectID = proj.ID
		}
		if user, err := r.ExtractUser(); err == nil && user != nil {
			c.UserID = user.ID
		}
	}
	return c, nil
}

// Service clients. Each names the cloud in its error.

func (c *Cloud) Compute() (*gophercloud.ServiceClient, error) {
	return c.wrap("compute", func() (*gophercloud.ServiceClient, error) { return openstack.NewComputeV2(c.Provider, c.Endpoint) })
}

func (c *Cloud) Network() (*gophercloud.ServiceClient, error) {
	return c.wrap("network", func() (*gophercloud.ServiceClient, error) { return openstack.NewNetworkV2(c.Provider, c.Endpoint) })
}

func (c *Cloud) Image() (*gophercloud.ServiceClient, error) {
	return c.wrap("image", func() (*gophercloud.ServiceClient, error) { return openstack.NewImageV2(c.Provider, c.Endpoint) })
}

func (c *Cloud) Identity() (*gophercloud.ServiceClient, error) {
	return c.wrap("identity", func() (*gophercloud.ServiceClient, error) { return openstack.NewIdentityV3(c.Provider, c.Endpoint) })
}

func (c *Cloud) LoadBalancer() (*gophercloud.ServiceClient, error) {
	return c.wrap("load-balancer", func() (*gophercloud.ServiceClient, error) {
		return openstack.NewLoadBalancerV2(c.Provider, c.Endpoint)
	})
}

func (c *Cloud) BlockStorage() (*gophercloud.ServiceClient, error) {
	return c.wrap("block-storage", func() (*gophercloud.ServiceClient, error) {
		return openstack.NewBlockStorageV3(c.Provider, c.Endpoint)
	})
}

func (c *Cloud) wrap(service string, mk func() (*gophercloud.ServiceClient, error)) (*gophercloud.ServiceClient, error) {
	sc, err := mk()
	if err != nil {
		return nil, fmt.Errorf("cloud %s: no %s endpoint in the catalog: %w", c.Name, service, err)
	}
	return sc, nil
}

// IsNotFound reports a 404, which capilab treats as success on delete.
func IsNotFound(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusNotFound) }

// IsConflict reports a 409.
func IsConflict(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusConflict) }
