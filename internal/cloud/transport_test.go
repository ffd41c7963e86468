package cloud

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/logging"
)

// scripted answers the i-th request with statuses[i] (the last one repeats);
// 0 means "reset the connection".
func scripted(t *testing.T, statuses []int, header http.Header) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		_, _ = io.Copy(io.Discard, r.Body)
		st := statuses[min(i, len(statuses)-1)]
		if st == 0 {
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST instead of FIN
			}
			conn.Close()
			return
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(st)
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func newTestTransport(sleeps *[]time.Duration) *transport {
	return &transport{
		next:   http.DefaultTransport.(*http.Transport).Clone(),
		policy: RetryPolicy{MaxAttempts: 4}.withDefaults(),
		stats:  &Stats{},
		log:    logging.Discard(),
		sleep: func(ctx context.Context, d time.Duration) error {
			*sleeps = append(*sleeps, d)
			return ctx.Err()
		},
	}
}

func TestTransportRetries(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		statuses   []int
		header     http.Header
		wantStatus int // 0: want a transport error
		wantCalls  int64
		wantSleeps []time.Duration // exact sleeps; nil: only the count matters
	}{
		{name: "GET 500 then ok", method: "GET", statuses: []int{500, 502, 200}, wantStatus: 200, wantCalls: 3},
		{name: "GET 504 gives up after max attempts", method: "GET", statuses: []int{504}, wantStatus: 504, wantCalls: 4},
		{name: "GET reset then ok", method: "GET", statuses: []int{0, 200}, wantStatus: 200, wantCalls: 2},
		{name: "DELETE 503 then 404", method: "DELETE", statuses: []int{503, 404}, wantStatus: 404, wantCalls: 2},
		{name: "429 honours Retry-After", method: "GET", statuses: []int{429, 200}, header: http.Header{"Retry-After": {"7"}}, wantStatus: 200, wantCalls: 2, wantSleeps: []time.Duration{7 * time.Second}},
		{name: "429 Retry-After capped", method: "POST", statuses: []int{429, 201}, header: http.Header{"Retry-After": {"3600"}}, wantStatus: 201, wantCalls: 2, wantSleeps: []time.Duration{60 * time.Second}},
		{name: "POST 503 retried (not processed)", method: "POST", statuses: []int{503, 201}, wantStatus: 201, wantCalls: 2},
		{name: "POST 500 not repeated blindly", method: "POST", statuses: []int{500, 201}, wantStatus: 500, wantCalls: 1},
		{name: "POST reset not repeated blindly", method: "POST", statuses: []int{0, 201}, wantStatus: 0, wantCalls: 1},
		{name: "token POST 500 retried", method: "POST", path: "/v3/auth/tokens", statuses: []int{500, 201}, wantStatus: 201, wantCalls: 2},
		{name: "4xx not retried", method: "GET", statuses: []int{400, 200}, wantStatus: 400, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls := scripted(t, tt.statuses, tt.header)
			var sleeps []time.Duration
			tr := newTestTransport(&sleeps)
			var body io.Reader
			if tt.method == "POST" {
				body = bytes.NewReader([]byte(`{"a":1}`))
			}
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, body)
			resp, err := tr.RoundTrip(req)
			switch {
			case tt.wantStatus == 0 && err == nil:
				t.Fatalf("want a transport error, got HTTP %d", resp.StatusCode)
			case tt.wantStatus != 0 && err != nil:
				t.Fatalf("want HTTP %d, got error %v", tt.wantStatus, err)
			case tt.wantStatus != 0 && resp.StatusCode != tt.wantStatus:
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if resp != nil {
				resp.Body.Close()
			}
			if calls.Load() != tt.wantCalls {
				t.Fatalf("server saw %d requests, want %d", calls.Load(), tt.wantCalls)
			}
			if got := tr.stats.Requests(); got != tt.wantCalls {
				t.Fatalf("stats.Requests = %d, want %d", got, tt.wantCalls)
			}
			if got := tr.stats.Retries(); got != tt.wantCalls-1 {
				t.Fatalf("stats.Retries = %d, want %d", got, tt.wantCalls-1)
			}
			if int64(len(sleeps)) != tt.wantCalls-1 {
				t.Fatalf("slept %d times, want %d", len(sleeps), tt.wantCalls-1)
			}
			for i, want := range tt.wantSleeps {
				if sleeps[i] != want {
					t.Fatalf("sleep %d = %s, want %s", i, sleeps[i], want)
				}
			}
		})
	}
}

func TestRetryReplaysBody(t *testing.T) {
	var bodies []string
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		if n.Add(1) == 1 {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(201)
	}))
	defer srv.Close()
	var sleeps []time.Duration
	tr := newTestTransport(&sleeps)
	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(`{"name":"x"}`))
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("got %v %v", resp, err)
	}
	if len(bodies) != 2 || bodies[0] != bodies[1] || bodies[1] != `{"name":"x"}` {
		t.Fatalf("bodies = %q", bodies)
	}
}

func TestStreamingBodyIsNotRetried(t *testing.T) {
	srv, calls := scripted(t, []int{503, 204}, nil)
	var sleeps []time.Duration
	tr := newTestTransport(&sleeps)
	pr, pw := io.Pipe()
	go func() { pw.Write([]byte("image bytes")); pw.Close() }()
	req, _ := http.NewRequest("PUT", srv.URL, pr) // no GetBody: cannot be replayed
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != 503 || calls.Load() != 1 {
		t.Fatalf("want the 503 passed up after one call, got %v %v (%d calls)", resp, err, calls.Load())
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	tr := &transport{policy: RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()}
	for attempt, upper := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 10: time.Second} {
		for range 50 {
			d := tr.backoff(attempt)
			if d < upper/2 || d > upper {
				t.Fatalf("attempt %d: backoff %s outside [%s, %s]", attempt, d, upper/2, upper)
			}
		}
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5", 5 * time.Second, true},
		{"0", 0, true},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %s %v, want %s %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCancelStopsRetrying(t *testing.T) {
	srv, calls := scripted(t, []int{503}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	tr := newTestTransport(new([]time.Duration))
	tr.sleep = func(ctx context.Context, d time.Duration) error { cancel(); return context.Canceled }
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("want an error after cancel")
	}
	if calls.Load() != 1 {
		t.Fatalf("%d calls after cancel, want 1", calls.Load())
	}
}

func TestServiceOf(t *testing.T) {
	for path, want := range map[string]string{
		"/v3/auth/tokens":                              "identity",
		"/v3/users/abc/application_credentials":        "identity",
		"/v3/0123456789abcdef0123456789abcdef/volumes": "volume",
		"/v2.0/networks":                               "network",
		"/v2/lbaas/loadbalancers":                      "load-balancer",
		"/v2/images":                                   "image",
		"/v2.1/servers/detail":                         "compute",
		"/compute/v2.1/os-keypairs":                    "compute",
	} {
		req, _ := http.NewRequest("GET", "http://x"+path, nil)
		if got := serviceOf(req); got != want {
			t.Errorf("serviceOf(%s) = %s, want %s", path, got, want)
		}
	}
}

// failing answers every request with the same transport error.
type failing struct {
	err   error
	calls atomic.Int64
}

func (f *failing) RoundTrip(*http.Request) (*http.Response, error) {
	f.calls.Add(1)
	return nil, f.err
}

// TestDNSFailureIsNotRetried: a name that does not resolve ("no such host")
// will not resolve on the next attempt either; only a DNS timeout or a
// temporary failure is worth a retry.
func TestDNSFailureIsNotRetried(t *testing.T) {
	dial := func(e *net.DNSError) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: e}
	}
	for _, tc := range []struct {
		name  string
		err   error
		calls int64
	}{
		{"no such host", dial(&net.DNSError{Err: "no such host", Name: "keystone.example", IsNotFound: true}), 1},
		{"no such host, as a resolver reports it", dial(&net.DNSError{Err: "no such host", Name: "keystone.example", Server: "10.0.0.53:53", IsNotFound: true, IsTemporary: true}), 1},
		{"DNS timeout", dial(&net.DNSError{Err: "i/o timeout", Name: "keystone.example", IsTimeout: true}), 4},
		{"DNS server misbehaving", dial(&net.DNSError{Err: "server misbehaving", Name: "keystone.example", IsTemporary: true}), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sleeps []time.Duration
			tr := newTestTransport(&sleeps)
			f := &failing{err: tc.err}
			tr.next = f
			req, _ := http.NewRequest("GET", "http://keystone.example:5000/v3", nil)
			if _, err := tr.RoundTrip(req); err == nil {
				t.Fatal("no error")
			}
			if f.calls.Load() != tc.calls {
				t.Errorf("%d attempts, want %d", f.calls.Load(), tc.calls)
			}
		})
	}
}
