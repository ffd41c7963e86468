//go:build integration

package devcloud

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"

	"github.com/capilab/capilab/internal/testing/faultproxy"
	"github.com/capilab/capilab/tests/devcloudtest"
)

// The fault proxy in front of the real devcloud: Keystone's catalog is
// rewritten so gophercloud and the openstack CLI send every request through it,
// and the faults arrive as configured.
func TestFaultProxyAgainstDevcloud(t *testing.T) {
	t.Parallel()
	fc, p := devcloudtest.WithFaults(t, devcloudtest.Member(), faultproxy.Config{
		Seed: 1,
		Rules: map[string]faultproxy.Rule{
			"compute": {ErrorRate: 1, MaxFaults: 2},
			"network": {ThrottleRate: 1, RetryAfter: time.Second, MaxFaults: 1},
		},
	})

	pc, eo := fc.Provider(t)
	compute, err := openstack.NewComputeV2(pc, eo)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(compute.Endpoint, p.URL()+"/") {
		t.Fatalf("compute endpoint %s does not go through the proxy %s", compute.Endpoint, p.URL())
	}
	for i, want := range []bool{false, false, true} {
		_, err := servers.List(compute, nil).AllPages(t.Context())
		if ok := err == nil; ok != want {
			t.Fatalf("server list #%d: err %v, want success=%v", i+1, err, want)
		}
		if !want && !gophercloud.ResponseCodeIs(err, http.StatusInternalServerError) && !gophercloud.ResponseCodeIs(err, http.StatusServiceUnavailable) {
			t.Errorf("server list #%d: %v, want an injected 500/503", i+1, err)
		}
	}

	// gophercloud retries a 429 when given a backoff function: honour Retry-After.
	pc.MaxBackoffRetries = 2
	pc.RetryBackoffFunc = func(ctx context.Context, e *gophercloud.ErrUnexpectedResponseCode, err error, _ uint) error {
		secs, convErr := strconv.Atoi(e.ResponseHeader.Get("Retry-After"))
		if convErr != nil {
			return err
		}
		select {
		case <-time.After(time.Duration(secs) * time.Second):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	start := time.Now() // the client's first network request (version discovery) gets the 429
	net, err := openstack.NewNetworkV2(pc, eo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := networks.List(net, nil).AllPages(t.Context()); err != nil {
		t.Fatalf("network list through one injected 429: %v", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("network client and list took %v; the client should have honoured Retry-After: 1", d)
	}

	// The real CLI follows the rewritten catalog too.
	fc.CLI(t, "server", "list", "-f", "value", "-c", "ID")
	st := p.Stats()
	if st["compute"].Errors != 2 || st["network"].Throttled != 1 {
		t.Errorf("stats %+v: want 2 compute errors and 1 network throttle", st)
	}
	if st["compute"].Requests < 4 || st["identity"].Requests < 2 {
		t.Errorf("stats %+v: the CLI's requests did not all go through the proxy", st)
	}
}
