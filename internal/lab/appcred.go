package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/gophercloud/gophercloud/v2/openstack/loadbalancer/v2/providers"
	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/appcred"
	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/naming"
)

// AppcredManager connects to the cloud and returns the manager of the lab's
// application credentials, writing into the state directory.
func (r *Run) AppcredManager(ctx context.Context) (*appcred.Manager, *cloud.Cloud, error) {
	c, err := r.Cloud(ctx)
	if err != nil {
		return nil, nil, err
	}
	k, err := appcred.KeystoneOf(c)
	if err != nil {
		return nil, nil, err
	}
	ep := appcred.Endpoint{
		AuthURL:   c.AuthURL,
		Region:    c.Endpoint.Region,
		Interface: string(c.Endpoint.Availability),
		CACert:    r.sourceCACert(),
	}
	return &appcred.Manager{Keystone: k, Endpoint: ep, State: r.State(), Secrets: r.Secrets, Log: r.Log, TokenCache: r.cloudOptions().TokenCache}, c, nil
}

// sourceCACert is the CA bundle the source cloud is reached with (OS_CACERT
// or its clouds.yaml cacert), as an absolute path, or "".
func (r *Run) sourceCACert() string {
	env := environMap(r.opts.Environ)
	if v := env["OS_CACERT"]; v != "" {
		return r.Path(v)
	}
	candidates := []string{r.cloudsFile()}
	if candidates[0] == "" {
		home := env["HOME"]
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		candidates = []string{filepath.Join(r.Dir, "clouds.yaml"), filepath.Join(home, ".config", "openstack", "clouds.yaml"), "/etc/openstack/clouds.yaml"}
	}
	for _, p := range candidates {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var doc clouds.Clouds
		if yaml.Unmarshal(data, &doc) != nil {
			return ""
		}
		if c, ok := doc.Clouds[r.Settings.Cloud]; ok && c.CACertFile != "" {
			return r.Path(c.CACertFile)
		}
		return ""
	}
	return ""
}

func environMap(environ []string) map[string]string {
	m := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// loadBalancerOptions maps use_ovn_lb_provider to cloud.conf (SCS's
// handle_ovn_lb.sh): true → the ovn provider; auto → ovn when Octavia
// offers it.
func (r *Run) loadBalancerOptions(ctx context.Context, c *cloud.Cloud) (appcred.LoadBalancer, error) {
	ovn := appcred.LoadBalancer{Provider: "ovn", Method: "SOURCE_IP_PORT", CreateMonitor: true}
	switch r.Settings.UseOVNLBProvider {
	case "true":
		return ovn, nil
	case "auto":
		lb, err := c.LoadBalancer()
		if err != nil {
			return appcred.LoadBalancer{}, err
		}
		pages, err := providers.List(lb, nil).AllPages(ctx)
		if err != nil {
			return appcred.LoadBalancer{}, fmt.Errorf("cloud %s: listing the load balancer providers (use_ovn_lb_provider=auto): %w", c.Name, err)
		}
		list, err := providers.ExtractProviders(pages)
		if err != nil {
			return appcred.LoadBalancer{}, err
		}
		for _, p := range list {
			if p.Name == "ovn" {
				return ovn, nil
			}
		}
	}
	return appcred.LoadBalancer{}, nil
}

// AppcredCreate is `make appcred`: the lab's credential and (appcred_scope
// cluster, the default) CLUSTER's, with their clouds.yaml entries and
// CLUSTER's cloud.conf in the state directory.
func AppcredCreate(ctx context.Context, r *Run) error {
	m, c, err := r.AppcredManager(ctx)
	if err != nil {
		return err
	}
	s := r.Settings
	lab, err := m.Ensure(ctx, s.Prefix, "", appcred.Options{})
	if err != nil {
		return err
	}
	printCred(r, lab)
	if s.AppcredScope != "cluster" {
		return nil
	}
	lb, err := r.loadBalancerOptions(ctx, c)
	if err != nil {
		return err
	}
	cred, err := m.Ensure(ctx, s.Prefix, s.Cluster, appcred.Options{Expiry: s.AppcredExpiry, LoadBalancer: lb})
	if err != nil {
		return err
	}
	printCred(r, cred)
	fmt.Fprintf(r.Stdout, "use: OS_CLIENT_CONFIG_FILE=%s OS_CLOUD=%s openstack ...\n", cred.CloudsFile, cred.CloudName)
	return nil
}

func printCred(r *Run, c appcred.Credential) {
	kind := "restricted"
	if c.Unrestricted {
		kind = "unrestricted"
	}
	expires := "never expires"
	if !c.ExpiresAt.IsZero() {
		expires = "expires " + c.ExpiresAt.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(r.Stdout, "application credential %s: %s (id %s, %s, %s); clouds.yaml entry %s", c.Name, c.Action, c.ID, kind, expires, c.CloudName)
	if c.CloudConf != "" {
		fmt.Fprintf(r.Stdout, ", cloud.conf %s", c.CloudConf)
	}
	fmt.Fprintln(r.Stdout)
}

// AppcredDelete revokes CLUSTER's credential (appcred_scope lab: the lab's)
// and removes its local entries; with dry_run it only says what it would do.
func AppcredDelete(ctx context.Context, r *Run) error {
	m, _, err := r.AppcredManager(ctx)
	if err != nil {
		return err
	}
	s := r.Settings
	cluster := s.Cluster
	if s.AppcredScope == "lab" {
		cluster = ""
	}
	name := naming.AppCred(s.Prefix, cluster)
	if s.DryRun {
		all, err := m.List(ctx, s.Prefix)
		if err != nil {
			return err
		}
		for _, l := range all {
			if l.Name == name {
				fmt.Fprintf(r.Stdout, "dry run: would revoke application credential %s (id %s, in keystone: %v) and remove its local entries\n", name, l.ID, l.InKeystone)
				return nil
			}
		}
		fmt.Fprintf(r.Stdout, "dry run: application credential %s does not exist; nothing to do\n", name)
		return nil
	}
	d, err := m.Delete(ctx, s.Prefix, cluster)
	if err != nil {
		return err
	}
	switch {
	case d.NotFound:
		fmt.Fprintf(r.Stdout, "application credential %s: does not exist; nothing to do\n", name)
	case d.Existed:
		fmt.Fprintf(r.Stdout, "application credential %s: revoked (id %s); local entries removed\n", name, d.ID)
	default:
		fmt.Fprintf(r.Stdout, "application credential %s: was gone from keystone; local entries removed\n", name)
	}
	return nil
}

// AppcredList shows the lab's credentials and whether their secret is known locally.
func AppcredList(ctx context.Context, r *Run) error {
	m, _, err := r.AppcredManager(ctx)
	if err != nil {
		return err
	}
	all, err := m.List(ctx, r.Settings.Prefix)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(r.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tCLUSTER\tUNRESTRICTED\tEXPIRES\tSECRET KNOWN\tIN KEYSTONE")
	for _, l := range all {
		cluster, unrestricted, expires, inKeystone := l.Cluster, fmt.Sprint(l.Unrestricted), "never", "yes"
		if cluster == "" {
			cluster = "(lab)"
		}
		if !l.ExpiresAt.IsZero() {
			expires = l.ExpiresAt.UTC().Format(time.RFC3339)
		}
		secret := "yes"
		if !l.SecretKnown {
			secret = "no (it will be rotated)"
		}
		if !l.InKeystone {
			// Only the local entry is left: Keystone's facts are unknown.
			unrestricted, expires, inKeystone = "-", "-", "no (revoked or deleted; make appcred-delete removes the entry)"
			secret = "yes (useless)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Name, l.ID, cluster, unrestricted, expires, secret, inKeystone)
	}
	return tw.Flush()
}
