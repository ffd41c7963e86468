package faultproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// IdentityService is the Rules key (and path prefix) of Keystone itself.
const IdentityService = "identity"

// AnyService is the Rules key whose rule applies to every service without a rule of its own.
const AnyService = "*"

// Rule says which faults one service gets. Rates are fractions of that
// service's requests (0..1); together they must not exceed 1. Latency applies
// to every request of the service, faulty or not.
type Rule struct {
	// ErrorRate answers with 500 or 503 (which one is drawn from the seed too).
	ErrorRate float64
	// ThrottleRate answers with 429 Too Many Requests and a Retry-After header.
	ThrottleRate float64
	// RetryAfter is the Retry-After of a 429, rounded up to whole seconds; default 1s.
	RetryAfter time.Duration
	// ResetRate resets the client's connection before the request reaches the cloud.
	ResetRate float64
	// LostResponseRate forwards the request (the cloud applies it) and then resets the
	// client's connection instead of answering: the client cannot know it succeeded.
	LostResponseRate float64
	// Latency is added to every request; Jitter adds a further uniform [0, Jitter).
	Latency time.Duration
	Jitter  time.Duration
	// Methods, if not empty, limits faults (not latency) to these HTTP methods, e.g. POST, DELETE.
	Methods []string
	// MaxFaults stops injecting faults into the service after this many; 0 means no limit.
	MaxFaults int
}

func (r Rule) validate() error {
	rates := []float64{r.ErrorRate, r.ThrottleRate, r.ResetRate, r.LostResponseRate}
	sum := 0.0
	for _, x := range rates {
		if x < 0 || x > 1 || math.IsNaN(x) {
			return fmt.Errorf("rate %v out of [0,1]", x)
		}
		sum += x
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("rates add up to %v, more than 1", sum)
	}
	if r.Latency < 0 || r.Jitter < 0 || r.RetryAfter < 0 || r.MaxFaults < 0 {
		return errors.New("negative latency, jitter, retry-after or max faults")
	}
	return nil
}

// Config configures a Proxy.
type Config struct {
	// Upstream is the cloud's Keystone URL, e.g. http://127.0.0.1:5000/v3.
	Upstream string
	// Seed makes the faults reproducible.
	Seed int64
	// Rules maps a catalog service type ("identity", "compute", "network", "image",
	// "load-balancer", "volumev3", "block-storage", "placement", ...) to its faults;
	// AnyService ("*") applies to services without a rule of their own.
	Rules map[string]Rule
	// Listen is the address to listen on; default 127.0.0.1:0 (a free port).
	Listen string
	// Logger receives one debug line per injected fault; default: discard.
	Logger *slog.Logger
	// Transport reaches the cloud; default: a clone of http.DefaultTransport.
	Transport http.RoundTripper
}

// Stats counts what the proxy did to one service's requests.
type Stats struct {
	Requests      int // requests received
	Errors        int // answered 500/503 by the proxy
	Throttled     int // answered 429 by the proxy
	Resets        int // connection reset before forwarding
	LostResponses int // forwarded, then connection reset
}

// Faults is the number of injected faults (latency not counted).
func (s Stats) Faults() int { return s.Errors + s.Throttled + s.Resets + s.LostResponses }

// Proxy is a running fault proxy. Its methods are safe for concurrent use.
type Proxy struct {
	cfg       Config
	log       *slog.Logger
	transport http.RoundTripper
	srv       *http.Server
	ln        net.Listener
	base      string // http://127.0.0.1:port
	authPath  string // path of the Keystone URL below the identity prefix, e.g. /v3
	upHost    string // host name of the upstream Keystone
	done      chan struct{}

	mu       sync.Mutex
	routes   map[string]*url.URL // path prefix key -> upstream origin
	byOrigin map[string]string   // upstream origin -> key
	rewrite  *regexp.Regexp      // matches any known upstream origin followed by a boundary
	services map[string]*service
	serveErr error
}

type service struct {
	rng    *rand.Rand
	stats  Stats
	faults int
}

// Start validates cfg, listens and serves until ctx ends or Close is called.
func Start(ctx context.Context, cfg Config) (*Proxy, error) {
	up, err := url.Parse(cfg.Upstream)
	if err != nil || up.Scheme == "" || up.Host == "" {
		return nil, fmt.Errorf("faultproxy: upstream %q is not an absolute URL", cfg.Upstream)
	}
	for name, r := range cfg.Rules {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("faultproxy: rule for %q: %w", name, err)
		}
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	p := &Proxy{
		cfg:       cfg,
		log:       cfg.Logger,
		transport: cfg.Transport,
		authPath:  strings.TrimSuffix(up.EscapedPath(), "/"),
		upHost:    up.Hostname(),
		done:      make(chan struct{}),
		routes:    map[string]*url.URL{},
		byOrigin:  map[string]string{},
		services:  map[string]*service{},
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.transport == nil {
		p.transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	p.addOriginLocked(IdentityService, &url.URL{Scheme: up.Scheme, Host: up.Host})

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen on %s: %w", cfg.Listen, err)
	}
	p.ln = ln
	p.base = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		defer close(p.done)
		err := p.srv.Serve(ln)
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.mu.Lock()
			p.serveErr = err
			p.mu.Unlock()
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = p.Close()
		case <-p.done:
		}
	}()
	return p, nil
}

// URL is the proxy's base URL, e.g. http://127.0.0.1:40123.
func (p *Proxy) URL() string { return p.base }

// AuthURL is the Keystone URL to give clients instead of Config.Upstream.
func (p *Proxy) AuthURL() string { return p.base + "/" + IdentityService + p.authPath }

// Close stops the proxy and closes every connection; it returns the serve error, if any.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(err, p.serveErr)
}

// Stats returns a copy of the counters, keyed by service (path prefix).
func (p *Proxy) Stats() map[string]Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]Stats, len(p.services))
	for k, s := range p.services {
		out[k] = s.stats
	}
	return out
}

// Injected is the total number of faults injected into all services.
func (p *Proxy) Injected() int {
	n := 0
	for _, s := range p.Stats() {
		n += s.Faults()
	}
	return n
}

// Services maps each service key the proxy has learnt to its upstream origin.
func (p *Proxy) Services() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string, len(p.routes))
	for k, u := range p.routes {
		out[k] = u.String()
	}
	return out
}

// WriteCloudsYAML writes a clouds.yaml (mode 0600) holding one cloud, name: a copy of base
// (a clouds.yaml cloud entry, as parsed YAML) whose auth.auth_url is the proxy's AuthURL.
func (p *Proxy) WriteCloudsYAML(path, name string, base map[string]any) error {
	entry := make(map[string]any, len(base))
	for k, v := range base {
		entry[k] = v
	}
	auth := map[string]any{}
	if a, ok := base["auth"].(map[string]any); ok {
		for k, v := range a {
			auth[k] = v
		}
	}
	auth["auth_url"] = p.AuthURL()
	entry["auth"] = auth
	out, err := yaml.Marshal(map[string]any{"clouds": map[string]any{name: entry}})
	if err != nil {
		return fmt.Errorf("faultproxy: encode clouds.yaml: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("faultproxy: write clouds.yaml: %w", err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return fmt.Errorf("faultproxy: write clouds.yaml: %w", err)
	}
	return nil
}

// ---- routing and rewriting -------------------------------------------------------------------

var keyRE = regexp.MustCompile(`[^a-z0-9-]+`)

// addOriginLocked registers an upstream origin under a key derived from its service type.
func (p *Proxy) addOriginLocked(serviceType string, origin *url.URL) {
	o := origin.Scheme + "://" + origin.Host
	if _, ok := p.byOrigin[o]; ok {
		return
	}
	key := keyRE.ReplaceAllString(strings.ToLower(serviceType), "-")
	if key == "" {
		key = "service"
	}
	for i := 2; ; i++ {
		if _, taken := p.routes[key]; !taken {
			break
		}
		key = fmt.Sprintf("%s-%d", keyRE.ReplaceAllString(strings.ToLower(serviceType), "-"), i)
	}
	p.routes[key] = &url.URL{Scheme: origin.Scheme, Host: origin.Host}
	p.byOrigin[o] = key
	alts := make([]string, 0, len(p.byOrigin))
	for o := range p.byOrigin {
		alts = append(alts, regexp.QuoteMeta(o))
	}
	// Longest first so that http://h:80 wins over http://h.
	slices.SortFunc(alts, func(a, b string) int { return len(b) - len(a) })
	p.rewrite = regexp.MustCompile(`(` + strings.Join(alts, "|") + `)([/"?#\\]|$)`)
}

// learnCatalog registers the origins of every endpoint in a token or catalog response body.
func (p *Proxy) learnCatalog(body []byte) {
	var doc struct {
		Token struct {
			Catalog []catalogEntry `json:"catalog"`
		} `json:"token"`
		Catalog []catalogEntry `json:"catalog"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return
	}
	entries := append(doc.Token.Catalog, doc.Catalog...)
	p.mu.Lock()
	defer p.mu.Unlock()
	// A catalog may list a service at several origins (regions). The origin on
	// the upstream's host learns first, so it gets the plain service key that
	// Rules name, whatever order the catalog comes in.
	for _, sameHost := range []bool{true, false} {
		for _, e := range entries {
			for _, ep := range e.Endpoints {
				u, err := url.Parse(ep.URL)
				if err != nil || u.Host == "" || (u.Hostname() == p.upHost) != sameHost {
					continue
				}
				p.addOriginLocked(e.Type, u)
			}
		}
	}
}

type catalogEntry struct {
	Type      string `json:"type"`
	Endpoints []struct {
		URL string `json:"url"`
	} `json:"endpoints"`
}

// rewriteString replaces every known upstream origin by the proxy URL of its key.
func (p *Proxy) rewriteString(s string) string {
	p.mu.Lock()
	re, byOrigin := p.rewrite, p.byOrigin
	defer p.mu.Unlock()
	return re.ReplaceAllStringFunc(s, func(m string) string {
		sub := re.FindStringSubmatch(m)
		return p.base + "/" + byOrigin[sub[1]] + sub[2]
	})
}

func (p *Proxy) route(r *http.Request) (key string, origin *url.URL, ok bool) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	key, _, _ = strings.Cut(path, "/")
	p.mu.Lock()
	defer p.mu.Unlock()
	origin, ok = p.routes[key]
	return key, origin, ok
}

// ---- fault decisions --------------------------------------------------------------------------

type action int

const (
	actForward action = iota
	actError
	actThrottle
	actReset
	actLost
)

type decision struct {
	act    action
	status int
	delay  time.Duration
	rule   Rule
}

func (p *Proxy) ruleFor(key string) Rule {
	if r, ok := p.cfg.Rules[key]; ok {
		return r
	}
	return p.cfg.Rules[AnyService]
}

// decide draws the fate of one request of service key. Every request draws the
// same three numbers, so the sequence per service depends only on the seed.
func (p *Proxy) decide(key, method string) decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.services[key]
	if !ok {
		h := fnv.New64a()
		_, _ = h.Write([]byte(key))
		s = &service{rng: rand.New(rand.NewPCG(uint64(p.cfg.Seed), h.Sum64()))}
		p.services[key] = s
	}
	s.stats.Requests++
	rule := p.ruleFor(key)
	u, pick, jit := s.rng.Float64(), s.rng.IntN(2), s.rng.Float64()

	d := decision{act: actForward, rule: rule, delay: rule.Latency}
	if rule.Jitter > 0 {
		d.delay += time.Duration(jit * float64(rule.Jitter))
	}
	eligible := len(rule.Methods) == 0 || slices.ContainsFunc(rule.Methods, func(m string) bool {
		return strings.EqualFold(m, method)
	})
	if !eligible || (rule.MaxFaults > 0 && s.faults >= rule.MaxFaults) {
		return d
	}
	switch {
	case u < rule.ErrorRate:
		d.act, d.status = actError, []int{http.StatusInternalServerError, http.StatusServiceUnavailable}[pick]
		s.stats.Errors++
	case u < rule.ErrorRate+rule.ThrottleRate:
		d.act, d.status = actThrottle, http.StatusTooManyRequests
		s.stats.Throttled++
	case u < rule.ErrorRate+rule.ThrottleRate+rule.ResetRate:
		d.act = actReset
		s.stats.Resets++
	case u < rule.ErrorRate+rule.ThrottleRate+rule.ResetRate+rule.LostResponseRate:
		d.act = actLost
		s.stats.LostResponses++
	default:
		return d
	}
	s.faults++
	return d
}

// ---- serving -----------------------------------------------------------------------------------

// ServeHTTP routes /<service>/<path> to the service's upstream origin, injecting faults.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, origin, ok := p.route(r)
	if !ok {
		http.Error(w, fmt.Sprintf("faultproxy: no upstream known for path prefix %q (authenticate through %s first)", key, p.AuthURL()), http.StatusBadGateway)
		return
	}
	d := p.decide(key, r.Method)
	if d.delay > 0 {
		t := time.NewTimer(d.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch d.act {
	case actError:
		p.log.Debug("faultproxy: injected error", "service", key, "method", r.Method, "path", r.URL.Path, "status", d.status)
		writeFault(w, d.status, nil)
	case actThrottle:
		ra := d.rule.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		secs := int(math.Ceil(ra.Seconds()))
		p.log.Debug("faultproxy: injected 429", "service", key, "method", r.Method, "path", r.URL.Path, "retry_after", secs)
		writeFault(w, d.status, http.Header{"Retry-After": {strconv.Itoa(secs)}})
	case actReset:
		p.log.Debug("faultproxy: injected connection reset", "service", key, "method", r.Method, "path", r.URL.Path)
		resetConn(w)
	case actLost:
		p.log.Debug("faultproxy: injected lost response", "service", key, "method", r.Method, "path", r.URL.Path)
		p.reverseProxy(key, origin).ServeHTTP(&discardWriter{h: http.Header{}}, r)
		resetConn(w)
	default:
		p.reverseProxy(key, origin).ServeHTTP(w, r)
	}
}

func (p *Proxy) reverseProxy(key string, origin *url.URL) *httputil.ReverseProxy {
	prefix := "/" + key
	return &httputil.ReverseProxy{
		Transport: p.transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = origin.Scheme
			pr.Out.URL.Host = origin.Host
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, prefix)
			if pr.Out.URL.RawPath != "" {
				pr.Out.URL.RawPath = strings.TrimPrefix(pr.In.URL.RawPath, prefix)
			}
			if pr.Out.URL.Path == "" {
				pr.Out.URL.Path = "/"
			}
			pr.Out.Host = origin.Host
			// Let the transport negotiate (and undo) compression so bodies can be rewritten.
			pr.Out.Header.Del("Accept-Encoding")
		},
		ModifyResponse: p.rewriteResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.log.Debug("faultproxy: upstream error", "service", key, "error", err)
			http.Error(w, "faultproxy: upstream "+origin.String()+": "+err.Error(), http.StatusBadGateway)
		},
	}
}

// maxRewriteBody bounds the JSON bodies the proxy buffers to rewrite URLs in.
const maxRewriteBody = 64 << 20

func (p *Proxy) rewriteResponse(resp *http.Response) error {
	for _, h := range []string{"Location", "Content-Location"} {
		if v := resp.Header.Get(h); v != "" {
			resp.Header.Set(h, p.rewriteString(v))
		}
	}
	if !strings.Contains(strings.ToLower(resp.Header.Get("Content-Type")), "json") {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRewriteBody+1))
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("faultproxy: read upstream body: %w", err)
	}
	if len(body) > maxRewriteBody {
		return fmt.Errorf("faultproxy: upstream JSON body larger than %d bytes", maxRewriteBody)
	}
	if strings.Contains(resp.Request.URL.Path, "/auth/") {
		p.learnCatalog(body)
	}
	out := p.rewriteString(string(body))
	resp.Body = io.NopCloser(strings.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

func writeFault(w http.ResponseWriter, status int, h http.Header) {
	for k, v := range h {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"error": {"code": %d, "title": %q, "message": "faultproxy: injected %d"}}`+"\n",
		status, http.StatusText(status), status)
}

// resetConn closes the client connection with SO_LINGER 0, so the client sees a TCP RST.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // HTTP/2: abort the stream instead
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
