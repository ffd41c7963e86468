// Package faultproxy is an HTTP proxy for tests that sits in front of an
// OpenStack cloud (devcloud) and injects faults, reproducibly from a seed and
// per service: 500/503 responses, 429 with Retry-After, connection resets
// (before the request reaches the cloud, or after the cloud applied it, the
// "lost response"), and added latency.
//
// Clients only need the proxy's Keystone URL: the proxy rewrites every
// upstream URL it sees in responses — above all the service catalog in token
// responses — so that gophercloud, keystoneauth and the openstack CLI send
// every later request through it as well. Each upstream origin gets a path
// prefix named after its catalog service type (/identity/, /compute/,
// /network/, ...), which is also the key of Config.Rules.
//
//	p, err := faultproxy.Start(ctx, faultproxy.Config{
//		Upstream: "http://127.0.0.1:5000/v3",
//		Seed:     1,
//		Rules: map[string]faultproxy.Rule{
//			"compute": {ErrorRate: 0.2, ThrottleRate: 0.1, RetryAfter: time.Second},
//			"*":       {Latency: 20 * time.Millisecond},
//		},
//	})
//	defer p.Close()
//	authURL := p.AuthURL() // give this to the client instead of the real one
//	...
//	st := p.Stats()["compute"] // what was injected
//
// The same seed, rules and sequence of requests per service give the same
// faults: every service draws from its own random source, so requests to one
// service do not shift the faults seen by another.
package faultproxy
