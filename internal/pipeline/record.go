package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/report"
)

// Record is one run of a pipeline, as run.json keeps it.
type Record struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Verdict  Verdict   `json:"verdict"`
	ExitCode int       `json:"exitCode"`
	Phases   []*Phase  `json:"phases"`
	Clusters []string  `json:"clusters,omitempty"`
	// Versions pinned for the run, effective settings (secrets redacted) and
	// facts about the host.
	Versions map[string]string `json:"versions,omitempty"`
	Settings map[string]string `json:"settings,omitempty"`
	Host     map[string]string `json:"host,omitempty"`
	// Comparison with the previous run in the same artifacts root.
	Comparison *Comparison `json:"comparison,omitempty"`
}

// RunID is the directory name of a run started at t.
func RunID(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// Comparison is what changed since the previous run.
type Comparison struct {
	PreviousID      string        `json:"previousID"`
	PreviousVerdict Verdict       `json:"previousVerdict"`
	Durations       []PhaseChange `json:"durations"`
	NewlyFailing    []string      `json:"newlyFailing,omitempty"`
	Fixed           []string      `json:"fixed,omitempty"`
}

// PhaseChange is one phase's duration now and before.
type PhaseChange struct {
	Name     string        `json:"name"`
	Previous time.Duration `json:"previous_ns"`
	Current  time.Duration `json:"current_ns"`
}

// failing is the set of failing cases ("suite: name").
func (r *Record) failing() map[string]bool {
	out := map[string]bool{}
	for _, p := range r.Phases {
		for _, c := range p.Cases {
			if c.Status == report.Failed || c.Status == report.Errored {
				out[c.Suite+": "+c.Name] = true
			}
		}
	}
	return out
}

// Compare diffs a run against the previous one.
func Compare(prev, cur *Record) *Comparison {
	if prev == nil {
		return nil
	}
	c := &Comparison{PreviousID: prev.ID, PreviousVerdict: prev.Verdict}
	before := map[string]time.Duration{}
	for _, p := range prev.Phases {
		before[p.Name] = p.Duration()
	}
	for _, p := range cur.Phases {
		c.Durations = append(c.Durations, PhaseChange{Name: p.Name, Previous: before[p.Name], Current: p.Duration()})
	}
	pf, cf := prev.failing(), cur.failing()
	for k := range cf {
		if !pf[k] {
			c.NewlyFailing = append(c.NewlyFailing, k)
		}
	}
	for k := range pf {
		if !cf[k] {
			c.Fixed = append(c.Fixed, k)
		}
	}
	sort.Strings(c.NewlyFailing)
	sort.Strings(c.Fixed)
	return c
}

// Previous reads the newest run.json under root older than id; nil when
// there is none.
func Previous(root, id string) (*Record, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && e.Name() < id {
			ids = append(ids, e.Name())
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	for _, prev := range ids {
		data, err := os.ReadFile(filepath.Join(root, prev, "run.json"))
		if err != nil {
			continue // a run that did not finish writing
		}
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			continue
		}
		return &r, nil
	}
	return nil, nil
}

// Report is the run as a test report: a suite per phase, its cases, and
// one case per phase for its own outcome, so CI that reads only JUnit sees
// every phase.
func (r *Record) Report() *report.Report {
	rep := &report.Report{Name: r.Name, Started: r.Start, Duration: r.End.Sub(r.Start), Outcome: report.OutcomePassed}
	switch r.Verdict {
	case VerdictPassed:
	case VerdictInterrupted:
		rep.Outcome = report.OutcomeInterrupted
	case VerdictInfra:
		rep.Outcome = report.OutcomeError
	default:
		rep.Outcome = report.OutcomeFailed
	}
	rep.Reason = string(r.Verdict)
	for _, k := range sortedKeys(r.Versions) {
		rep.Properties = append(rep.Properties, report.Property{Name: "version " + k, Value: r.Versions[k]})
	}
	for _, p := range r.Phases {
		pc := report.Case{Suite: p.Name, Name: "phase " + p.Name, Duration: p.Duration(), Setup: true}
		switch p.Outcome {
		case Passed, TestsFailed:
			pc.Status = report.Passed
		case Skipped:
			pc.Status, pc.Message = report.Skipped, p.Error
		case Leaked:
			pc.Status, pc.Message = report.Failed, p.Error
			var lines []string
			for _, l := range p.Leaks {
				lines = append(lines, fmt.Sprintf("%s %s (%s) of cluster %s: %s", l.Type, l.Name, l.ID, l.Cluster, l.Reason))
			}
			pc.Detail = strings.Join(lines, "\n")
		default:
			pc.Status, pc.Message = report.Errored, string(p.Outcome)+": "+p.Error
		}
		rep.Cases = append(rep.Cases, pc)
		rep.Cases = append(rep.Cases, p.Cases...)
		rep.Artifacts = append(rep.Artifacts, p.Artifacts...)
	}
	return rep
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Write writes run.json, junit.xml, summary.md and index.html into dir.
func (r *Record) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "run.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	for name, write := range map[string]func(*os.File) error{
		"junit.xml":  func(f *os.File) error { return report.WriteJUnit(f, r.Report()) },
		"summary.md": func(f *os.File) error { return WriteMarkdown(f, r) },
		"index.html": func(f *os.File) error { return WriteHTML(f, r) },
	} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := write(f); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
