// Command osprobe authenticates with a clouds.yaml entry (OS_CLOUD,
// OS_CLIENT_CONFIG_FILE) through gophercloud, as OCCM, Cinder CSI and CAPO
// do, and makes one read call to every service the lab uses. It prints one
// line per service with the endpoint it used and exits non-zero when any
// call fails or an endpoint does not start with OSPROBE_WANT_PREFIX.
//
// With -get URL it instead fetches URL (TLS unverified) and prints the
// body: the tests check from a kind pod that a floating IP answers.
//
// The dataplane integration tests run it in kind pods and node containers.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
)

func main() {
	get := flag.String("get", "", "fetch this URL (TLS unverified) and print the body instead")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute) // devcloud on a loaded machine answers slowly
	defer cancel()
	run := run
	if *get != "" {
		run = func(ctx context.Context) error { return fetch(ctx, *get) }
	}
	if err := run(ctx); err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("OK")
}

func run(ctx context.Context) error {
	ao, eo, tlsCfg, err := clouds.Parse()
	if err != nil {
		return fmt.Errorf("clouds.yaml: %w", err)
	}
	ao.AllowReauth = true
	pc, err := config.NewProviderClient(ctx, ao, config.WithTLSConfig(tlsCfg))
	if err != nil {
		return fmt.Errorf("authenticate at %s: %w", ao.IdentityEndpoint, err)
	}
	fmt.Printf("identity %s region=%s\n", ao.IdentityEndpoint, eo.Region)
	want := os.Getenv("OSPROBE_WANT_PREFIX")
	type svc struct {
		name string
		mk   func(*gophercloud.ProviderClient, gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error)
		path string
	}
	services := []svc{
		{"compute", openstack.NewComputeV2, "servers"},
		{"network", openstack.NewNetworkV2, "networks"},
		{"image", openstack.NewImageV2, "images"},
		{"load-balancer", openstack.NewLoadBalancerV2, "lbaas/loadbalancers"},
		{"block-storage", openstack.NewBlockStorageV3, "volumes"},
	}
	var failed []string
	for _, s := range services {
		sc, err := s.mk(pc, eo)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: no endpoint: %v", s.name, err))
			continue
		}
		if want != "" && !strings.HasPrefix(sc.Endpoint, want) {
			failed = append(failed, fmt.Sprintf("%s: endpoint %s does not start with %s", s.name, sc.Endpoint, want))
			continue
		}
		var body map[string]any
		start := time.Now()
		_, err = sc.Get(ctx, sc.ServiceURL(s.path), &body, nil)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: GET %s: %v", s.name, sc.ServiceURL(s.path), err))
			continue
		}
		fmt.Printf("%s %s ok (%d ms)\n", s.name, sc.ServiceURL(s.path), time.Since(start).Milliseconds())
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}

func fetch(ctx context.Context, url string) error {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec: a reachability probe
	var last error
	for range 10 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			fmt.Printf("GET %s: %s %s\n", url, resp.Status, b)
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		time.Sleep(2 * time.Second)
	}
	return fmt.Errorf("GET %s: %w", url, last)
}
