package appcred

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/logging"
)

const (
	userID    = "u1"
	projectID = "p1"
)

type fault int

const (
	noFault fault = iota
	fail500
	lost // apply, then reset the connection
)

// fakeKeystone is the part of Keystone application credentials use: token
// issue (password and application_credential methods), and the user's
// application credentials (list, filter by name, create with unique names
// and a given or generated secret, delete).
type fakeKeystone struct {
	srv *httptest.Server

	mu     sync.Mutex
	creds  map[string]map[string]any // id → credential (with "secret")
	seq    int
	calls  map[string]int
	faults func(method, route string, n int) fault
}

func newFakeKeystone(t *testing.T) *fakeKeystone {
	t.Helper()
	f := &fakeKeystone{creds: map[string]map[string]any{}, calls: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKeystone) authURL() string { return f.srv.URL + "/v3" }

// connect logs in as the user through capilab's cloud client.
func (f *fakeKeystone) connect(t *testing.T, secrets *logging.Secrets) *cloud.Cloud {
	t.Helper()
	clouds := filepath.Join(t.TempDir(), "clouds.yaml")
	err := os.WriteFile(clouds, []byte(fmt.Sprintf(`clouds:
  fake:
    auth:
      auth_url: %s
      username: u
      password: user-password-123
      project_name: p
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
`, f.authURL())), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloud.Connect(context.Background(), cloud.Options{
		Cloud: "fake", CloudsFile: clouds, Secrets: secrets,
		Retry: cloud.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fakeKeystone) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

// add stores a credential as if made elsewhere.
func (f *fakeKeystone) add(name, desc, secret string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addLocked(map[string]any{"name": name, "description": desc, "secret": secret, "unrestricted": false})
}

func (f *fakeKeystone) addLocked(c map[string]any) string {
	f.seq++
	id := fmt.Sprintf("ac%03d", f.seq)
	c["id"] = id
	c["project_id"] = projectID
	if c["expires_at"] == nil {
		c["expires_at"] = nil
	}
	f.creds[id] = c
	return id
}

func (f *fakeKeystone) byName(name string) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, c := range f.creds {
		if c["name"] == name {
			out = append(out, public(c))
		}
	}
	return out
}

// public is a credential as Keystone shows it: without the secret.
func public(c map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		if k != "secret" {
			out[k] = v
		}
	}
	return out
}

func (f *fakeKeystone) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	route := p
	base := "/v3/users/" + userID + "/application_credentials"
	if strings.HasPrefix(p, base+"/") {
		route = base + "/{id}"
	}
	key := r.Method + " " + route
	f.mu.Lock()
	f.calls[key]++
	n := f.calls[key]
	flt := noFault
	if f.faults != nil {
		flt = f.faults(r.Method, route, n)
	}
	f.mu.Unlock()
	if flt == fail500 {
		io.Copy(io.Discard, r.Body)
		http.Error(w, `{"error":{"code":500,"message":"injected"}}`, http.StatusInternalServerError)
		return
	}
	switch {
	case r.Method == http.MethodPost && p == "/v3/auth/tokens":
		f.token(w, r)
	case r.Method == http.MethodGet && p == base:
		name := r.URL.Query().Get("name")
		f.mu.Lock()
		list := []map[string]any{}
		for _, c := range f.creds {
			if name == "" || c["name"] == name {
				list = append(list, public(c))
			}
		}
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"application_credentials": list, "links": map[string]any{"next": nil}})
	case r.Method == http.MethodPost && p == base:
		var body struct {
			AC map[string]any `json:"application_credential"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		for _, c := range f.creds {
			if c["name"] == body.AC["name"] {
				f.mu.Unlock()
				writeJSON(w, http.StatusConflict, map[string]any{"error": map[string]any{"code": 409, "message": "Duplicate entry"}})
				return
			}
		}
		if body.AC["secret"] == nil || body.AC["secret"] == "" {
			body.AC["secret"] = "generated-by-keystone"
		}
		id := f.addLocked(body.AC)
		c := cloneMap(f.creds[id])
		f.mu.Unlock()
		if flt == lost {
			reset(w)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"application_credential": c})
	case r.Method == http.MethodDelete && route == base+"/{id}":
		id := strings.TrimPrefix(p, base+"/")
		f.mu.Lock()
		_, ok := f.creds[id]
		delete(f.creds, id)
		f.mu.Unlock()
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "no route "+key, http.StatusNotFound)
	}
}

func cloneMap(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (f *fakeKeystone) token(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Auth struct {
			Identity struct {
				Methods []string `json:"methods"`
				AC      struct {
					ID     string `json:"id"`
					Secret string `json:"secret"`
				} `json:"application_credential"`
			} `json:"identity"`
		} `json:"auth"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(body.Auth.Identity.Methods) == 1 && body.Auth.Identity.Methods[0] == "application_credential" {
		f.mu.Lock()
		c, ok := f.creds[body.Auth.Identity.AC.ID]
		good := ok && c["secret"] == body.Auth.Identity.AC.Secret
		f.mu.Unlock()
		if !good {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{"code": 401, "message": "The request you have made requires authentication."}})
			return
		}
	}
	appCred := ""
	if id := body.Auth.Identity.AC.ID; id != "" {
		appCred = fmt.Sprintf(`"application_credential":{"id":%q,"restricted":true},`, id)
	}
	w.Header().Set("X-Subject-Token", "token-0123456789")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"token":{%s"expires_at":"2099-01-01T00:00:00.000000Z","user":{"id":%q,"name":"u"},"project":{"id":%q,"name":"p"},
		"catalog":[{"type":"identity","name":"keystone","endpoints":[{"interface":"public","region":"RegionOne","region_id":"RegionOne","url":%q}]}]}}`,
		appCred, userID, projectID, f.authURL())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func reset(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}
