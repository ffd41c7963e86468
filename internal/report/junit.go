package report

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/jstemmer/go-junit-report/v2/junit"
)

// WriteJUnit writes the report as JUnit XML: one <testsuite> per suite, one
// <testcase> per case (skipped ones included, as test frameworks write
// them), failures with their message, location and full text, the run's
// properties and cluster on every suite. A run that ended without a verdict
// from its cases (timeout, interrupt, error) gets one extra errored case
// named after the run, so CI that reads only JUnit does not see a green run.
func WriteJUnit(w io.Writer, r *Report) error {
	var suites junit.Testsuites
	suites.Name = r.Name
	suites.Time = seconds(r.Duration)
	order := []string{}
	bySuite := map[string]*junit.Testsuite{}
	suiteOf := func(name string) *junit.Testsuite {
		if name == "" {
			name = r.Name
		}
		if s, ok := bySuite[name]; ok {
			return s
		}
		s := &junit.Testsuite{Name: name, Time: seconds(r.Duration)}
		if !r.Started.IsZero() {
			s.SetTimestamp(r.Started.UTC())
		}
		for _, p := range r.properties() {
			s.AddProperty(p.Name, clean(p.Value))
		}
		bySuite[name] = s
		order = append(order, name)
		return s
	}
	for _, c := range r.Cases {
		s := suiteOf(c.Suite)
		tc := junit.Testcase{Name: clean(c.Name), Classname: clean(classname(c, s.Name)), Time: seconds(c.Duration), Status: string(c.Status)}
		switch c.Status {
		case Skipped:
			tc.Skipped = &junit.Result{Message: clean(c.Message)}
		case Failed:
			tc.Failure = &junit.Result{Message: clean(failureMessage(c)), Type: "failed", Data: clean(c.Detail)}
		case Errored:
			tc.Error = &junit.Result{Message: clean(failureMessage(c)), Type: "error", Data: clean(c.Detail)}
		}
		if c.Output != "" && c.Status != Passed && c.Status != Skipped {
			tc.SystemOut = &junit.Output{Data: clean(c.Output)}
		}
		s.AddTestcase(tc)
	}
	if r.Outcome == OutcomeTimeout || r.Outcome == OutcomeInterrupted || r.Outcome == OutcomeError {
		s := suiteOf(r.Name)
		s.AddTestcase(junit.Testcase{
			Name: clean(r.Name), Classname: clean(r.Name), Time: seconds(r.Duration), Status: string(r.Outcome),
			Error: &junit.Result{Message: clean(r.Summary()), Type: string(r.Outcome), Data: clean(r.Reason)},
		})
	}
	for _, name := range order {
		suites.AddSuite(*bySuite[name])
	}
	if _, err := io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"); err != nil {
		return err
	}
	if err := suites.WriteXML(w); err != nil {
		return fmt.Errorf("write JUnit: %w", err)
	}
	return nil
}

func classname(c Case, suite string) string {
	if c.Suite != "" {
		return c.Suite
	}
	return suite
}

func failureMessage(c Case) string {
	msg := c.Message
	if c.Location != "" {
		msg += " [" + c.Location + "]"
	}
	return msg
}

func seconds(d interface{ Seconds() float64 }) string {
	return fmt.Sprintf("%.3f", d.Seconds())
}

// properties are the run's properties plus the cluster's facts.
func (r *Report) properties() []Property {
	props := append([]Property(nil), r.Properties...)
	if c := r.Cluster; c != nil {
		add := func(name, value string) {
			if value != "" {
				props = append(props, Property{Name: name, Value: value})
			}
		}
		add("cluster", c.Name)
		add("cluster.server", c.Server)
		add("cluster.version", c.Version)
		add("cluster.provider", c.Provider)
		names := make([]string, 0, len(c.Nodes))
		for _, n := range c.Nodes {
			names = append(names, n.Name)
		}
		add("cluster.nodes", strings.Join(names, ","))
	}
	props = append(props, Property{Name: "outcome", Value: string(r.Outcome)})
	return props
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

// clean removes terminal escapes and every character XML 1.0 cannot carry
// (test output holds both), and repairs invalid UTF-8.
func clean(s string) string {
	s = ansi.ReplaceAllString(s, "")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r >= 0xD800 && r <= 0xDFFF, r == 0xFFFE, r == 0xFFFF:
			return -1
		}
		return r
	}, s)
}
