//go:build integration

// Package nightly_test runs `make nightly` the way nightly CI does, on the
// local lab (no cloud selected): a green night, then a night whose check
// fails (one test's image made unreachable) that still deletes everything,
// finds no leaks, exits "tests failed" and names the test in its report,
// which headless Chromium renders as a person would see it.
package nightly_test

import (
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/capilab/capilab/internal/pipeline"
	"github.com/capilab/capilab/tests/devcloudtest"
)

// The check of the nightly runs: the quick test passes; failingTest waits
// for a pod whose image cannot be pulled and fails within minutes.
const (
	quickTest   = "[sig-node] Pods should be submitted and removed"
	failingTest = "[sig-node] Variable Expansion should succeed in writing subpaths in container"
)

func TestNightly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Minute)
	defer cancel()
	// No OS_CLOUD: the local lab is the default.
	os.Unsetenv("OS_CLOUD")
	l := devcloudtest.NewLab(t, "itng", "integration-nightly", "PROVIDER_SOURCE=local", "WORKER_COUNT=1")
	cluster := "n" + l.Prefix[len(l.Prefix)-6:]
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer ccancel()
		l.Make(cctx, "clean", "OS_CLOUD=devcloud-lab")
		l.Make(cctx, "fullclean", "OS_CLOUD=devcloud-lab")
	})
	if out, err := exec.CommandContext(ctx, "make", "-C", l.Repo, "bin/mage").CombinedOutput(); err != nil {
		t.Fatalf("make bin/mage: %v\n%s", err, out)
	}
	root := filepath.Join(l.Artifacts, "nightly")

	// A green night: exit 0, every phase passed, the check's cases in the JUnit.
	out, code, took := l.Mage(ctx, "nightly:run", "CLUSTER="+cluster, "SONOMODE=quick")
	t.Logf("TIMING green nightly on the local lab: %s", took.Round(time.Second))
	if code != 0 {
		t.Fatalf("bin/mage nightly:run (green): exit %d", code)
	}
	if first := strings.SplitN(out, "\n", 2)[0]; !strings.Contains(first, "local lab") {
		t.Errorf("first line %q does not say the run is on the local lab", first)
	}
	green := readRecord(t, filepath.Join(root, "latest"))
	if green.Verdict != pipeline.VerdictPassed || green.ExitCode != 0 {
		t.Errorf("green run: verdict %q, exit code %d", green.Verdict, green.ExitCode)
	}
	for _, p := range green.Phases {
		t.Logf("TIMING green phase %-22s %s %s", p.Name, p.Outcome, p.Duration().Round(time.Second))
		if p.Outcome != pipeline.Passed {
			t.Errorf("green run: phase %s %s: %s", p.Name, p.Outcome, p.Error)
		}
	}
	junit := readFile(t, filepath.Join(root, "latest", "junit.xml"))
	for _, want := range []string{`name="create-clusters"`, `name="check/` + cluster, `name="delete-clusters"`, `name="leakcheck"`, "Pods should be submitted and removed"} {
		if !strings.Contains(junit, want) {
			t.Errorf("junit.xml lacks %s", want)
		}
	}

	// A night whose check fails: everything is still deleted, no leaks, exit 5.
	repoList := filepath.Join(t.TempDir(), "repo-list.yaml")
	if err := os.WriteFile(repoList, []byte("promoterE2eRegistry: registry.capilab.invalid/e2e-test-images\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, code, took = l.Mage(ctx, "nightly:run", "CLUSTER="+cluster, "SONOMODE=certified-conformance",
		"E2E_FOCUS="+focus(quickTest, failingTest), "E2E_REPO_CONFIG="+repoList)
	t.Logf("TIMING nightly with a failing test: %s", took.Round(time.Second))
	if code != 5 {
		t.Fatalf("bin/mage nightly:run with a failing test: exit %d, want 5 (tests failed)", code)
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(root, "latest"))
	if err != nil {
		t.Fatal(err)
	}
	red := readRecord(t, dir)
	if red.Verdict != pipeline.VerdictTestsFailed {
		t.Errorf("verdict %q, want %q", red.Verdict, pipeline.VerdictTestsFailed)
	}
	for _, p := range red.Phases {
		want := pipeline.Passed
		if p.Name == "check" {
			want = pipeline.TestsFailed
		}
		if p.Outcome != want {
			t.Errorf("phase %s: %s (%s), want %s", p.Name, p.Outcome, p.Error, want)
		}
	}
	if red.Comparison == nil || red.Comparison.PreviousID != green.ID || !containsPrefix(red.Comparison.NewlyFailing, failingTest) {
		t.Errorf("comparison with the green run: %+v", red.Comparison)
	}
	if summary := readFile(t, filepath.Join(dir, "summary.md")); !strings.Contains(summary, failingTest) {
		t.Errorf("summary.md does not name the failing test:\n%s", summary)
	}
	if _, code, _ := l.Make(ctx, "leakcheck", "OS_CLOUD=devcloud-lab"); code != 0 {
		t.Errorf("make leakcheck after the nights (their clusters left nothing): exit %d", code)
	}

	// What a person sees: the page as headless Chromium renders it.
	seeReport(ctx, t, dir, red)

	// The lab itself (management cluster, its credential) goes with make clean and fullclean.
	for _, target := range []string{"clean", "fullclean"} {
		if _, code, _ := l.Make(ctx, target, "OS_CLOUD=devcloud-lab"); code != 0 {
			t.Errorf("make %s: exit %d", target, code)
		}
	}
	if _, code, _ := l.Make(ctx, "leakcheck", "OS_CLOUD=devcloud-lab", "LEAK_SCOPE=lab"); code != 0 {
		t.Errorf("make leakcheck LEAK_SCOPE=lab after make clean and fullclean: exit %d", code)
	}
}

// seeReport renders index.html in headless Chromium: the parsed page shows
// the verdict, the phase table with the check's outcome, the failing test
// and the timeline; the screenshot (kept next to the report) shows the
// verdict in red and the timeline's bars in their colours.
func seeReport(ctx context.Context, t *testing.T, dir string, rec *pipeline.Record) {
	t.Helper()
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium (Debian's package) is needed to see the report: %v", err)
	}
	page := "file://" + filepath.Join(dir, "index.html")
	shot := filepath.Join(dir, "index.png")
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1600"}
	dom, err := exec.CommandContext(ctx, browser, append(flags, "--dump-dom", page)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	if out, err := exec.CommandContext(ctx, browser, append(flags, "--screenshot="+shot, page)...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	doc, err := html.Parse(strings.NewReader(string(dom)))
	if err != nil {
		t.Fatal(err)
	}
	if v := text(byID(doc, "verdict")); v != string(pipeline.VerdictTestsFailed) {
		t.Errorf("the page's verdict reads %q", v)
	}
	rows := map[string]string{}
	for _, tr := range all(byID(doc, "phases"), "tr") {
		cells := all(tr, "td")
		if len(cells) >= 2 {
			rows[text(cells[0])] = text(cells[1])
		}
	}
	if len(rows) != len(rec.Phases) || rows["check"] != string(pipeline.TestsFailed) || rows["leakcheck"] != string(pipeline.Passed) {
		t.Errorf("the phase table reads %v", rows)
	}
	if f := text(byID(doc, "failures")); !strings.Contains(f, failingTest) {
		t.Errorf("the failing tests table does not name %q: %q", failingTest, f)
	}
	if bars := all(byID(doc, "timeline"), "div"); len(bars) != len(rec.Phases) {
		t.Errorf("the timeline has %d bars for %d phases", len(bars), len(rec.Phases))
	}

	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	for what, c := range map[string]color.RGBA{
		"the red verdict":             {0xb3, 0x26, 0x1e, 0xff},
		"a green bar (passed phase)":  {0x7b, 0xc8, 0x8f, 0xff},
		"a yellow bar (tests failed)": {0xf2, 0xc9, 0x4c, 0xff},
	} {
		if n := count(img, c); n < 20 {
			t.Errorf("the screenshot shows %s in %d pixels", what, n)
		}
	}
	t.Logf("screenshot of the report: %s", shot)
}

func readRecord(t *testing.T, dir string) *pipeline.Record {
	t.Helper()
	var r pipeline.Record
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "run.json"))), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func focus(names ...string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = regexpQuote(n)
	}
	return strings.Join(q, "|")
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteRune('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) || strings.Contains(s, prefix) {
			return true
		}
	}
	return false
}

func byID(n *html.Node, id string) *html.Node {
	if n == nil {
		return nil
	}
	for _, a := range n.Attr {
		if a.Key == "id" && a.Val == id {
			return n
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f := byID(c, id); f != nil {
			return f
		}
	}
	return nil
}

func all(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.Data == tag {
				out = append(out, c)
			}
			walk(c)
		}
	}
	if n != nil {
		walk(n)
	}
	return out
}

func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// count is how many pixels of the screenshot have colour c (within a
// small tolerance for anti-aliasing).
func count(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r>>8, c.R) && near(g>>8, c.G) && near(bl>>8, c.B) {
				n++
			}
		}
	}
	return n
}

func near(v uint32, w uint8) bool { d := int(v) - int(w); return d >= -6 && d <= 6 }
