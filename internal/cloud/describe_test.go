package cloud

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/capilab/capilab/internal/logging"
)

// TestDescribeListsEachFieldOnce: clouds.yaml's project is both tenant and
// scope in gophercloud's options; make config prints it once.
func TestDescribeListsEachFieldOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(p, []byte(`clouds:
  lab:
    auth:
      auth_url: https://keystone.example:5000/v3
      username: alice
      password: secret-not-shown
      project_name: lab
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
`), 0o600); err != nil {
		t.Fatal(err)
	}
	prof, err := Resolve(Options{Cloud: "lab", CloudsFile: p, Secrets: logging.NewSecrets()})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, f := range prof.Describe() {
		seen[f.Key]++
		if seen[f.Key] > 1 {
			t.Errorf("%s listed %d times", f.Key, seen[f.Key])
		}
	}
	if seen["project_name"] != 1 {
		t.Errorf("project_name listed %d times, want once", seen["project_name"])
	}
}
