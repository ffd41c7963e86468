package faultproxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/testing/faultproxy"
)

// fakeCloud is a Keystone and a compute service on two httptest servers; the token
// response carries a catalog pointing at the compute server, like a real cloud.
type fakeCloud struct {
	keystone, compute *httptest.Server
	computeHits       atomic.Int64
}

func newFakeCloud(t *testing.T) *fakeCloud {
	t.Helper()
	fc := &fakeCloud{}
	fc.compute = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fc.computeHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		self := "http://" + r.Host + r.URL.Path
		fmt.Fprintf(w, `{"path": %q, "method": %q, "links": [{"rel": "self", "href": %q}]}`, r.URL.Path, r.Method, self)
	}))
	t.Cleanup(fc.compute.Close)
	fc.keystone = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v3/auth/tokens":
			w.Header().Set("X-Subject-Token", "tok")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"token": {"catalog": [
				{"type": "identity", "endpoints": [{"interface": "public", "url": "%[1]s/v3/"}]},
				{"type": "compute", "endpoints": [{"interface": "public", "url": "%[2]s/v2.1"},
				                                  {"interface": "internal", "url": "%[2]s/v2.1"}]}]}}`,
				fc.keystone.URL, fc.compute.URL)
		case r.URL.Path == "/v3" || r.URL.Path == "/v3/":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"version": {"id": "v3.14", "links": [{"rel": "self", "href": "%s/v3/"}]}}`, fc.keystone.URL)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(fc.keystone.Close)
	return fc
}

func startProxy(t *testing.T, fc *fakeCloud, seed int64, rules map[string]faultproxy.Rule) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(t.Context(), faultproxy.Config{Upstream: fc.keystone.URL + "/v3", Seed: seed, Rules: rules})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// client never reuses connections, so one reset cannot leak into the next request.
func client() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

func do(t *testing.T, method, url string) (int, http.Header, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client().Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

// authenticate issues a token through the proxy and returns the compute URL of the catalog.
func authenticate(t *testing.T, p *faultproxy.Proxy) string {
	t.Helper()
	status, _, body, err := do(t, http.MethodPost, p.AuthURL()+"/auth/tokens")
	if err != nil || status != http.StatusCreated {
		t.Fatalf("POST auth/tokens through proxy: status %d, err %v", status, err)
	}
	var doc struct {
		Token struct {
			Catalog []struct {
				Type      string
				Endpoints []struct{ URL string }
			}
		}
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("token body: %v", err)
	}
	compute := ""
	for _, e := range doc.Token.Catalog {
		for _, ep := range e.Endpoints {
			if !strings.HasPrefix(ep.URL, p.URL()+"/") {
				t.Errorf("catalog %s endpoint %q does not point at the proxy %s", e.Type, ep.URL, p.URL())
			}
			if e.Type == "compute" {
				compute = ep.URL
			}
		}
	}
	if compute == "" {
		t.Fatalf("no compute endpoint in rewritten catalog: %s", body)
	}
	return compute
}

func TestCatalogRewriteRoutesThroughProxy(t *testing.T) {
	fc := newFakeCloud(t)
	p := startProxy(t, fc, 1, nil)

	compute := authenticate(t, p)
	if want := p.URL() + "/compute/v2.1"; compute != want {
		t.Fatalf("compute endpoint = %q, want %q", compute, want)
	}
	status, _, body, err := do(t, http.MethodGet, compute+"/servers/detail?limit=1")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET servers through proxy: status %d, err %v", status, err)
	}
	var got struct {
		Path  string
		Links []struct{ Href string }
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Path != "/v2.1/servers/detail" {
		t.Errorf("upstream saw path %q, want /v2.1/servers/detail", got.Path)
	}
	if want := p.URL() + "/compute/v2.1/servers/detail"; len(got.Links) != 1 || got.Links[0].Href != want {
		t.Errorf("links = %+v, want self link %q", got.Links, want)
	}
	if _, _, body, _ := do(t, http.MethodGet, p.AuthURL()); !strings.Contains(string(body), p.AuthURL()+"/") {
		t.Errorf("version document not rewritten: %s", body)
	}
	if st := p.Stats(); st["compute"].Requests != 1 || st["identity"].Requests != 2 || p.Injected() != 0 {
		t.Errorf("stats = %+v, want 1 compute and 2 identity requests, no faults", st)
	}
	if svcs := p.Services(); svcs["compute"] != fc.compute.URL || svcs["identity"] != fc.keystone.URL {
		t.Errorf("Services() = %v", svcs)
	}
}

func TestUnknownPrefixIsBadGateway(t *testing.T) {
	p := startProxy(t, newFakeCloud(t), 1, nil)
	status, _, _, err := do(t, http.MethodGet, p.URL()+"/compute/v2.1/servers")
	if err != nil || status != http.StatusBadGateway {
		t.Fatalf("before authentication: status %d, err %v; want 502", status, err)
	}
}

func TestFaultKinds(t *testing.T) {
	tests := []struct {
		name       string
		rule       faultproxy.Rule
		wantStatus []int // acceptable statuses; nil means the request must fail at transport level
		wantHeader map[string]string
		wantHit    bool // whether the upstream received the request
		check      func(faultproxy.Stats) bool
	}{
		{"error", faultproxy.Rule{ErrorRate: 1}, []int{500, 503}, nil, false,
			func(s faultproxy.Stats) bool { return s.Errors == 1 && s.Faults() == 1 }},
		{"throttle", faultproxy.Rule{ThrottleRate: 1, RetryAfter: 1500 * time.Millisecond}, []int{429},
			map[string]string{"Retry-After": "2"}, false,
			func(s faultproxy.Stats) bool { return s.Throttled == 1 }},
		{"throttle default retry-after", faultproxy.Rule{ThrottleRate: 1}, []int{429},
			map[string]string{"Retry-After": "1"}, false,
			func(s faultproxy.Stats) bool { return s.Throttled == 1 }},
		{"reset", faultproxy.Rule{ResetRate: 1}, nil, nil, false,
			func(s faultproxy.Stats) bool { return s.Resets == 1 }},
		{"lost response", faultproxy.Rule{LostResponseRate: 1}, nil, nil, true,
			func(s faultproxy.Stats) bool { return s.LostResponses == 1 }},
		{"method filter spares GET", faultproxy.Rule{ErrorRate: 1, Methods: []string{"POST", "DELETE"}}, []int{200}, nil, true,
			func(s faultproxy.Stats) bool { return s.Faults() == 0 && s.Requests == 1 }},
		{"latency only", faultproxy.Rule{Latency: 30 * time.Millisecond}, []int{200}, nil, true,
			func(s faultproxy.Stats) bool { return s.Faults() == 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeCloud(t)
			p := startProxy(t, fc, 7, map[string]faultproxy.Rule{"compute": tc.rule})
			compute := authenticate(t, p)

			start := time.Now()
			status, hdr, _, err := do(t, http.MethodGet, compute+"/servers")
			elapsed := time.Since(start)
			if tc.wantStatus == nil {
				if err == nil {
					t.Fatalf("got status %d, want a transport error (connection reset)", status)
				}
			} else {
				if err != nil {
					t.Fatalf("request failed: %v", err)
				}
				if !containsInt(tc.wantStatus, status) {
					t.Fatalf("status %d, want one of %v", status, tc.wantStatus)
				}
			}
			for k, v := range tc.wantHeader {
				if got := hdr.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if hit := fc.computeHits.Load() == 1; hit != tc.wantHit {
				t.Errorf("upstream hit = %v, want %v", hit, tc.wantHit)
			}
			if elapsed < tc.rule.Latency {
				t.Errorf("request took %v, want at least the injected %v", elapsed, tc.rule.Latency)
			}
			if st := p.Stats()["compute"]; !tc.check(st) {
				t.Errorf("unexpected stats %+v", st)
			}
			if st := p.Stats()["identity"]; st.Faults() != 0 {
				t.Errorf("identity got faults %+v although only compute has a rule", st)
			}
		})
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// sequence returns the outcome of n GETs to compute: a status code, or -1 for a transport error.
func sequence(t *testing.T, seed int64, rules map[string]faultproxy.Rule, n int, interleaveIdentity bool) []int {
	t.Helper()
	fc := newFakeCloud(t)
	p := startProxy(t, fc, seed, rules)
	compute := authenticate(t, p)
	out := make([]int, 0, n)
	for i := 0; i < n; i++ {
		if interleaveIdentity {
			_, _, _, _ = do(t, http.MethodGet, p.AuthURL())
		}
		status, _, _, err := do(t, http.MethodGet, compute+"/servers")
		if err != nil {
			status = -1
		}
		out = append(out, status)
	}
	return out
}

func TestSameSeedSameFaults(t *testing.T) {
	rules := map[string]faultproxy.Rule{
		"compute": {ErrorRate: 0.2, ThrottleRate: 0.2, ResetRate: 0.2},
	}
	a := sequence(t, 42, rules, 40, false)
	b := sequence(t, 42, rules, 40, true) // identity requests in between must not shift compute's faults
	c := sequence(t, 43, rules, 40, false)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("same seed, different faults:\n%v\n%v", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Errorf("seeds 42 and 43 gave identical sequences %v", a)
	}
	kinds := map[int]bool{}
	for _, s := range a {
		kinds[s] = true
	}
	for _, want := range []int{200, 429, -1} {
		if !kinds[want] {
			t.Errorf("40 requests at 60%% fault rate never gave outcome %d: %v", want, a)
		}
	}
}

func TestMaxFaultsThenClean(t *testing.T) {
	got := sequence(t, 1, map[string]faultproxy.Rule{"compute": {ErrorRate: 1, MaxFaults: 3}}, 5, false)
	for i, s := range got {
		want := 200
		if i < 3 {
			want = -2 // any 5xx
		}
		if (want == -2 && s < 500) || (want == 200 && s != 200) {
			t.Fatalf("outcomes %v: want three 5xx, then 200s", got)
		}
	}
}

func TestInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  faultproxy.Config
	}{
		{"relative upstream", faultproxy.Config{Upstream: "/v3"}},
		{"rate above one", faultproxy.Config{Upstream: "http://127.0.0.1:1/v3", Rules: map[string]faultproxy.Rule{"*": {ErrorRate: 1.5}}}},
		{"rates add above one", faultproxy.Config{Upstream: "http://127.0.0.1:1/v3", Rules: map[string]faultproxy.Rule{"compute": {ErrorRate: 0.6, ResetRate: 0.6}}}},
		{"negative latency", faultproxy.Config{Upstream: "http://127.0.0.1:1/v3", Rules: map[string]faultproxy.Rule{"compute": {Latency: -time.Second}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := faultproxy.Start(t.Context(), tc.cfg); err == nil {
				_ = p.Close()
				t.Fatal("Start accepted an invalid config")
			}
		})
	}
}

func TestUpstreamDownIsBadGateway(t *testing.T) {
	fc := newFakeCloud(t)
	p := startProxy(t, fc, 1, nil)
	fc.keystone.Close()
	status, _, _, err := do(t, http.MethodGet, p.AuthURL())
	if err != nil || status != http.StatusBadGateway {
		t.Fatalf("status %d, err %v; want 502", status, err)
	}
}

func TestContextEndStopsProxy(t *testing.T) {
	fc := newFakeCloud(t)
	ctx, cancel := context.WithCancel(t.Context())
	p, err := faultproxy.Start(ctx, faultproxy.Config{Upstream: fc.keystone.URL + "/v3"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, _, err := do(t, http.MethodGet, p.AuthURL())
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("proxy still serving 5s after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Close after context end: %v", err)
	}
}

func TestWriteCloudsYAML(t *testing.T) {
	p := startProxy(t, newFakeCloud(t), 1, nil)
	path := filepath.Join(t.TempDir(), "sub", "clouds.yaml")
	base := map[string]any{
		"region_name": "RegionOne",
		"auth":        map[string]any{"auth_url": "http://127.0.0.1:5000/v3", "username": "u", "password": "secret"},
	}
	if err := p.WriteCloudsYAML(path, "faulty", base); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (it holds a password)", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	var doc struct {
		Clouds map[string]struct {
			RegionName string            `yaml:"region_name"`
			Auth       map[string]string `yaml:"auth"`
		} `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	c := doc.Clouds["faulty"]
	if c.Auth["auth_url"] != p.AuthURL() || c.Auth["username"] != "u" || c.RegionName != "RegionOne" {
		t.Errorf("entry = %+v, want auth_url %s and the base's other fields", c, p.AuthURL())
	}
	if base["auth"].(map[string]any)["auth_url"] != "http://127.0.0.1:5000/v3" {
		t.Error("WriteCloudsYAML modified its base argument")
	}
}

// A service listed at several origins (a second region on another address)
// keeps its plain key, which Rules name, on the upstream's host.
func TestCatalogWithTwoRegionsKeysTheUpstreamHost(t *testing.T) {
	fc := newFakeCloud(t)
	keystone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Subject-Token", "tok")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"token": {"catalog": [
			{"type": "compute", "endpoints": [
				{"interface": "public", "region_id": "Other", "url": "http://198.51.100.7:8774/v2.1"},
				{"interface": "public", "region_id": "RegionOne", "url": "%s/v2.1"}]}]}}`, fc.compute.URL)
	}))
	t.Cleanup(keystone.Close)
	p, err := faultproxy.Start(t.Context(), faultproxy.Config{Upstream: keystone.URL + "/v3"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	resp, err := http.Post(p.AuthURL()+"/auth/tokens", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := p.Services()
	if got["compute"] != fc.compute.URL {
		t.Errorf("key compute routes to %q, want the upstream host's origin %q (all: %v)", got["compute"], fc.compute.URL, got)
	}
	if got["compute-2"] != "http://198.51.100.7:8774" {
		t.Errorf("key compute-2 routes to %q, want the other region's origin (all: %v)", got["compute-2"], got)
	}
}
