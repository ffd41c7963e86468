// Package devcloudtest is the small toolkit for integration tests that run
// against devcloud, the local OpenStack of scripts/devcloud (docs/devcloud.md).
//
// Test files using it carry the build tag `integration` and live under tests/,
// so `make test-integration` (scripts/test-integration.sh) runs them after
// bringing devcloud up, and `make test` never sees them. This package itself
// has no build tag and does nothing at import: no network, no files.
//
// Clouds are clouds.yaml entries. devcloud writes two:
//
//	devcloudtest.Member() // "devcloud-member": a tenant (member + load-balancer_member roles)
//	devcloudtest.Admin()  // "devcloud": admin
//
// Run tests of ownership and cleanup as the member, like a real tenant.
//
// A typical test:
//
//	//go:build integration
//
//	func TestNetworkLifecycle(t *testing.T) {
//		c := devcloudtest.Member()
//		net := c.Network(t)                            // gophercloud/v2 service client
//		name := devcloudtest.Name(t, "net")            // unique, recognisable, cleanup-friendly
//		n, err := networks.Create(t.Context(), net, networks.CreateOpts{Name: name}).Extract()
//		if err != nil { t.Fatal(err) }
//		devcloudtest.Cleanup(t, "network "+name, func(ctx context.Context) error {
//			return networks.Delete(ctx, net, n.ID).ExtractErr() // 404 counts as deleted
//		})
//		out := c.CLI(t, "network", "show", name, "-f", "value", "-c", "status") // the real openstack CLI
//		...
//	}
//
// Faults: WithFaults starts internal/testing/faultproxy in front of a cloud and
// returns a Cloud that goes through it (its own clouds.yaml, for gophercloud
// and the CLI alike) plus the proxy, whose Stats say what was injected:
//
//	fc, p := devcloudtest.WithFaults(t, devcloudtest.Member(), faultproxy.Config{
//		Seed:  1,
//		Rules: map[string]faultproxy.Rule{"image": {ErrorRate: 0.3, ThrottleRate: 0.1}},
//	})
//	img := fc.Image(t) // every request goes through p
//
// If devcloud does not answer, the helpers fail the test (t.Fatal); they never
// skip, so an unreachable devcloud can never pass as green.
package devcloudtest
