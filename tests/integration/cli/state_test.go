//go:build integration

package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/logging"
)

// stateClouds reads the entry names of the lab's state/clouds.yaml.
func (l *lab) stateClouds(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(l.dir, "state", "clouds.yaml"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Clouds map[string]struct {
			Auth struct {
				ID string `yaml:"application_credential_id"`
			} `yaml:"auth"`
		} `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for name, e := range doc.Clouds {
		out[name] = e.Auth.ID
	}
	return out
}

// cachedTokensOf counts the lab's cached tokens issued for a credential.
func (l *lab) cachedTokensOf(t *testing.T, id string) int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(l.dir, "state", "tokens", "*.json"))
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), `"id":"`+id+`"`) {
			n++
		}
	}
	return n
}

// TestRevokedCredentialsLeaveNothingBehind: after fullclean or
// appcred-delete revoked credentials, no clouds.yaml entry, cloud.conf,
// cluster record or cached token of them is left, appcred-list shows none,
// later leakchecks do not count their clusters as the lab's, and
// config-check with a saved copy of a revoked entry fails — it really logs
// in.
func TestRevokedCredentialsLeaveNothingBehind(t *testing.T) {
	t.Parallel()
	l := newLab(t, "state")
	t.Cleanup(func() { revokeLab(t, l.prefix) })
	for _, c := range []string{"c1", "c2"} {
		if r := l.run("bin/mage appcred:create CLUSTER=" + c); r.code != 0 {
			t.Fatalf("setup: %s", r)
		}
	}
	entries := l.stateClouds(t)
	labID, c1ID := entries[l.prefix], entries[l.prefix+"-c1"]
	saved := filepath.Join(l.dir, "saved-clouds.yaml")
	data, err := os.ReadFile(filepath.Join(l.dir, "state", "clouds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(saved, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// Every target that uses a credential caches its token in the lab's
	// state/tokens; log in with the lab's and c1's the same way.
	stateClouds := filepath.Join(l.dir, "state", "clouds.yaml")
	for _, name := range []string{l.prefix, l.prefix + "-c1"} {
		if _, err := cloud.Connect(context.Background(), cloud.Options{Cloud: name, CloudsFile: stateClouds, Secrets: logging.NewSecrets(),
			TokenCache: filepath.Join(l.dir, "state", "tokens")}); err != nil {
			t.Fatalf("setup: logging in with %s: %v", name, err)
		}
	}
	if l.cachedTokensOf(t, labID) == 0 || l.cachedTokensOf(t, c1ID) == 0 {
		t.Fatalf("setup: no cached token of the lab's (%s) or c1's (%s) credential", labID, c1ID)
	}
	if r := l.run("bin/mage config:check", "OS_CLOUD="+l.prefix, "OS_CLIENT_CONFIG_FILE="+saved); r.code != 0 {
		t.Fatalf("config:check with the lab's live credential: %s", r)
	}

	// fullclean revokes every credential of the lab.
	if r := l.run("make fullclean"); r.code != 0 {
		t.Fatalf("make fullclean: %s", r)
	}
	if left := l.stateClouds(t); len(left) != 0 {
		t.Errorf("state/clouds.yaml still holds %v after fullclean revoked the credentials", left)
	}
	if _, err := os.Stat(filepath.Join(l.dir, "state", "clusters", "c1")); !os.IsNotExist(err) {
		t.Errorf("c1's record is left: %v", err)
	}
	if n, m := l.cachedTokensOf(t, labID), l.cachedTokensOf(t, c1ID); n+m != 0 {
		t.Errorf("cached tokens left of revoked credentials: %d of the lab's, %d of c1's", n, m)
	}
	if r := l.run("make appcred-list"); r.code != 0 || strings.Contains(r.stdout, l.prefix) {
		t.Errorf("appcred-list after fullclean lists credentials of the lab:\n%s", r)
	}
	r := l.run("bin/mage config:check", "OS_CLOUD="+l.prefix, "OS_CLIENT_CONFIG_FILE="+saved)
	if r.code != 1 || strings.Contains(r.stdout, "authenticated") {
		t.Errorf("config:check with the revoked lab credential: want exit 1, no 'authenticated':\n%s", r)
	}

	// appcred-delete leaves no record that would go on proving the cluster.
	if r := l.run("bin/mage appcred:create CLUSTER=c3"); r.code != 0 {
		t.Fatal(r)
	}
	if r := l.run("make appcred-delete CLUSTER=c3"); r.code != 0 {
		t.Fatal(r)
	}
	if _, err := os.Stat(filepath.Join(l.dir, "state", "clusters", "c3")); !os.IsNotExist(err) {
		t.Errorf("c3's record is left after appcred-delete: %v", err)
	}
	if r := l.run("make leakcheck"); strings.Contains(r.stderr, "c3") {
		t.Errorf("leakcheck still takes c3 for a cluster of the lab:\n%s", r)
	}
	if left := l.stateClouds(t); len(left) != 1 || left[l.prefix] == "" {
		t.Errorf("state/clouds.yaml: %v, want the lab's entry only", left)
	}
}
