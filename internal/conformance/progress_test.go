package conformance

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// The fixture is the verbose Ginkgo output of a real e2e.test run (three
// tests, one failing on an image that cannot be pulled), trimmed of its
// log lines and pod dump.
func TestGinkgoProgressFromRealOutput(t *testing.T) {
	data, err := os.ReadFile("testdata/ginkgo-verbose.log")
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1, 7, 4096, len(data)} {
		var g ginkgoProgress
		if _, ok := g.snapshot(); ok {
			t.Fatal("progress before any output")
		}
		var sawTwoDone bool
		for i := 0; i < len(data); i += chunk {
			if _, err := g.Write(data[i:min(i+chunk, len(data))]); err != nil {
				t.Fatal(err)
			}
			if p, ok := g.snapshot(); ok && p.Done() == 2 && p.Failed == 0 {
				sawTwoDone = true
			}
		}
		p, ok := g.snapshot()
		if !ok || p.Total != 3 || p.Completed != 2 || p.Failed != 1 {
			t.Fatalf("chunk %d: progress %+v, ok %t", chunk, p, ok)
		}
		want := "[sig-node] Variable Expansion should succeed in writing subpaths in container [Conformance]"
		if !slices.Equal(p.Failures, []string{want}) {
			t.Errorf("chunk %d: failures %q", chunk, p.Failures)
		}
		if !sawTwoDone && chunk < len(data) {
			t.Errorf("chunk %d: progress did not show the two passed tests before the failure", chunk)
		}
	}
}

func TestGinkgoProgressLines(t *testing.T) {
	var g ginkgoProgress
	in := strings.Join([]string{
		"Will run 4 of 3206 specs",
		"SSSS------------------------------",
		"[sig-network] DNS should provide DNS for the cluster [Provider:GCE] [sig-network]",
		"SSS [SKIPPED] [0.003 seconds]",
		"------------------------------",
		"[sig-apps] Job should work [Conformance] [sig-apps, Conformance]",
		"• [TIMEDOUT] [600.1 seconds]",
		"[SynchronizedAfterSuite] [FAILED] [1.000 seconds]",
		"SSSSSS",
		"• [2.1 seconds]",
		"",
	}, "\n")
	if _, err := g.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	p, _ := g.snapshot()
	if p.Total != 4 || p.Completed != 2 || p.Failed != 1 || len(p.Failures) != 2 || p.Failures[0] != "[sig-apps] Job should work [Conformance]" {
		t.Errorf("progress %+v", p)
	}
}
