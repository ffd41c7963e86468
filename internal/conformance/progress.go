package conformance

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/capilab/capilab/internal/report"
)

// ginkgoProgress follows the e2e container's output (Ginkgo, verbose) and
// counts what sonobuoy's progress reports no longer say: since Kubernetes
// 1.29 the e2e binary posts its per-test progress to sonobuoy only at the
// start and the end of the suite, so "tests done" would read 0 for the
// whole run. Ginkgo's verbose output names each test when it starts and
// ends each one with a verdict line:
//
//	------------------------------
//	[sig-node] Pods should be submitted and removed [Conformance] [NodeConformance] [sig-node, NodeConformance, Conformance]
//	…
//	• [3.701 seconds]                       (passed)
//	• [FAILED] [120.292 seconds]            (failed; also TIMEDOUT, PANICKED, INTERRUPTED, ABORTED)
//	S [SKIPPED] [0.001 seconds]             (skipped while running)
//
// It is an io.Writer: the log stream is copied through it.
type ginkgoProgress struct {
	mu       sync.Mutex
	partial  []byte
	total    int
	passed   int
	failed   int
	skipped  int
	failures []string
	current  string
	afterSep bool
	seen     bool // "Will run" was read
}

var (
	willRunRE  = regexp.MustCompile(`^Will run (\d+) of \d+ specs`)
	passedRE   = regexp.MustCompile(`^• \[\d+(\.\d+)? seconds\]`)
	failedRE   = regexp.MustCompile(`^• \[(FAILED|TIMEDOUT|PANICKED|INTERRUPTED|ABORTED)\]`)
	skippedRE  = regexp.MustCompile(`^S \[SKIPPED\]`)
	suiteBadRE = regexp.MustCompile(`^\[(\w*Suite|DeferCleanup \(Suite\))\] \[(FAILED|TIMEDOUT|PANICKED|INTERRUPTED|ABORTED)\]`)
	labelsRE   = regexp.MustCompile(` \[[^\[\]]*, [^\[\]]*\]$`)
)

func (g *ginkgoProgress) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.partial = append(g.partial, p...)
	for {
		i := indexByte(g.partial, '\n')
		if i < 0 {
			break
		}
		g.line(strings.TrimRight(string(g.partial[:i]), "\r"))
		g.partial = g.partial[i+1:]
	}
	if len(g.partial) > 1<<20 { // a line without end (Ginkgo's dots): keep no more than this
		g.partial = g.partial[len(g.partial)-4096:]
	}
	return len(p), nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func (g *ginkgoProgress) line(l string) {
	// Ginkgo prints an S per spec it skips, without line breaks; a
	// separator or verdict can follow them on the same line.
	if t := strings.TrimLeft(l, "S"); t != l {
		if strings.HasPrefix(t, " [SKIPPED]") {
			g.skipped++
			return
		}
		l = t
	}
	switch {
	case strings.HasPrefix(l, "------------------------------"):
		g.afterSep = true
		return
	case g.afterSep && l != "" && !strings.HasPrefix(l, " "):
		g.afterSep = false
		g.current = l
		return
	}
	if m := willRunRE.FindStringSubmatch(l); m != nil {
		g.total, _ = strconv.Atoi(m[1])
		g.seen = true
		return
	}
	switch {
	case passedRE.MatchString(l):
		g.passed++
	case failedRE.MatchString(l):
		g.failed++
		g.failures = append(g.failures, testName(g.current))
	case skippedRE.MatchString(l):
		g.skipped++
	case suiteBadRE.MatchString(l):
		g.failures = append(g.failures, strings.SplitN(l, "]", 2)[0]+"] (suite setup or teardown)")
	}
}

// testName drops the label list Ginkgo appends to a test's text.
func testName(header string) string {
	if header == "" {
		return "unknown test"
	}
	return labelsRE.ReplaceAllString(header, "")
}

// snapshot is the progress so far; ok is false before the output said how
// many tests will run.
func (g *ginkgoProgress) snapshot() (p report.Progress, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	// tests skipped while running (a provider check) count as done
	return report.Progress{Total: g.total, Completed: g.passed + g.skipped, Failed: g.failed, Failures: append([]string(nil), g.failures...)}, g.seen
}
