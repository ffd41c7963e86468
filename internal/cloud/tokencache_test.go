package cloud

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/logging"
)

// fakeIdentity issues numbered tokens, answers GET /v3/projects only for
// the current valid token, and counts logins.
type fakeIdentity struct {
	mu      sync.Mutex
	srv     *httptest.Server
	logins  int
	issued  int
	valid   map[string]bool
	expires time.Time
}

func newFakeIdentity(t *testing.T) *fakeIdentity {
	f := &fakeIdentity{valid: map[string]bool{}, expires: time.Now().Add(time.Hour)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIdentity) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == "GET" && (r.URL.Path == "/" || r.URL.Path == "/v3" || r.URL.Path == "/v3/"):
		fmt.Fprintf(w, `{"version":{"id":"v3.14","status":"stable","links":[{"rel":"self","href":"%s/v3/"}]}}`, f.srv.URL)
	case r.Method == "POST" && r.URL.Path == "/v3/auth/tokens":
		f.logins++
		f.issued++
		tok := fmt.Sprintf("token-%d-abcdefgh", f.issued)
		f.valid[tok] = true
		w.Header().Set("X-Subject-Token", tok)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"token":{"expires_at":%q,"user":{"id":"u1","name":"alice"},"project":{"id":"p1","name":"lab"},
			"catalog":[{"type":"identity","name":"keystone","endpoints":[{"interface":"public","region":"RegionOne","region_id":"RegionOne","url":"%s/v3"}]}]}}`,
			f.expires.UTC().Format("2006-01-02T15:04:05.000000Z"), f.srv.URL)
	case r.Method == "GET" && r.URL.Path == "/v3/projects":
		if !f.valid[r.Header.Get("X-Auth-Token")] {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":401}}`)
			return
		}
		fmt.Fprint(w, `{"projects":[]}`)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeIdentity) revokeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.valid = map[string]bool{}
}

func (f *fakeIdentity) loginCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

func cloudsFor(t *testing.T, url, password string) string {
	p := filepath.Join(t.TempDir(), "clouds.yaml")
	data := fmt.Sprintf("clouds:\n  lab:\n    auth:\n      auth_url: %s/v3\n      username: alice\n      password: %s\n      project_name: lab\n      user_domain_name: Default\n      project_domain_name: Default\n    region_name: RegionOne\n", url, password)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func listProjects(t *testing.T, c *Cloud) {
	t.Helper()
	id, err := c.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := id.Get(context.Background(), id.ServiceURL("projects"), nil, nil); err != nil {
		t.Fatalf("GET projects: %v", err)
	}
}

func TestTokenCache(t *testing.T) {
	f := newFakeIdentity(t)
	cache := filepath.Join(t.TempDir(), "tokens")
	clouds := cloudsFor(t, f.srv.URL, "pass-one-long")
	connect := func(cloudsFile string) *Cloud {
		t.Helper()
		c, err := Connect(context.Background(), Options{Cloud: "lab", CloudsFile: cloudsFile, TokenCache: cache, Secrets: logging.NewSecrets()})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	c1 := connect(clouds)
	listProjects(t, c1)
	if f.loginCount() != 1 {
		t.Fatalf("first run: %d logins, want 1", f.loginCount())
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 1 {
		t.Fatalf("cache holds %d entries", len(entries))
	}
	if fi, _ := os.Stat(filepath.Join(cache, entries[0].Name())); fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file mode %v, want 0600 (it holds a token)", fi.Mode().Perm())
	}

	// A second run reuses the token: no login, and the catalog still works.
	before := c1.Stats.Requests()
	c2 := connect(clouds)
	listProjects(t, c2)
	if f.loginCount() != 1 {
		t.Fatalf("second run logged in again (%d logins)", f.loginCount())
	}
	if c2.ProjectID != "p1" || c2.UserID != "u1" {
		t.Fatalf("cached login lost project/user: %q %q", c2.ProjectID, c2.UserID)
	}
	if c2.Stats.Requests() != 1 {
		t.Fatalf("second run made %d requests, want only the API call (%d before)", c2.Stats.Requests(), before)
	}

	// A revoked token: the API call gets 401, capilab logs in again and the
	// cache follows.
	f.revokeAll()
	c3 := connect(clouds)
	listProjects(t, c3)
	if f.loginCount() != 2 {
		t.Fatalf("after revocation: %d logins, want 2", f.loginCount())
	}
	c4 := connect(clouds)
	listProjects(t, c4)
	if f.loginCount() != 2 {
		t.Fatalf("the refreshed token was not cached (%d logins)", f.loginCount())
	}

	// Another password is another identity: no reuse.
	connect(cloudsFor(t, f.srv.URL, "pass-two-long"))
	if f.loginCount() != 3 {
		t.Fatalf("a changed password reused a token (%d logins)", f.loginCount())
	}
}

func TestTokenCacheSkipsTokensAboutToExpire(t *testing.T) {
	f := newFakeIdentity(t)
	f.expires = time.Now().Add(tokenReuseMargin / 2)
	cache := t.TempDir()
	clouds := cloudsFor(t, f.srv.URL, "pass-one-long")
	for range 2 {
		if _, err := Connect(context.Background(), Options{Cloud: "lab", CloudsFile: clouds, TokenCache: cache}); err != nil {
			t.Fatal(err)
		}
	}
	if f.loginCount() != 2 {
		t.Fatalf("a token with %s left was reused (%d logins)", tokenReuseMargin/2, f.loginCount())
	}
}
