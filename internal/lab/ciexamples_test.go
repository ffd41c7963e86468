package lab

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// The CI examples users copy call targets that exist.
func TestCIExamplesCallRealTargets(t *testing.T) {
	files, err := filepath.Glob("../../docs/ci/*")
	if err != nil || len(files) < 3 {
		t.Fatalf("CI examples: %v %v", files, err)
	}
	call := regexp.MustCompile(`bin/mage ([a-z]+:[a-z]+)`)
	targets := Targets()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		calls := call.FindAllStringSubmatch(string(data), -1)
		if len(calls) == 0 {
			t.Errorf("%s calls no target", f)
		}
		for _, c := range calls {
			if _, ok := targets[c[1]]; !ok {
				t.Errorf("%s calls bin/mage %s, which is no target", f, c[1])
			}
		}
	}
}
