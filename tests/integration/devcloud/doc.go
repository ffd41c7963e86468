// Package devcloud holds the integration tests that prove devcloud is a
// faithful OpenStack target: gophercloud/v2 lifecycles per
// resource type, the real openstack CLI, conflicts behaving as in production,
// a floating IP on a load balancer's VIP port, the fault proxy against the
// real catalog, and the devcloud script's own promises (loopback only,
// idempotent start). The tests carry the build tag `integration`; run them
// with `make test-integration`.
package devcloud
