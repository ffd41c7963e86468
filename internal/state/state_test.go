package state

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestClustersRecordForget(t *testing.T) {
	d := Dir(t.TempDir())
	if cs, err := d.Clusters(); err != nil || len(cs) != 0 {
		t.Fatalf("empty state: %v %v", cs, err)
	}
	for _, c := range []string{"beta", "alpha", "alpha"} {
		if err := d.RecordCluster(c); err != nil {
			t.Fatal(err)
		}
	}
	if cs, _ := d.Clusters(); !reflect.DeepEqual(cs, []string{"alpha", "beta"}) {
		t.Fatalf("clusters = %v", cs)
	}
	if err := d.ForgetCluster("alpha"); err != nil {
		t.Fatal(err)
	}
	if cs, _ := d.Clusters(); !reflect.DeepEqual(cs, []string{"beta"}) {
		t.Fatalf("clusters = %v", cs)
	}
}

func TestWriteSecretFileIs0600(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "clouds.yaml")
	for _, content := range []string{"first", "second"} {
		if err := WriteSecretFile(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, err %v", fi.Mode(), err)
	}
	if di, _ := os.Stat(filepath.Dir(p)); di.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", di.Mode())
	}
	if b, _ := os.ReadFile(p); string(b) != "second" {
		t.Fatalf("content %q", b)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".clouds.yaml.*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
