package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// A settings file made of every knob's Value loads back to the same
// settings: what a copy of the lab's settings on another machine relies on.
func TestValuesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	env := []string{"PREFIX=lab7", "RESTRICT_MGMT_SERVER=192.0.2.0/24,2001:db8::/32", "REMOTE_TIMEOUT=45m", "WORKER_METADATA=a=b,c=d", "MGMT_MODE=remote", "KUBE_IMAGE_RAW=false", "WORKER_COUNT=5"}
	first, err := Load(Options{Dir: dir, Environ: env})
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{}
	for _, k := range Knobs() {
		doc[k.Key] = k.Value(&first.Settings)
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "copy.yaml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	second, err := Load(Options{Dir: dir, Environ: []string{"LAB_CONFIG=copy.yaml"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !reflect.DeepEqual(first.Settings, second.Settings) {
		t.Fatalf("settings differ after the round trip:\n%+v\n%+v", first.Settings, second.Settings)
	}
	for _, k := range Knobs() {
		if src := second.Sources[k.Key]; !strings.HasPrefix(src, "copy.yaml:") {
			t.Errorf("%s: source %q, want copy.yaml", k.Key, src)
		}
	}
}
