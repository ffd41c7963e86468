package conformance

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capilab/capilab/internal/report"
)

// The fixtures are the e2e plugin's files of two real runs' results
// tarballs on a kind cluster (sonobuoy's result tree and the e2e binary's
// JUnit), trimmed to three of the ~3200 skipped tests and shortened
// failure output: testdata/results/failed is one passing and one failing
// test, testdata/results/passed the thirteen tests of the e2e tier's
// focused set.

func TestReadResultsFailed(t *testing.T) {
	res, err := ReadResults("testdata/results/failed")
	if err != nil {
		t.Fatal(err)
	}
	r := &report.Report{Name: "x", Cases: res.Cases}
	if c := r.Counts(); c != (report.Counts{Total: 5, Passed: 1, Failed: 1, Skipped: 3}) {
		t.Errorf("test counts %+v", c)
	}
	all := r.AllCounts()
	if all != (report.Counts{Total: 12, Passed: 8, Failed: 1, Skipped: 3}) {
		t.Errorf("all counts %+v", all)
	}
	// what `sonobuoy results` counts from its own tree must agree with the JUnit
	if res.Sonobuoy.Total != all.Total || res.Sonobuoy.Passed != all.Passed || res.Sonobuoy.Failed != all.Bad() || res.Sonobuoy.Skipped != all.Skipped {
		t.Errorf("sonobuoy tree counts %+v, JUnit %+v", res.Sonobuoy, all)
	}
	if res.PluginStatus != "failed" || !res.HasJUnit {
		t.Errorf("plugin status %q, junit %t", res.PluginStatus, res.HasJUnit)
	}
	bad := r.Bad()
	if len(bad) != 1 {
		t.Fatalf("failed cases: %+v", bad)
	}
	f := bad[0]
	if f.Name != "[sig-node] Variable Expansion should succeed in writing subpaths in container [Conformance]" {
		t.Errorf("name %q", f.Name)
	}
	if !strings.Contains(f.Message, "while waiting for pod to be running") || !strings.HasSuffix(f.Location, "test/e2e/common/node/expansion.go:345") {
		t.Errorf("message %q, location %q", f.Message, f.Location)
	}
	if f.Duration.Seconds() < 100 || f.Output == "" || !strings.Contains(f.Detail, "Timed out") {
		t.Errorf("duration %s, output %d bytes, detail %q", f.Duration, len(f.Output), firstLine(f.Detail))
	}
	var setup int
	for _, c := range res.Cases {
		if c.Setup {
			setup++
			if !strings.HasPrefix(c.Name, "[") || strings.HasPrefix(c.Name, "[sig-") {
				t.Errorf("setup node %q", c.Name)
			}
		}
	}
	if setup != 7 {
		t.Errorf("%d setup nodes, want 7", setup)
	}
}

func TestReadResultsPassed(t *testing.T) {
	res, err := ReadResults("testdata/results/passed")
	if err != nil {
		t.Fatal(err)
	}
	r := &report.Report{Name: "x", Cases: res.Cases}
	r.Decide()
	if r.Outcome != report.OutcomePassed || r.Counts().Passed != 13 || res.PluginStatus != "passed" {
		t.Errorf("outcome %s, counts %+v, plugin %s", r.Outcome, r.Counts(), res.PluginStatus)
	}
	var dns bool
	for _, c := range res.Cases {
		if strings.HasPrefix(c.Name, "[sig-network] DNS should provide DNS for the cluster [Conformance]") && c.Status == report.Passed && c.Duration > 0 {
			dns = true
		}
		if strings.HasPrefix(c.Name, "[It] ") {
			t.Errorf("Ginkgo's [It] prefix kept: %q", c.Name)
		}
	}
	if !dns {
		t.Error("the DNS test is not among the passed")
	}
}

func TestReadResultsWithoutJUnit(t *testing.T) {
	res, err := ReadResults(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if res.HasJUnit || res.PluginStatus != "missing" || len(res.Cases) != 0 {
		t.Errorf("%+v", res)
	}
}

func TestExtractTarball(t *testing.T) {
	dir := t.TempDir()
	tarball := filepath.Join(dir, "r.tar.gz")
	f, err := os.Create(tarball)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{resultsItemFile, junitFile} {
		data, err := os.ReadFile(filepath.Join("testdata/results/failed", p))
		if err != nil {
			t.Fatal(err)
		}
		add(p, data)
	}
	add("../escape", []byte("x"))
	add("/abs", []byte("x"))
	for _, c := range []interface{ Close() error }{tw, gz, f} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "out")
	if err := ExtractTarball(tarball, out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "escape")); err == nil {
		t.Error("a path outside the target was written")
	}
	res, err := ReadResults(out)
	if err != nil || len(res.Cases) != 12 {
		t.Fatalf("read extracted: %v, %d cases", err, len(res.Cases))
	}
}
