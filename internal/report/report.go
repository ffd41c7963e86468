// Package report is capilab's one format for the result of a test run: a
// list of cases (one per test), what was run against (a cluster, its version
// and nodes), how the run ended, and renderings for people and machines —
// JUnit XML for CI, summary.md, a self-contained report.html and JSON.
//
// It knows nothing about what produced the cases: the conformance check
// fills it from sonobuoy's results, a pipeline can fill it from its own
// phases. It imports no capability package.
package report

import (
	"fmt"
	"strings"
	"time"
)

// Status is the result of one case.
type Status string

// Case statuses.
const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped"
	Errored Status = "error" // the case could not run to a verdict (setup error, crash)
)

// Outcome is how a whole run ended.
type Outcome string

// Run outcomes. Only OutcomePassed is a success.
const (
	OutcomePassed      Outcome = "passed"      // every selected test passed and at least one ran
	OutcomeFailed      Outcome = "failed"      // a test failed or errored, or no test ran
	OutcomeTimeout     Outcome = "timeout"     // the run's time bound ran out before it finished
	OutcomeInterrupted Outcome = "interrupted" // cancelled (Ctrl-C) before it finished
	OutcomeError       Outcome = "error"       // the run itself broke (not a test verdict)
	OutcomeListed      Outcome = "listed"      // a dry run: the selected tests were listed, none ran
)

// Case is one test.
type Case struct {
	Suite    string        `json:"suite,omitempty"`
	Name     string        `json:"name"`
	Status   Status        `json:"status"`
	Duration time.Duration `json:"duration_ns"`
	// Setup marks suite-level setup or teardown nodes (a test framework's
	// before/after-suite hooks): they pass or fail like tests, but are not
	// tests, so "at least one test ran" ignores them.
	Setup bool `json:"setup,omitempty"`
	// Message is the failure or skip reason in one line.
	Message string `json:"message,omitempty"`
	// Location is where the failure was raised (file:line), when known.
	Location string `json:"location,omitempty"`
	// Detail is the full failure text.
	Detail string `json:"detail,omitempty"`
	// Output is what the case logged; kept for failed cases.
	Output string `json:"output,omitempty"`
}

// Cluster is what the run ran against.
type Cluster struct {
	Name     string `json:"name,omitempty"`
	Server   string `json:"server,omitempty"`
	Version  string `json:"version,omitempty"`
	Provider string `json:"provider,omitempty"` // kind, openstack, ... (from the nodes' provider IDs)
	Nodes    []Node `json:"nodes,omitempty"`
}

// Node is one node of the cluster.
type Node struct {
	Name             string   `json:"name"`
	Roles            []string `json:"roles,omitempty"`
	Ready            bool     `json:"ready"`
	KubeletVersion   string   `json:"kubelet_version,omitempty"`
	OSImage          string   `json:"os_image,omitempty"`
	ContainerRuntime string   `json:"container_runtime,omitempty"`
	InternalIP       string   `json:"internal_ip,omitempty"`
}

// Property is a named setting of the run (mode, focus, images, ...).
type Property struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Progress is the last progress a run reported: what is known of a run
// that was cut short.
type Progress struct {
	Total     int      `json:"total"`     // tests selected
	Completed int      `json:"completed"` // tests that ended without failing so far
	Failed    int      `json:"failed"`    // tests that failed so far
	Failures  []string `json:"failures,omitempty"`
}

// Done is how many selected tests have finished.
func (p Progress) Done() int { return p.Completed + p.Failed }

// Artifact is a file the run left for people to read.
type Artifact struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// Report is one run.
type Report struct {
	// Name says what ran, e.g. "check quick".
	Name     string        `json:"name"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	// Timeout is the run's bound, when it had one.
	Timeout time.Duration `json:"timeout_ns,omitempty"`
	Outcome Outcome       `json:"outcome"`
	// Reason explains an outcome the cases do not (a timeout, an error, no
	// test ran); empty when the cases say it all.
	Reason     string     `json:"reason,omitempty"`
	Cluster    *Cluster   `json:"cluster,omitempty"`
	Properties []Property `json:"properties,omitempty"`
	Cases      []Case     `json:"cases"`
	// Progress is the last progress seen while the run was going.
	Progress *Progress `json:"progress,omitempty"`
	// Notes are observations worth a reader's attention (an image that could
	// not be pulled, a retried retrieval, ...).
	Notes     []string   `json:"notes,omitempty"`
	Artifacts []Artifact `json:"artifacts,omitempty"`
}

// Counts are case totals.
type Counts struct {
	Total   int `json:"total"`
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	Errors  int `json:"errors"`
}

// Ran is how many cases ran to a verdict (not skipped).
func (c Counts) Ran() int { return c.Passed + c.Failed + c.Errors }

// Bad is how many cases failed or errored.
func (c Counts) Bad() int { return c.Failed + c.Errors }

func (c *Counts) add(s Status) {
	c.Total++
	switch s {
	case Passed:
		c.Passed++
	case Failed:
		c.Failed++
	case Skipped:
		c.Skipped++
	case Errored:
		c.Errors++
	}
}

// Counts counts the tests (setup nodes left out).
func (r *Report) Counts() Counts {
	var c Counts
	for _, k := range r.Cases {
		if !k.Setup {
			c.add(k.Status)
		}
	}
	return c
}

// AllCounts counts every case, setup nodes included (what tools that read
// the raw JUnit count).
func (r *Report) AllCounts() Counts {
	var c Counts
	for _, k := range r.Cases {
		c.add(k.Status)
	}
	return c
}

// Bad lists the cases that failed or errored, setup nodes included, in
// report order.
func (r *Report) Bad() []Case {
	var out []Case
	for _, k := range r.Cases {
		if k.Status == Failed || k.Status == Errored {
			out = append(out, k)
		}
	}
	return out
}

// Decide sets the outcome from the cases unless the run already ended
// otherwise (timeout, interrupt, error): passed only when no case failed or
// errored and at least one test passed.
func (r *Report) Decide() {
	switch r.Outcome {
	case OutcomeTimeout, OutcomeInterrupted, OutcomeError:
		return
	case OutcomeListed:
		if r.AllCounts().Bad() > 0 {
			r.Outcome = OutcomeFailed
		}
		return
	}
	c, all := r.Counts(), r.AllCounts()
	switch {
	case all.Bad() > 0:
		r.Outcome = OutcomeFailed
	case c.Passed == 0:
		r.Outcome = OutcomeFailed
		if r.Reason == "" {
			r.Reason = "no test ran: the selection matched no test"
		}
	default:
		r.Outcome = OutcomePassed
	}
}

// OK reports whether the run is a success: every selected test passed, or
// a dry run listed them.
func (r *Report) OK() bool { return r.Outcome == OutcomePassed || r.Outcome == OutcomeListed }

// Property returns the value of a named property ("" when not set).
func (r *Report) Property(name string) string {
	for _, p := range r.Properties {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// Summary is the one line that ends a run: outcome, counts, duration. It
// names the failed count for failures and says TIMEOUT for a timeout, so
// the last line of a log tells what happened.
func (r *Report) Summary() string {
	c, all := r.Counts(), r.AllCounts()
	d := round(r.Duration)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", r.Name)
	switch r.Outcome {
	case OutcomePassed:
		fmt.Fprintf(&b, "PASSED: %d of %d tests passed", c.Passed, c.Ran())
	case OutcomeFailed:
		if n := all.Bad(); n > 0 {
			fmt.Fprintf(&b, "FAILED: %d %s failed (%d passed)", n, plural(n, "test", "tests"), c.Passed)
		} else {
			fmt.Fprintf(&b, "FAILED: %s", r.Reason)
		}
	case OutcomeListed:
		fmt.Fprintf(&b, "LISTED (dry run): %d tests selected, none run", c.Ran())
	case OutcomeTimeout, OutcomeInterrupted:
		word := "TIMEOUT"
		if r.Outcome == OutcomeInterrupted {
			word = "INTERRUPTED"
		}
		fmt.Fprintf(&b, "%s after %s", word, d)
		if r.Outcome == OutcomeTimeout && r.Timeout > 0 {
			fmt.Fprintf(&b, " (bound %s)", round(r.Timeout))
		}
		if p := r.Progress; p != nil && p.Total > 0 {
			fmt.Fprintf(&b, ": %d of %d tests done, %d failed so far", p.Done(), p.Total, p.Failed)
		} else if c.Total > 0 {
			fmt.Fprintf(&b, ": %d tests done, %d failed", c.Ran(), all.Bad())
		}
	default:
		fmt.Fprintf(&b, "ERROR: %s", r.Reason)
	}
	if r.Outcome == OutcomePassed || r.Outcome == OutcomeFailed || r.Outcome == OutcomeListed {
		if c.Skipped > 0 {
			fmt.Fprintf(&b, ", %d skipped", c.Skipped)
		}
		fmt.Fprintf(&b, " in %s", d)
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func round(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
