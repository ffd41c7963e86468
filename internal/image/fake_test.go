package image

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/logging"
)

const (
	projectID    = "p-own"
	otherProject = "p-other"
)

// fault is what the fake does to one request instead of answering normally.
type fault int

const (
	noFault    fault = iota
	fail500          // answer 500 without doing anything
	reject400        // answer 400 without doing anything
	unauth401        // answer 401 (token expired) without doing anything
	lost             // do it, then reset the connection instead of answering
	cutUpload        // read part of an upload, then reset the connection (Glance restores queued)
	killUpload       // read the upload, mark the image killed, answer 500
)

// fakeGlance is an in-memory Glance v2 (plus the Keystone token call
// cloud.Connect makes) that behaves like the real one where registration
// depends on it: statuses queued → saving → active, re-upload only while
// queued (409 otherwise), the data restored to queued when an upload breaks,
// size and os_hash_value of what was stored.
type fakeGlance struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	images map[string]map[string]any
	seq    int
	calls  map[string]int // "POST /v2/images" → count
	// faults decides per request; n counts requests of the same method+route.
	faults func(method, route string, n int) fault
	// uploadGate, when set, is called during every upload before the image is stored.
	uploadGate func()
	// chunkedUploads counts uploads sent without a Content-Length.
	chunkedUploads int
}

func newFakeGlance(t *testing.T) *fakeGlance {
	t.Helper()
	f := &fakeGlance{t: t, images: map[string]map[string]any{}, calls: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// glance connects through capilab's real cloud client (retrying transport,
// quick backoff) to the fake.
func (f *fakeGlance) glance(t *testing.T) Glance {
	t.Helper()
	clouds := filepath.Join(t.TempDir(), "clouds.yaml")
	err := os.WriteFile(clouds, []byte(fmt.Sprintf(`clouds:
  fake:
    auth:
      auth_url: %s/v3
      username: u
      password: secret-password
      project_name: p
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
`, f.srv.URL)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloud.Connect(context.Background(), cloud.Options{
		Cloud: "fake", CloudsFile: clouds, Secrets: logging.NewSecrets(),
		Retry: cloud.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err := GlanceOf(c)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (f *fakeGlance) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

// add puts an image into the fake as if someone had registered it.
func (f *fakeGlance) add(img map[string]any) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	id := fmt.Sprintf("img-%03d", f.seq)
	now := time.Now().UTC().Add(time.Duration(f.seq) * time.Millisecond)
	base := map[string]any{
		"id": id, "status": "active", "tags": []any{}, "owner": projectID, "visibility": "shared",
		"container_format": "bare", "disk_format": "qcow2", "min_disk": 0, "min_ram": 0, "size": 1,
		"created_at": now.Format(time.RFC3339), "updated_at": now.Format(time.RFC3339),
	}
	for k, v := range img {
		base[k] = v
	}
	f.images[id] = base
	return id
}

// named returns the images of a name (any status).
func (f *fakeGlance) named(name string) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, img := range f.images {
		if img["name"] == name {
			out = append(out, cloneMap(img))
		}
	}
	slices.SortFunc(out, func(a, b map[string]any) int { return strings.Compare(a["id"].(string), b["id"].(string)) })
	return out
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (f *fakeGlance) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	route := p
	if strings.HasPrefix(p, "/v2/images/") {
		route = "/v2/images/{id}"
		if strings.HasSuffix(p, "/file") {
			route = "/v2/images/{id}/file"
		}
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

	if flt == unauth401 {
		io.Copy(io.Discard, r.Body)
		http.Error(w, `{"error":{"code":401,"message":"The request you have made requires authentication."}}`, http.StatusUnauthorized)
		return
	}
	if flt == reject400 {
		io.Copy(io.Discard, r.Body)
		http.Error(w, `{"message":"injected 400"}`, http.StatusBadRequest)
		return
	}
	if flt == fail500 {
		io.Copy(io.Discard, r.Body)
		http.Error(w, `{"message":"injected"}`, http.StatusInternalServerError)
		return
	}
	switch {
	case r.Method == http.MethodPost && p == "/v3/auth/tokens":
		w.Header().Set("X-Subject-Token", "tok-"+fmt.Sprint(n))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"token":{"expires_at":"2099-01-01T00:00:00.000000Z","user":{"id":"u1","name":"u"},"project":{"id":%q,"name":"p"},
			"catalog":[{"type":"image","name":"glance","endpoints":[{"interface":"public","region":"RegionOne","region_id":"RegionOne","url":%q}]}]}}`,
			projectID, f.srv.URL)
	case r.Method == http.MethodGet && p == "/":
		writeJSON(w, http.StatusMultipleChoices, map[string]any{"versions": []map[string]any{
			{"id": "v2.16", "status": "CURRENT", "links": []map[string]any{{"rel": "self", "href": f.srv.URL + "/v2/"}}},
		}})
	case r.Method == http.MethodGet && p == "/v2/images":
		name := r.URL.Query().Get("name")
		list := []map[string]any{}
		for _, img := range f.named(name) {
			if img["owner"] == projectID || img["visibility"] == "public" {
				list = append(list, img)
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"images": list})
	case r.Method == http.MethodPost && p == "/v2/images":
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body["status"] = "queued"
		body["owner"] = projectID
		if body["visibility"] == nil {
			body["visibility"] = "shared"
		}
		body["size"] = nil
		id := f.add(body)
		if flt == lost {
			reset(w)
			return
		}
		writeJSON(w, http.StatusCreated, f.get(id))
	case route == "/v2/images/{id}" && r.Method == http.MethodGet:
		img := f.get(strings.TrimPrefix(p, "/v2/images/"))
		if img == nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, img)
	case route == "/v2/images/{id}" && r.Method == http.MethodDelete:
		id := strings.TrimPrefix(p, "/v2/images/")
		f.mu.Lock()
		_, ok := f.images[id]
		delete(f.images, id)
		f.mu.Unlock()
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if flt == lost {
			reset(w)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case route == "/v2/images/{id}/file" && r.Method == http.MethodPut:
		f.upload(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "/v2/images/"), "/file"), flt)
	default:
		http.Error(w, "no route "+key, http.StatusNotFound)
	}
}

func (f *fakeGlance) get(id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[id]
	if !ok {
		return nil
	}
	return cloneMap(img)
}

func (f *fakeGlance) setStatus(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if img, ok := f.images[id]; ok {
		img["status"] = status
		img["updated_at"] = time.Now().UTC().Format(time.RFC3339)
	}
}

func (f *fakeGlance) upload(w http.ResponseWriter, r *http.Request, id string, flt fault) {
	f.mu.Lock()
	img, ok := f.images[id]
	if !ok {
		f.mu.Unlock()
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if img["status"] != "queued" {
		f.mu.Unlock()
		http.Error(w, "Image status transition from "+img["status"].(string)+" to saving is not allowed", http.StatusConflict)
		return
	}
	img["status"] = "saving"
	if r.ContentLength < 0 || len(r.TransferEncoding) > 0 {
		f.chunkedUploads++
	}
	gate := f.uploadGate
	f.mu.Unlock()

	h := sha512.New()
	var n int64
	var err error
	if flt == cutUpload {
		n, err = io.CopyN(h, r.Body, 4096)
		f.setStatus(id, "queued")
		reset(w)
		return
	}
	n, err = io.Copy(h, r.Body)
	if gate != nil {
		gate()
	}
	if err != nil {
		f.setStatus(id, "queued")
		return
	}
	if flt == killUpload {
		f.setStatus(id, "killed")
		http.Error(w, "store failed", http.StatusInternalServerError)
		return
	}
	f.mu.Lock()
	if img, ok := f.images[id]; ok {
		img["status"] = "active"
		img["size"] = n
		img["os_hash_algo"] = "sha512"
		img["os_hash_value"] = hex.EncodeToString(h.Sum(nil))
		img["updated_at"] = time.Now().UTC().Format(time.RFC3339)
	}
	f.mu.Unlock()
	if flt == lost {
		reset(w)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// reset closes the client's connection without an answer.
func reset(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}
