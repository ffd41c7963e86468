//go:build integration

// Package appcred_test proves application credential management against
// devcloud, as the non-admin tenant devcloud-member: the written clouds.yaml
// entries authenticate with the openstack CLI and with gophercloud, reuse,
// rotation (the SCS "section gone" failure heals), deletion revokes, and
// creation survives the fault proxy.
package appcred_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/appcred"
	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/naming"
	"github.com/capilab/capilab/internal/testing/faultproxy"
	"github.com/capilab/capilab/tests/devcloudtest"
)

const memberCloud = "devcloud-member"

func init() {
	os.Setenv("PATH", "/usr/bin:/bin:/usr/sbin:/sbin:"+os.Getenv("PATH"))
}

func uniquePrefix(tag string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return tag + hex.EncodeToString(b)
}

func connect(t testing.TB) (*cloud.Cloud, appcred.Keystone) {
	t.Helper()
	c, err := cloud.Connect(context.Background(), cloud.Options{Cloud: memberCloud, Secrets: logging.NewSecrets()})
	if err != nil {
		t.Fatalf("devcloud must be running (make devcloud-up or scripts/devcloud/devcloud.sh start): %v", err)
	}
	k, err := appcred.KeystoneOf(c)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

// byName lists the member's credentials of a name with gophercloud.
func byName(t testing.TB, k appcred.Keystone, name string) []applicationcredentials.ApplicationCredential {
	t.Helper()
	pages, err := applicationcredentials.List(k.Client, k.UserID, applicationcredentials.ListOpts{Name: name}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all, err := applicationcredentials.ExtractApplicationCredentials(pages)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// removePrefix revokes every credential of the member whose description
// names the lab (test cleanup).
func removePrefix(t testing.TB, k appcred.Keystone, prefix string) {
	t.Helper()
	for _, ac := range byName(t, k, "") {
		if p, _, ok := naming.ParseAppCredDescription(ac.Description); ok && p == prefix {
			if err := applicationcredentials.Delete(context.Background(), k.Client, k.UserID, ac.ID).ExtractErr(); err != nil && !cloud.IsNotFound(err) {
				t.Errorf("cleanup: %v", err)
			}
		}
	}
}

// runTarget runs a lab target as make does; stdout and stderr are kept.
func runTarget(ctx context.Context, t testing.TB, target string, env ...string) (string, string, error) {
	t.Helper()
	stderr := &devcloudtest.LogWriter{T: t}
	stdout, err := devcloudtest.RunTarget(ctx, t, target, stderr, env...)
	t.Logf("%s: %v\n%s", target, err, stdout)
	return stdout, stderr.String(), err
}

// tokenIssue runs `openstack token issue` with a clouds.yaml entry.
func tokenIssue(cloudsFile, cloudName string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/openstack", "token", "issue", "-f", "json")
	cmd.Env = append(os.Environ(), "OS_CLIENT_CONFIG_FILE="+cloudsFile, "OS_CLOUD="+cloudName)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var tok struct {
		ProjectID string `json:"project_id"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &tok); err != nil {
		return "", err
	}
	return tok.ProjectID, nil
}

// gopherLogin authenticates with a clouds.yaml entry through capilab's client.
func gopherLogin(cloudsFile, cloudName string) (*cloud.Cloud, error) {
	return cloud.Connect(context.Background(), cloud.Options{Cloud: cloudName, CloudsFile: cloudsFile, Secrets: logging.NewSecrets()})
}

type entry struct {
	AuthType string `yaml:"auth_type"`
	Auth     struct {
		AuthURL string `yaml:"auth_url"`
		ID      string `yaml:"application_credential_id"`
		Secret  string `yaml:"application_credential_secret"`
	} `yaml:"auth"`
	Region    string `yaml:"region_name"`
	Interface string `yaml:"interface"`
	ProjectID string `yaml:"capilab_project_id"`
}

func readEntries(t testing.TB, path string) map[string]entry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Clouds map[string]entry `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Clouds
}

func perm(t testing.TB, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestLifecycle: create → the entries authenticate (CLI token issue and
// gophercloud) → a second create reuses → a lost clouds.yaml section heals by
// rotation → delete revokes (the saved entry no longer authenticates) →
// the lab's credential is deleted last.
func TestLifecycle(t *testing.T) {
	c, k := connect(t)
	prefix := uniquePrefix("it")
	t.Cleanup(func() { removePrefix(t, k, prefix) })
	stateDir := filepath.Join(t.TempDir(), "state")
	env := []string{"PREFIX=" + prefix, "CLUSTER=alpha-1", "STATE_DIR=" + stateDir, "APPCRED_EXPIRY=72h"}
	ctx := context.Background()

	out, logs, err := runTarget(ctx, t, "appcred:create", env...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, prefix+"-appcred: created") || !strings.Contains(out, prefix+"-alpha-1-appcred: created") {
		t.Fatalf("output %q", out)
	}
	cloudsFile := filepath.Join(stateDir, "clouds.yaml")
	confFile := filepath.Join(stateDir, "clusters", "alpha-1", "cloud.conf")
	if perm(t, cloudsFile) != 0o600 || perm(t, confFile) != 0o600 {
		t.Fatalf("modes: clouds.yaml %v, cloud.conf %v", perm(t, cloudsFile), perm(t, confFile))
	}
	entries := readEntries(t, cloudsFile)
	labEntry, clusterEntry := entries[prefix], entries[prefix+"-alpha-1"]
	for name, e := range map[string]entry{prefix: labEntry, prefix + "-alpha-1": clusterEntry} {
		if e.AuthType != "v3applicationcredential" || e.Auth.ID == "" || e.Auth.Secret == "" || e.Auth.AuthURL != c.AuthURL ||
			e.Region != "RegionOne" || e.Interface != "public" || e.ProjectID != c.ProjectID {
			t.Errorf("entry %s: %+v", name, e)
		}
		if strings.Contains(out+logs, e.Auth.Secret) {
			t.Fatalf("the secret of %s was printed", name)
		}
	}
	conf, _ := os.ReadFile(confFile)
	for _, want := range []string{`application-credential-id="` + clusterEntry.Auth.ID + `"`, `tenant-id="` + c.ProjectID + `"`, "use-octavia=true", `auth-url="` + c.AuthURL + `"`} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("cloud.conf lacks %s:\n%s", want, conf)
		}
	}

	// Keystone's view, with gophercloud and the CLI.
	labAC := byName(t, k, prefix+"-appcred")
	clusterAC := byName(t, k, prefix+"-alpha-1-appcred")
	if len(labAC) != 1 || !labAC[0].Unrestricted || !strings.HasPrefix(labAC[0].Description, "capilab lab="+prefix+" created=") || labAC[0].ID != labEntry.Auth.ID {
		t.Fatalf("lab credential in keystone: %+v", labAC)
	}
	if len(clusterAC) != 1 || clusterAC[0].Unrestricted || !strings.HasPrefix(clusterAC[0].Description, "capilab lab="+prefix+" cluster=alpha-1 created=") ||
		clusterAC[0].ExpiresAt.IsZero() || time.Until(clusterAC[0].ExpiresAt) < 71*time.Hour {
		t.Fatalf("cluster credential in keystone: %+v", clusterAC)
	}

	// The written entries authenticate: the openstack CLI and gophercloud.
	for _, name := range []string{prefix, prefix + "-alpha-1"} {
		project, err := tokenIssue(cloudsFile, name)
		if err != nil || project != c.ProjectID {
			t.Fatalf("openstack token issue with entry %s: project %q, %v", name, project, err)
		}
		if _, err := gopherLogin(cloudsFile, name); err != nil {
			t.Fatalf("gophercloud login with entry %s: %v", name, err)
		}
	}

	// Again: reused, nothing changes.
	out, _, err = runTarget(ctx, t, "appcred:create", env...)
	if err != nil || !strings.Contains(out, prefix+"-alpha-1-appcred: reused") || !strings.Contains(out, prefix+"-appcred: reused") {
		t.Fatalf("second create: %v, %q", err, out)
	}

	// The SCS failure: the credential exists, its clouds.yaml section is gone.
	data, _ := os.ReadFile(cloudsFile)
	var doc map[string]map[string]any
	_ = yaml.Unmarshal(data, &doc)
	delete(doc["clouds"], prefix+"-alpha-1")
	data, _ = yaml.Marshal(doc)
	if err := os.WriteFile(cloudsFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = runTarget(ctx, t, "appcred:create", env...)
	if err != nil || !strings.Contains(out, prefix+"-alpha-1-appcred: rotated") {
		t.Fatalf("create after the section was lost: %v, %q", err, out)
	}
	rotated := readEntries(t, cloudsFile)[prefix+"-alpha-1"]
	if rotated.Auth.ID == clusterEntry.Auth.ID || len(byName(t, k, prefix+"-alpha-1-appcred")) != 1 {
		t.Fatal("not rotated: same ID, or two credentials")
	}
	if _, err := tokenIssue(cloudsFile, prefix+"-alpha-1"); err != nil {
		t.Fatalf("the rotated entry does not authenticate: %v", err)
	}

	// list shows both, with their secrets known.
	out, _, err = runTarget(ctx, t, "appcred:list", env...)
	if err != nil || !strings.Contains(out, prefix+"-alpha-1-appcred") || !strings.Contains(out, "(lab)") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, prefix+"-") {
			continue
		}
		// SECRET KNOWN and IN KEYSTONE are the last two columns.
		if f := strings.Fields(line); len(f) < 2 || f[len(f)-2] != "yes" || f[len(f)-1] != "yes" {
			t.Errorf("list: %q: want its secret known and in keystone", line)
		}
	}

	// delete (dry run first: nothing changes).
	saved := filepath.Join(t.TempDir(), "saved-clouds.yaml")
	data, _ = os.ReadFile(cloudsFile)
	if err := os.WriteFile(saved, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = runTarget(ctx, t, "appcred:delete", append(env, "DRY_RUN=true")...)
	if err != nil || !strings.Contains(out, "dry run: would revoke") || len(byName(t, k, prefix+"-alpha-1-appcred")) != 1 {
		t.Fatalf("dry run: %v, %q", err, out)
	}
	out, _, err = runTarget(ctx, t, "appcred:delete", env...)
	if err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("delete: %v, %q", err, out)
	}
	if len(byName(t, k, prefix+"-alpha-1-appcred")) != 0 {
		t.Fatal("still in keystone after delete")
	}
	if _, err := tokenIssue(saved, prefix+"-alpha-1"); err == nil {
		t.Fatal("the deleted credential still authenticates")
	}
	if _, err := gopherLogin(saved, prefix+"-alpha-1"); err == nil {
		t.Fatal("the deleted credential still authenticates with gophercloud")
	}
	if _, ok := readEntries(t, cloudsFile)[prefix+"-alpha-1"]; ok {
		t.Fatal("the entry is still in clouds.yaml")
	}
	if _, err := os.Stat(confFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("cloud.conf is still there")
	}
	if _, err := tokenIssue(cloudsFile, prefix); err != nil {
		t.Fatalf("deleting the cluster's credential broke the lab's: %v", err)
	}
	out, _, err = runTarget(ctx, t, "appcred:delete", env...)
	if err != nil || !strings.Contains(out, "does not exist") {
		t.Fatalf("second delete: %v, %q", err, out)
	}
	out, _, err = runTarget(ctx, t, "appcred:delete", append(env, "APPCRED_SCOPE=lab")...)
	if err != nil || !strings.Contains(out, prefix+"-appcred: revoked") || len(byName(t, k, prefix+"-appcred")) != 0 {
		t.Fatalf("lab delete: %v, %q", err, out)
	}
	if _, err := tokenIssue(saved, prefix); err == nil {
		t.Fatal("the deleted lab credential still authenticates")
	}
}

// TestForeignCredentialSurvives: a credential named like the lab's that
// capilab did not create (SCS's, by hand) is neither rotated nor deleted.
func TestForeignCredentialSurvives(t *testing.T) {
	_, k := connect(t)
	prefix := uniquePrefix("fo")
	name := prefix + "-beta-appcred"
	ac, err := applicationcredentials.Create(context.Background(), k.Client, k.UserID, applicationcredentials.CreateOpts{
		Name: name, Description: "App Cred " + prefix + " for cluster beta",
	}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = applicationcredentials.Delete(context.Background(), k.Client, k.UserID, ac.ID).ExtractErr()
		removePrefix(t, k, prefix)
	})
	env := []string{"PREFIX=" + prefix, "CLUSTER=beta", "STATE_DIR=" + t.TempDir()}
	for _, target := range []string{"appcred:create", "appcred:delete"} {
		_, _, err := runTarget(context.Background(), t, target, env...)
		if err == nil || !strings.Contains(err.Error(), "not created by capilab") || !strings.Contains(err.Error(), memberCloud) {
			t.Fatalf("%s: %v", target, err)
		}
	}
	if got := byName(t, k, name); len(got) != 1 || got[0].ID != ac.ID {
		t.Fatalf("the foreign credential was touched: %+v", got)
	}
}

// TestCreateThroughFaultProxy creates the lab's and a cluster's credential
// through the fault proxy: 10% of requests failing, with several seeds, and
// once with the create's answer lost on purpose. Exactly one credential of
// each name results, and its entry authenticates.
func TestCreateThroughFaultProxy(t *testing.T) {
	c, k := connect(t)
	entryBase := devcloudtest.Member().Entry(t)
	tenPercent := map[string]faultproxy.Rule{faultproxy.AnyService: {
		ErrorRate: 0.04, ThrottleRate: 0.03, RetryAfter: time.Second, LostResponseRate: 0.03,
	}}
	// Keystone sees the run's requests in this order: POST token, GET the
	// lab credential by name, POST its create. To lose exactly the create's
	// answer, pick a seed whose third draw is a fault and first is not.
	lostCreate := faultproxy.Rule{LostResponseRate: 0.5, Methods: []string{"POST"}, MaxFaults: 1}
	tests := []struct {
		name     string
		seed     int64
		rules    map[string]faultproxy.Rule
		wantLogs []string
	}{
		{name: "10% seed 1", seed: 1, rules: tenPercent},
		{name: "10% seed 2", seed: 2, rules: tenPercent},
		{name: "10% seed 3", seed: 3, rules: tenPercent},
		{name: "create answer lost", seed: seedLosingThirdRequest(t, lostCreate), wantLogs: []string{"adopting the credential"},
			rules: map[string]faultproxy.Rule{faultproxy.IdentityService: lostCreate}},
	}
	injected := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			proxy, err := faultproxy.Start(ctx, faultproxy.Config{Upstream: c.AuthURL, Seed: tt.seed, Rules: tt.rules})
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			dir := t.TempDir()
			clouds := filepath.Join(dir, "faulty.yaml")
			if err := proxy.WriteCloudsYAML(clouds, "faulty", entryBase); err != nil {
				t.Fatal(err)
			}
			prefix := uniquePrefix("fp")
			t.Cleanup(func() { removePrefix(t, k, prefix) })
			stateDir := filepath.Join(dir, "state")
			_, logs, err := runTarget(ctx, t, "appcred:create", "PREFIX="+prefix, "CLUSTER=gamma", "STATE_DIR="+stateDir,
				"OS_CLOUD=faulty", "OS_CLIENT_CONFIG_FILE="+clouds)
			if err != nil {
				t.Fatalf("appcred:create through the fault proxy: %v", err)
			}
			for _, want := range tt.wantLogs {
				if !strings.Contains(logs, want) {
					t.Errorf("the log lacks %q: the fault did not hit where intended", want)
				}
			}
			cloudsFile := filepath.Join(stateDir, "clouds.yaml")
			entries := readEntries(t, cloudsFile)
			for _, n := range []string{prefix, prefix + "-gamma"} {
				got := byName(t, k, naming.AppCred(prefix, strings.TrimPrefix(strings.TrimPrefix(n, prefix), "-")))
				if len(got) != 1 || got[0].ID != entries[n].Auth.ID {
					t.Fatalf("keystone has %+v for entry %s (%s)", got, n, entries[n].Auth.ID)
				}
				// The entry points at the proxy; log in through it (retries included).
				if _, err := gopherLogin(cloudsFile, n); err != nil {
					t.Fatalf("entry %s does not authenticate: %v", n, err)
				}
			}
			for svc, st := range proxy.Stats() {
				injected += st.Faults()
				t.Logf("%s: %d requests, %d errors, %d throttled, %d lost responses", svc, st.Requests, st.Errors, st.Throttled, st.LostResponses)
			}
		})
	}
	if injected == 0 {
		t.Fatal("no faults injected: the test proves nothing")
	}
}

// seedLosingThirdRequest finds a seed for which the proxy, with this rule
// for identity, loses the answer of the third request (a POST) and not of
// the first (a POST), by replaying POST, GET, POST through a proxy in front
// of a dummy upstream.
func seedLosingThirdRequest(t *testing.T, rule faultproxy.Rule) int64 {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	defer upstream.Close()
	for seed := int64(1); seed <= 200; seed++ {
		ctx, cancel := context.WithCancel(context.Background())
		p, err := faultproxy.Start(ctx, faultproxy.Config{Upstream: upstream.URL + "/v3", Seed: seed,
			Rules: map[string]faultproxy.Rule{faultproxy.IdentityService: rule}})
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		var lost []bool
		for _, method := range []string{"POST", "GET", "POST"} {
			req, _ := http.NewRequest(method, p.AuthURL()+"/x", strings.NewReader("{}"))
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			lost = append(lost, err != nil)
		}
		p.Close()
		cancel()
		if !lost[0] && !lost[1] && lost[2] {
			return seed
		}
	}
	t.Fatal("no seed up to 200 loses exactly the third request")
	return 0
}
