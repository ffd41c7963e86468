package appcred

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/naming"
	"github.com/capilab/capilab/internal/state"
)

type env struct {
	ks      *fakeKeystone
	m       *Manager
	secrets *logging.Secrets
	logs    *bytes.Buffer
	mu      *sync.Mutex
}

func newEnv(t *testing.T) env {
	t.Helper()
	ks := newFakeKeystone(t)
	secrets := logging.NewSecrets()
	var logs bytes.Buffer
	var mu sync.Mutex
	log, err := logging.New(&lockedWriter{&mu, &logs}, logging.Options{Level: "debug", Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	c := ks.connect(t, secrets)
	k, err := KeystoneOf(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := state.Dir(filepath.Join(t.TempDir(), "state"))
	m := &Manager{
		Keystone: k, State: dir, Secrets: secrets, Log: log, RetryDelay: time.Millisecond,
		Endpoint: Endpoint{AuthURL: ks.authURL(), Region: "RegionOne", Interface: "public", CACert: "/etc/ssl/lab-ca.pem"},
	}
	return env{ks: ks, m: m, secrets: secrets, logs: &logs, mu: &mu}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// entry reads a clouds.yaml entry of the state.
func entry(t *testing.T, m *Manager, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(m.State.CloudsFile())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Clouds map[string]map[string]any `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Clouds[name]
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// secretOf is what Keystone holds as the credential's secret.
func (f *fakeKeystone) secretOf(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, _ := f.creds[id]["secret"].(string)
	return s
}

func TestEnsureLabCredential(t *testing.T) {
	e := newEnv(t)
	cred, err := e.m.Ensure(context.Background(), "lab1", "", Options{Expiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if cred.Action != Created || !cred.Unrestricted || !cred.ExpiresAt.IsZero() || cred.CloudName != "lab1" || cred.ProjectID != projectID || cred.CloudConf != "" {
		t.Fatalf("credential %+v", cred)
	}
	got := e.ks.byName("lab1-appcred")
	if len(got) != 1 || !strings.HasPrefix(got[0]["description"].(string), "capilab lab=lab1 created=") || got[0]["unrestricted"] != true {
		t.Fatalf("keystone has %v", got)
	}
	ent := entry(t, e.m, "lab1")
	auth := ent["auth"].(map[string]any)
	secret := auth["application_credential_secret"].(string)
	if ent["auth_type"] != "v3applicationcredential" || auth["application_credential_id"] != cred.ID || auth["auth_url"] != e.ks.authURL() ||
		ent["region_name"] != "RegionOne" || ent["interface"] != "public" || ent["cacert"] != "/etc/ssl/lab-ca.pem" || ent[ProjectKey] != projectID {
		t.Fatalf("clouds.yaml entry %v", ent)
	}
	if _, ok := auth["project_id"]; ok {
		t.Fatal("project_id in auth breaks keystoneauth's application credential login")
	}
	if secret != e.ks.secretOf(cred.ID) || len(secret) < 40 {
		t.Fatalf("written secret does not match keystone's")
	}
	if mode(t, e.m.State.CloudsFile()) != 0o600 {
		t.Fatalf("clouds.yaml mode %v", mode(t, e.m.State.CloudsFile()))
	}
	if e.secrets.Redact("x"+secret+"y") != "x"+logging.Redacted+"y" {
		t.Fatal("the new secret is not registered for redaction")
	}
	if strings.Contains(e.logs.String(), secret) {
		t.Fatal("secret logged")
	}
}

func TestEnsureClusterCredential(t *testing.T) {
	e := newEnv(t)
	opts := Options{Expiry: 48 * time.Hour, LoadBalancer: LoadBalancer{Provider: "ovn", Method: "SOURCE_IP_PORT", CreateMonitor: true}}
	before := time.Now()
	cred, err := e.m.Ensure(context.Background(), "lab1", "alpha", opts)
	if err != nil {
		t.Fatal(err)
	}
	if cred.Action != Created || cred.Unrestricted || cred.CloudName != "lab1-alpha" || cred.Name != "lab1-alpha-appcred" {
		t.Fatalf("credential %+v", cred)
	}
	if d := cred.ExpiresAt.Sub(before); d < 47*time.Hour || d > 49*time.Hour {
		t.Fatalf("expires at %v, want about 48h from now", cred.ExpiresAt)
	}
	got := e.ks.byName("lab1-alpha-appcred")
	if len(got) != 1 || !strings.HasPrefix(got[0]["description"].(string), "capilab lab=lab1 cluster=alpha created=") || got[0]["unrestricted"] != false {
		t.Fatalf("keystone has %v", got)
	}
	if at := naming.AppCredCreatedAt(got[0]["description"].(string)); at.Before(before.Add(-time.Second)) || at.After(time.Now()) {
		t.Fatalf("description records creation at %v, want between %v and now", at, before)
	}
	conf, err := os.ReadFile(cred.CloudConf)
	if err != nil {
		t.Fatal(err)
	}
	secret := e.ks.secretOf(cred.ID)
	want := `[Global]
auth-url="` + e.ks.authURL() + `"
region="RegionOne"
application-credential-id="` + cred.ID + `"
application-credential-secret="` + secret + `"
tenant-id="p1"

[LoadBalancer]
manage-security-groups=true
use-octavia=true
enable-ingress-hostname=true
lb-provider="ovn"
lb-method="SOURCE_IP_PORT"
create-monitor=true
`
	if string(conf) != want {
		t.Fatalf("cloud.conf:\n%s\nwant:\n%s", conf, want)
	}
	if mode(t, cred.CloudConf) != 0o600 || mode(t, filepath.Dir(cred.CloudConf)) != 0o700 {
		t.Fatal("cloud.conf or its directory is readable by others")
	}
	if clusters, _ := e.m.State.Clusters(); len(clusters) != 1 || clusters[0] != "alpha" {
		t.Fatalf("state records clusters %v", clusters)
	}
}

func TestEnsureReuseAndRotation(t *testing.T) {
	tests := []struct {
		name        string
		tamper      func(t *testing.T, e env, id string)
		wantAction  Action
		wantDeletes int
	}{
		{name: "secret known: reused", tamper: func(*testing.T, env, string) {}, wantAction: Reused},
		{name: "clouds.yaml section gone (SCS failure): rotated", wantAction: Rotated, wantDeletes: 1, tamper: func(t *testing.T, e env, _ string) {
			doc, _ := readClouds(e.m.State.CloudsFile())
			delete(doc.Clouds, "lab1-alpha")
			if err := doc.write(e.m.State.CloudsFile()); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "state directory lost: rotated", wantAction: Rotated, wantDeletes: 1, tamper: func(t *testing.T, e env, _ string) {
			os.RemoveAll(string(e.m.State))
		}},
		{name: "local entry names another credential: rotated", wantAction: Rotated, wantDeletes: 1, tamper: func(t *testing.T, e env, _ string) {
			doc, _ := readClouds(e.m.State.CloudsFile())
			doc.Clouds["lab1-alpha"]["auth"].(map[string]any)["application_credential_id"] = "ac-old"
			doc.write(e.m.State.CloudsFile())
		}},
		{name: "revoked behind our back: created", wantAction: Created, tamper: func(t *testing.T, e env, id string) {
			e.ks.mu.Lock()
			delete(e.ks.creds, id)
			e.ks.mu.Unlock()
		}},
		{name: "expiring within the hour: rotated", wantAction: Rotated, wantDeletes: 1, tamper: func(t *testing.T, e env, id string) {
			e.ks.mu.Lock()
			e.ks.creds[id]["expires_at"] = time.Now().Add(10 * time.Minute).UTC().Format("2006-01-02T15:04:05.000000")
			e.ks.mu.Unlock()
		}},
		{name: "cloud.conf gone: rewritten", wantAction: Reused, tamper: func(t *testing.T, e env, _ string) {
			os.Remove(e.m.State.CloudConf("alpha"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			first, err := e.m.Ensure(context.Background(), "lab1", "alpha", Options{})
			if err != nil {
				t.Fatal(err)
			}
			tt.tamper(t, e, first.ID)
			creates, deletes := e.ks.count("POST /v3/users/u1/application_credentials"), e.ks.count("DELETE /v3/users/u1/application_credentials/{id}")
			cred, err := e.m.Ensure(context.Background(), "lab1", "alpha", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if cred.Action != tt.wantAction {
				t.Fatalf("action %s, want %s", cred.Action, tt.wantAction)
			}
			wantCreates := 1
			if tt.wantAction == Reused {
				wantCreates = 0
			}
			if got := e.ks.count("POST /v3/users/u1/application_credentials") - creates; got != wantCreates {
				t.Errorf("%d creates, want %d", got, wantCreates)
			}
			if got := e.ks.count("DELETE /v3/users/u1/application_credentials/{id}") - deletes; got != tt.wantDeletes {
				t.Errorf("%d deletes, want %d", got, tt.wantDeletes)
			}
			if all := e.ks.byName("lab1-alpha-appcred"); len(all) != 1 || all[0]["id"] != cred.ID {
				t.Fatalf("keystone has %v, want only %s", all, cred.ID)
			}
			auth := entry(t, e.m, "lab1-alpha")["auth"].(map[string]any)
			if auth["application_credential_id"] != cred.ID || auth["application_credential_secret"] != e.ks.secretOf(cred.ID) {
				t.Fatal("clouds.yaml entry does not hold the credential's ID and secret")
			}
			if conf, err := os.ReadFile(cred.CloudConf); err != nil || !strings.Contains(string(conf), e.ks.secretOf(cred.ID)) {
				t.Fatalf("cloud.conf not (re)written: %v", err)
			}
		})
	}
}

func TestForeignCredentialIsNeverTouched(t *testing.T) {
	for _, desc := range []string{"App Cred capi for cluster alpha", "capilab lab=capi-alpha", "capilab lab=other cluster=alpha"} {
		t.Run(desc, func(t *testing.T) {
			e := newEnv(t)
			id := e.ks.add("capi-alpha-appcred", desc, "theirs-0123456789")
			_, err := e.m.Ensure(context.Background(), "capi", "alpha", Options{})
			if err == nil || !strings.Contains(err.Error(), "not created by capilab for lab capi, cluster alpha") || !strings.Contains(err.Error(), "cloud fake") {
				t.Fatalf("Ensure: %v", err)
			}
			_, err = e.m.Delete(context.Background(), "capi", "alpha")
			if err == nil || !strings.Contains(err.Error(), id) {
				t.Fatalf("Delete: %v", err)
			}
			if e.ks.count("DELETE /v3/users/u1/application_credentials/{id}") != 0 || e.ks.secretOf(id) == "" {
				t.Fatal("a credential capilab did not create was deleted")
			}
		})
	}
}

func TestCreateFaults(t *testing.T) {
	base := "/v3/users/u1/application_credentials"
	tests := []struct {
		name        string
		faults      func(method, route string, n int) fault
		wantCreates int
	}{
		{name: "answer lost: adopted", wantCreates: 1, faults: func(m, r string, n int) fault {
			if m == "POST" && r == base && n == 1 {
				return lost
			}
			return noFault
		}},
		{name: "500 twice", wantCreates: 3, faults: func(m, r string, n int) fault {
			if m == "POST" && r == base && n <= 2 {
				return fail500
			}
			return noFault
		}},
		{name: "answer lost and the lookup after it fails: 409, then adopted", wantCreates: 2, faults: func(m, r string, n int) fault {
			if m == "POST" && r == base && n == 1 {
				return lost
			}
			if m == "GET" && r == base && n >= 2 && n <= 9 {
				return fail500
			}
			return noFault
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.ks.faults = tt.faults
			cred, err := e.m.Ensure(context.Background(), "lab1", "alpha", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := e.ks.count("POST " + base); got != tt.wantCreates {
				t.Errorf("%d creates, want %d", got, tt.wantCreates)
			}
			all := e.ks.byName("lab1-alpha-appcred")
			if len(all) != 1 || all[0]["id"] != cred.ID {
				t.Fatalf("keystone has %v", all)
			}
			auth := entry(t, e.m, "lab1-alpha")["auth"].(map[string]any)
			if auth["application_credential_secret"] != e.ks.secretOf(cred.ID) {
				t.Fatal("written secret does not authenticate")
			}
		})
	}
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	lab, err := e.m.Ensure(ctx, "lab1", "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := e.m.Ensure(ctx, "lab1", "alpha", Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.m.Delete(ctx, "lab1", "alpha")
	if err != nil || !d.Existed || !d.Local || d.ID != cred.ID {
		t.Fatalf("Delete: %+v, %v", d, err)
	}
	if len(e.ks.byName("lab1-alpha-appcred")) != 0 || entry(t, e.m, "lab1-alpha") != nil {
		t.Fatal("credential or its entry left")
	}
	if _, err := os.Stat(cred.CloudConf); !os.IsNotExist(err) {
		t.Fatal("cloud.conf left")
	}
	if entry(t, e.m, "lab1") == nil || len(e.ks.byName("lab1-appcred")) != 1 {
		t.Fatal("deleting the cluster's credential touched the lab's")
	}
	if d, err := e.m.Delete(ctx, "lab1", "alpha"); err != nil || !d.NotFound {
		t.Fatalf("second Delete: %+v, %v", d, err)
	}
	// A local entry whose credential is gone is cleaned up too.
	e.ks.mu.Lock()
	delete(e.ks.creds, lab.ID)
	e.ks.mu.Unlock()
	if d, err := e.m.Delete(ctx, "lab1", ""); err != nil || d.Existed || !d.Local {
		t.Fatalf("Delete of a local-only entry: %+v, %v", d, err)
	}
}

// TestRevokingDropsCachedTokensAndKeepsStateTrue: Delete (and a revoke
// elsewhere, ForgetRevoked) removes the credential's cached tokens, its
// entries and the cluster record it made, and nothing of other credentials.
func TestRevokingDropsCachedTokensAndKeepsStateTrue(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tokens := filepath.Join(string(e.m.State), "tokens")
	e.m.TokenCache = tokens
	e.m.Endpoint.CACert = "" // the written entries are used to log in here
	for _, c := range []string{"", "alpha", "beta", "gamma"} {
		if _, err := e.m.Ensure(ctx, "lab1", c, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	// Runs that used each credential cached a token for it.
	for _, name := range []string{"lab1", "lab1-alpha", "lab1-beta", "lab1-gamma"} {
		if _, err := cloud.Connect(ctx, cloud.Options{Cloud: name, CloudsFile: e.m.State.CloudsFile(), Secrets: e.secrets, TokenCache: tokens}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		entries, _ := os.ReadDir(tokens)
		return len(entries)
	}
	if count() != 4 {
		t.Fatalf("%d cached tokens, want 4", count())
	}
	// gamma's record holds more than the credential's files: it stays.
	if err := os.WriteFile(filepath.Join(e.m.State.ClusterDir("gamma"), "kubeconfig"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"alpha", "gamma"} {
		if _, err := e.m.Delete(ctx, "lab1", c); err != nil {
			t.Fatal(err)
		}
	}
	if count() != 2 {
		t.Errorf("%d cached tokens after revoking two credentials, want 2", count())
	}
	if _, err := os.Stat(e.m.State.ClusterDir("alpha")); !os.IsNotExist(err) {
		t.Errorf("alpha's record is left after its credential was deleted (%v): it would go on proving alpha a lab cluster", err)
	}
	if _, err := os.Stat(filepath.Join(e.m.State.ClusterDir("gamma"), "kubeconfig")); err != nil {
		t.Errorf("gamma's record with its kubeconfig is gone: %v", err)
	}
	// beta revoked by fullclean: its entries, token and record go; the lab's stay.
	beta := e.ks.byName("lab1-beta-appcred")[0]["id"].(string)
	e.ks.mu.Lock()
	delete(e.ks.creds, beta)
	e.ks.mu.Unlock()
	if err := ForgetRevoked(e.m.State, tokens, "lab1", "beta", beta); err != nil {
		t.Fatal(err)
	}
	if entry(t, e.m, "lab1-beta") != nil || count() != 1 {
		t.Errorf("after ForgetRevoked(beta): entry %v, %d cached tokens (want none and 1)", entry(t, e.m, "lab1-beta"), count())
	}
	if _, err := os.Stat(e.m.State.ClusterDir("beta")); !os.IsNotExist(err) {
		t.Errorf("beta's record is left: %v", err)
	}
	if entry(t, e.m, "lab1") == nil {
		t.Error("the lab's entry is gone")
	}
	// An entry that names another credential ID is not touched.
	lab := entry(t, e.m, "lab1")
	if err := ForgetRevoked(e.m.State, tokens, "lab1", "", "some-other-id"); err != nil || entry(t, e.m, "lab1") == nil || count() != 1 {
		t.Errorf("ForgetRevoked of another ID changed the lab's entry %v or tokens: %v", lab, err)
	}
}

func TestList(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, c := range []string{"", "alpha", "beta"} {
		if _, err := e.m.Ensure(ctx, "capi", c, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	// Another lab whose names collide, and SCS's credential.
	e.ks.add("capi-foo-bar-appcred", "capilab lab=capi-foo cluster=bar", "x-0123456789")
	e.ks.add("capi-gamma-appcred", "App Cred capi for cluster gamma", "x-0123456789")
	// beta's section lost; alpha revoked behind our back.
	doc, _ := readClouds(e.m.State.CloudsFile())
	delete(doc.Clouds, "capi-beta")
	doc.write(e.m.State.CloudsFile())
	alpha := e.ks.byName("capi-alpha-appcred")[0]["id"].(string)
	e.ks.mu.Lock()
	delete(e.ks.creds, alpha)
	e.ks.mu.Unlock()

	got, err := e.m.List(ctx, "capi")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		name, cluster     string
		known, inKeystone bool
	}
	var rows []row
	for _, l := range got {
		rows = append(rows, row{l.Name, l.Cluster, l.SecretKnown, l.InKeystone})
	}
	want := []row{
		{"capi-alpha-appcred", "alpha", true, false},
		{"capi-appcred", "", true, true},
		{"capi-beta-appcred", "beta", false, true},
	}
	// A cluster whose record is gone still has its entry listed.
	if err := os.RemoveAll(e.m.State.ClusterDir("alpha")); err != nil {
		t.Fatal(err)
	}
	if got, err = e.m.List(ctx, "capi"); err != nil || len(got) != len(want) {
		t.Fatalf("List without alpha's record: %+v, %v", got, err)
	}
	if len(rows) != len(want) {
		t.Fatalf("List = %+v, want %+v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
}

func TestConcurrentEnsureKeepsEveryEntry(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	clusters := []string{"a", "b", "c", "d", "e", "f"}
	errs := make([]error, len(clusters))
	for i, c := range clusters {
		wg.Go(func() { _, errs[i] = e.m.Ensure(context.Background(), "lab1", c, Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("cluster %s: %v", clusters[i], err)
		}
	}
	for _, c := range clusters {
		if entry(t, e.m, "lab1-"+c) == nil {
			t.Errorf("entry of cluster %s lost by a concurrent write", c)
		}
	}
}

func TestCloudConfQuoting(t *testing.T) {
	conf := string(cloudConf(Endpoint{AuthURL: `https://k/v3`}, "id", `se"c;r#e\t`, "", LoadBalancer{}))
	if !strings.Contains(conf, `application-credential-secret="se\"c;r#e\\t"`) {
		t.Fatalf("cloud.conf:\n%s", conf)
	}
	if strings.Contains(conf, "region") || strings.Contains(conf, "tenant-id") {
		t.Fatalf("empty values written:\n%s", conf)
	}
}
