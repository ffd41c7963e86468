package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// RetryPolicy bounds the retries of one HTTP request.
type RetryPolicy struct {
	MaxAttempts   int           // attempts in all, including the first; default 8
	BaseDelay     time.Duration // first backoff; doubled each attempt; default 250ms
	MaxDelay      time.Duration // cap of one backoff; default 15s
	MaxRetryAfter time.Duration // cap on an honoured Retry-After; default 60s
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 8
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 250 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 15 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 60 * time.Second
	}
	return p
}

// Stats counts the API calls of a run, for reports and benchmarks.
type Stats struct {
	requests atomic.Int64
	retries  atomic.Int64
	mu       sync.Mutex
	byKey    map[string]int64 // "GET network" → count (first attempts only)
}

// Requests is the number of HTTP requests sent, retries included.
func (s *Stats) Requests() int64 { return s.requests.Load() }

// Retries is the number of requests that were repeats of a failed one.
func (s *Stats) Retries() int64 { return s.retries.Load() }

// Calls returns API calls (first attempts) per "METHOD service".
func (s *Stats) Calls() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.byKey))
	for k, v := range s.byKey {
		out[k] = v
	}
	return out
}

func (s *Stats) count(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey == nil {
		s.byKey = map[string]int64{}
	}
	s.byKey[key]++
}

// transport retries transient failures with exponential backoff and jitter,
// honours Retry-After, counts calls and logs each exchange at debug level
// (method, URL, status, time: never headers or bodies, which carry tokens
// and passwords).
//
// Written by hand rather than with go-retryablehttp because that library
// buffers every request body in memory to replay it, which breaks streaming
// multi-GiB image uploads; here a body is replayed only through GetBody.
//
// What is retried: every method on 429, 503 and connection refused (the
// request was not processed); idempotent methods (GET, HEAD, PUT, DELETE)
// and Keystone token requests also on 500, 502, 504 and connection resets.
// A POST that may have been processed is not repeated blindly: callers that
// create things reconcile by name first (see image and appcred).
type transport struct {
	next   http.RoundTripper
	policy RetryPolicy
	stats  *Stats
	log    *slog.Logger
	sleep  func(ctx context.Context, d time.Duration) error
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	t.stats.count(req.Method + " " + serviceOf(req))
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			if req.Body != nil && req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, fmt.Errorf("rewinding request body for retry: %w", err)
				}
				req = req.Clone(ctx)
				req.Body = body
			}
			t.stats.retries.Add(1)
		}
		t.stats.requests.Add(1)
		start := time.Now()
		resp, err := t.next.RoundTrip(req)
		retry, wait := t.decide(req, resp, err, attempt)
		t.logExchange(req, resp, err, attempt, time.Since(start), retry)
		if !retry {
			return resp, err
		}
		if resp != nil {
			// Drain a little so the connection can be reused, then close.
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := t.sleep(ctx, wait); err != nil {
			if resp != nil {
				return nil, fmt.Errorf("%s %s: giving up retry after HTTP %d: %w", req.Method, req.URL.Redacted(), resp.StatusCode, err)
			}
			return nil, err
		}
	}
}

// decide says whether to retry and how long to wait first.
func (t *transport) decide(req *http.Request, resp *http.Response, err error, attempt int) (bool, time.Duration) {
	if attempt >= t.policy.MaxAttempts || req.Context().Err() != nil {
		return false, 0
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if !replayable {
		return false, 0
	}
	safe := isIdempotent(req)
	backoff := t.backoff(attempt)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return true, backoff
		case safe && isTransientNetErr(err):
			return true, backoff
		}
		return false, 0
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return true, min(ra, t.policy.MaxRetryAfter)
		}
		return true, backoff
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		return safe, backoff
	}
	return false, 0
}

// backoff is exponential with full jitter in its upper half.
func (t *transport) backoff(attempt int) time.Duration {
	d := t.policy.BaseDelay << min(attempt-1, 16)
	if d > t.policy.MaxDelay || d <= 0 {
		d = t.policy.MaxDelay
	}
	half := d / 2
	return half + rand.N(half+1)
}

func isIdempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	// Issuing a token twice is harmless.
	return req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/auth/tokens")
}

func isTransientNetErr(err error) bool {
	var de *net.DNSError
	if errors.As(err, &de) { // a name that does not resolve will not next time
		return de.IsTimeout || (de.IsTemporary && !de.IsNotFound)
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// net/http reports a peer that hung up mid-response this way.
	return strings.Contains(err.Error(), "server closed idle connection") || strings.Contains(err.Error(), "connection reset")
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// serviceOf names the OpenStack service of a request from its path, for
// call counts. Paths are what the services use behind any proxy: Cinder's
// are /v3/<project id>/..., Keystone's the other /v3/... ones.
func serviceOf(req *http.Request) string {
	p := req.URL.Path
	switch {
	case strings.Contains(p, "/lbaas/"):
		return "load-balancer"
	case strings.Contains(p, "/v2/images"), strings.Contains(p, "/v2/schemas/image"):
		return "image"
	case strings.Contains(p, "/v2.0/"):
		return "network"
	case strings.Contains(p, "/v2.1/"), strings.HasSuffix(p, "/v2.1"):
		return "compute"
	case cinderPath.MatchString(p):
		return "volume"
	case strings.Contains(p, "/v3/"), strings.HasSuffix(p, "/v3"):
		return "identity"
	}
	return "other"
}

var cinderPath = regexp.MustCompile(`/v3/[0-9a-f]{32}(/|$)`)

func (t *transport) logExchange(req *http.Request, resp *http.Response, err error, attempt int, took time.Duration, retry bool) {
	if !t.log.Enabled(req.Context(), slog.LevelDebug) {
		return
	}
	attrs := []any{"method", req.Method, "url", req.URL.Redacted(), "attempt", attempt, "took", took.Round(time.Millisecond)}
	if resp != nil {
		attrs = append(attrs, "status", resp.StatusCode)
		if id := resp.Header.Get("X-Openstack-Request-Id"); id != "" {
			attrs = append(attrs, "request_id", id)
		}
	}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	if retry {
		attrs = append(attrs, "retrying", true)
	}
	t.log.Debug("http", attrs...)
}
