package report

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sample() *Report {
	return &Report{
		Name:     "check focus",
		Started:  time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC),
		Duration: 5*time.Minute + 3*time.Second,
		Cluster: &Cluster{Name: "kind-a", Server: "https://127.0.0.1:6443", Version: "v1.2.3", Provider: "kind",
			Nodes: []Node{{Name: "a-control-plane", Roles: []string{"control-plane"}, Ready: true, KubeletVersion: "v1.2.3"}}},
		Properties: []Property{{"mode", "quick"}, {"focus", `\[Conformance\]`}},
		Cases: []Case{
			{Suite: "Kubernetes e2e suite", Name: "[SynchronizedBeforeSuite]", Status: Passed, Setup: true, Duration: time.Second},
			{Suite: "Kubernetes e2e suite", Name: "[sig-node] Pods should be submitted and removed [Conformance]", Status: Passed, Duration: 4 * time.Second},
			{Suite: "Kubernetes e2e suite", Name: "[sig-network] DNS <works> & \"resolves\" [Conformance]", Status: Failed, Duration: 2 * time.Minute,
				Message: "[FAILED] timed out waiting for pod \x1b[1mdns-test\x1b[0m", Location: "k8s.io/kubernetes/test/e2e/network/dns.go:42",
				Detail: "[FAILED] timed out\nIn [It] at: k8s.io/kubernetes/test/e2e/network/dns.go:42 @ 11/30/26\x00 10:02:00", Output: "STEP: creating a pod\n"},
			{Suite: "Kubernetes e2e suite", Name: "[sig-apps] Slow thing", Status: Skipped, Message: "skipped by focus"},
			{Suite: "Kubernetes e2e suite", Name: "[sig-apps] Other slow thing", Status: Skipped},
		},
		Notes: []string{"image registry.k8s.io/x:1 could not be pulled"},
	}
}

func TestCountsAndDecide(t *testing.T) {
	r := sample()
	c := r.Counts()
	if c != (Counts{Total: 4, Passed: 1, Failed: 1, Skipped: 2}) {
		t.Errorf("Counts = %+v", c)
	}
	if a := r.AllCounts(); a.Total != 5 || a.Passed != 2 {
		t.Errorf("AllCounts = %+v", a)
	}
	r.Decide()
	if r.Outcome != OutcomeFailed || r.OK() {
		t.Errorf("outcome %s with a failed test", r.Outcome)
	}

	tests := []struct {
		name   string
		cases  []Case
		preset Outcome
		want   Outcome
	}{
		{"all passed", []Case{{Name: "a", Status: Passed}, {Name: "b", Status: Skipped}}, "", OutcomePassed},
		{"only setup ran", []Case{{Name: "[BeforeSuite]", Status: Passed, Setup: true}, {Name: "b", Status: Skipped}}, "", OutcomeFailed},
		{"nothing", nil, "", OutcomeFailed},
		{"setup failed", []Case{{Name: "[BeforeSuite]", Status: Failed, Setup: true}, {Name: "a", Status: Passed}}, "", OutcomeFailed},
		{"errored", []Case{{Name: "a", Status: Errored}, {Name: "b", Status: Passed}}, "", OutcomeFailed},
		{"timeout kept", []Case{{Name: "a", Status: Passed}}, OutcomeTimeout, OutcomeTimeout},
		{"interrupt kept", nil, OutcomeInterrupted, OutcomeInterrupted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{Name: "x", Cases: tt.cases, Outcome: tt.preset}
			r.Decide()
			if r.Outcome != tt.want {
				t.Errorf("outcome = %s, want %s", r.Outcome, tt.want)
			}
			if tt.want == OutcomeFailed && r.AllCounts().Bad() == 0 && r.Reason == "" {
				t.Error("no reason for a failed run without failed cases")
			}
		})
	}
}

func TestSummaryLastLine(t *testing.T) {
	r := sample()
	r.Decide()
	if got := r.Summary(); got != "check focus: FAILED: 1 test failed (1 passed), 2 skipped in 5m3s" {
		t.Errorf("failed: %q", got)
	}
	r.Outcome, r.Progress, r.Timeout = OutcomeTimeout, &Progress{Total: 12, Completed: 5, Failed: 1}, 5*time.Minute
	if got := r.Summary(); got != "check focus: TIMEOUT after 5m3s (bound 5m0s): 6 of 12 tests done, 1 failed so far" {
		t.Errorf("timeout: %q", got)
	}
	r.Outcome = OutcomeInterrupted
	if got := r.Summary(); !strings.HasPrefix(got, "check focus: INTERRUPTED after 5m3s") {
		t.Errorf("interrupted: %q", got)
	}
	ok := &Report{Name: "check quick", Duration: 41 * time.Second, Cases: []Case{{Name: "a", Status: Passed}, {Name: "b", Status: Skipped}}}
	ok.Decide()
	if got := ok.Summary(); got != "check quick: PASSED: 1 of 1 tests passed, 1 skipped in 41s" {
		t.Errorf("passed: %q", got)
	}
	none := &Report{Name: "check x", Duration: time.Second}
	none.Decide()
	if got := none.Summary(); !strings.Contains(got, "FAILED: no test ran") {
		t.Errorf("no test: %q", got)
	}
	e := &Report{Name: "check x", Outcome: OutcomeError, Reason: "aggregator failed"}
	if got := e.Summary(); got != "check x: ERROR: aggregator failed" {
		t.Errorf("error: %q", got)
	}
}

// junitDoc is what a CI system reads of JUnit.
type junitDoc struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Skipped  int `xml:"skipped,attr"`
	Suites   []struct {
		Name       string `xml:"name,attr"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name    string `xml:"name,attr"`
			Time    string `xml:"time,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Error *struct {
				Message string `xml:"message,attr"`
			} `xml:"error"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestJUnit(t *testing.T) {
	r := sample()
	r.Decide()
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, r); err != nil {
		t.Fatal(err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, buf.String())
	}
	if doc.Tests != 5 || doc.Failures != 1 || doc.Skipped != 2 || doc.Errors != 0 || len(doc.Suites) != 1 {
		t.Fatalf("totals tests=%d failures=%d skipped=%d errors=%d suites=%d", doc.Tests, doc.Failures, doc.Skipped, doc.Errors, len(doc.Suites))
	}
	var failed int
	for _, c := range doc.Suites[0].Cases {
		if c.Failure != nil {
			failed++
			if c.Name != `[sig-network] DNS <works> & "resolves" [Conformance]` {
				t.Errorf("failed case name %q", c.Name)
			}
			if !strings.Contains(c.Failure.Message, "dns-test") || strings.Contains(c.Failure.Message, "\x1b") ||
				!strings.Contains(c.Failure.Message, "dns.go:42") || !strings.Contains(c.Failure.Text, "In [It] at:") {
				t.Errorf("failure = %+v", c.Failure)
			}
			if c.Time != "120.000" {
				t.Errorf("time %q", c.Time)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d failures in the cases", failed)
	}
	props := map[string]string{}
	for _, p := range doc.Suites[0].Properties {
		props[p.Name] = p.Value
	}
	if props["mode"] != "quick" || props["cluster.version"] != "v1.2.3" || props["outcome"] != "failed" || props["cluster.nodes"] != "a-control-plane" {
		t.Errorf("properties = %v", props)
	}

	// a timeout adds an errored case, so CI reading only JUnit sees it
	r.Outcome = OutcomeTimeout
	buf.Reset()
	if err := WriteJUnit(&buf, r); err != nil {
		t.Fatal(err)
	}
	doc = junitDoc{}
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Errors != 1 || !strings.Contains(buf.String(), "TIMEOUT after") {
		t.Errorf("timeout JUnit: errors=%d\n%s", doc.Errors, buf.String())
	}
}

func TestMarkdownAndHTML(t *testing.T) {
	r := sample()
	r.Decide()
	r.Artifacts = []Artifact{{"tarball", "/a/b.tar.gz"}}
	var md, html bytes.Buffer
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# check focus: FAILED", "1 passed, 1 failed, 0 errors, 2 skipped (of 4)", "v1.2.3", "a-control-plane",
		"## Failed tests (1)", "DNS &lt;works&gt;", "`k8s.io/kubernetes/test/e2e/network/dns.go:42`", "5m3s",
		"image registry.k8s.io/x:1 could not be pulled", "/a/b.tar.gz", "suite setup/teardown | 1 passed",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("summary.md lacks %q:\n%s", want, md.String())
		}
	}
	h := html.String()
	for _, want := range []string{
		`<span class="v failed">failed</span>`, "DNS &lt;works&gt; &amp; &#34;resolves&#34;", "dns.go:42", "v1.2.3", "a-control-plane",
		"Passed tests (1)", "2 skipped", "/a/b.tar.gz",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, bad := range []string{"\x1b", "\x00", "<works>"} {
		if strings.Contains(h, bad) || strings.Contains(md.String(), bad) {
			t.Errorf("rendering carries %q", bad)
		}
	}
}

func TestWriteFilesAndJSON(t *testing.T) {
	dir := t.TempDir()
	r := sample()
	r.Decide()
	files, err := WriteFiles(filepath.Join(dir, "out"), r)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{files.JUnit, files.Markdown, files.HTML, files.JSON} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", p, err)
		}
	}
	data, err := os.ReadFile(files.JSON)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"outcome": "failed"`, `"ok": false`, `"summary": "check focus: FAILED: 1 test failed`, `"counts": {`, `"all_counts": {`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("report.json lacks %s", want)
		}
	}
	back, err := ReadJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if back.Counts() != r.Counts() || back.Outcome != r.Outcome || back.Cluster.Version != "v1.2.3" || len(back.Artifacts) != 4 {
		t.Errorf("round trip: %+v", back)
	}
	// the report names its own files once, however often it is written
	if _, err := WriteFiles(filepath.Join(dir, "out"), r); err != nil || len(r.Artifacts) != 4 {
		t.Errorf("rewrite: %v, %d artifacts", err, len(r.Artifacts))
	}
}

func TestListed(t *testing.T) {
	r := &Report{Name: "check csi (dry run)", Outcome: OutcomeListed, Duration: time.Minute,
		Cases: []Case{{Name: "a", Status: Passed}, {Name: "b", Status: Passed}, {Name: "c", Status: Skipped}}}
	r.Decide()
	if r.Outcome != OutcomeListed || !r.OK() {
		t.Errorf("outcome %s", r.Outcome)
	}
	if got := r.Summary(); got != "check csi (dry run): LISTED (dry run): 2 tests selected, none run, 1 skipped in 1m0s" {
		t.Errorf("summary %q", got)
	}
}
