// Package pipeline runs a list of named, bounded phases — like kind's
// create actions — and records what each did, for a report a person reads
// the next morning. Cleanup phases are marked Always: they run after a
// failure, a timeout and an interruption (Ctrl-C) too, each on its own
// budget, so a red night never leaves clusters behind.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/capilab/capilab/internal/report"
)

// Outcome of a phase.
type Outcome string

// Phase outcomes.
const (
	Passed      Outcome = "passed"
	Failed      Outcome = "failed"
	TestsFailed Outcome = "tests-failed" // the phase ran, and tests it ran failed
	Leaked      Outcome = "leaked"       // owned resources were left
	Timeout     Outcome = "timeout"
	Interrupted Outcome = "interrupted"
	Skipped     Outcome = "skipped" // not run: an earlier phase failed or the run was interrupted
)

// Step is one phase to run.
type Step struct {
	Name string
	// Always: run even after an earlier failure or an interruption.
	Always bool
	// Timeout bounds the phase (required).
	Timeout time.Duration
	Run     func(ctx context.Context, p *Phase) error
}

// ErrTestsFailed marks a phase whose tests failed (the infrastructure worked).
var ErrTestsFailed = errors.New("tests failed")

// ErrLeaked marks a phase that found owned resources left.
var ErrLeaked = errors.New("owned resources are left")

// Phase is a step's record, filled while it runs.
type Phase struct {
	Name    string        `json:"name"`
	Start   time.Time     `json:"start"`
	End     time.Time     `json:"end"`
	Outcome Outcome       `json:"outcome"`
	Error   string        `json:"error,omitempty"`
	Cases   []report.Case `json:"cases,omitempty"`
	// Leaks are owned resources left, with their ownership reason.
	Leaks     []Leak            `json:"leaks,omitempty"`
	Artifacts []report.Artifact `json:"artifacts,omitempty"`
	Notes     []string          `json:"notes,omitempty"`

	mu sync.Mutex
}

// Leak is one owned resource a phase found left.
type Leak struct {
	Type, Name, ID, Cluster, Reason string
}

// Duration is how long the phase ran.
func (p *Phase) Duration() time.Duration {
	if p.End.IsZero() || p.Start.IsZero() {
		return 0
	}
	return p.End.Sub(p.Start)
}

// AddCase records one case (a cluster's create, a test); safe for
// concurrent use.
func (p *Phase) AddCase(c report.Case) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.Suite == "" {
		c.Suite = p.Name
	}
	p.Cases = append(p.Cases, c)
}

// AddArtifact records a file of the phase.
func (p *Phase) AddArtifact(name, path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Artifacts = append(p.Artifacts, report.Artifact{Name: name, Path: path})
}

// AddLeak records an owned resource left.
func (p *Phase) AddLeak(l Leak) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Leaks = append(p.Leaks, l)
}

// Note records an observation.
func (p *Phase) Note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Notes = append(p.Notes, fmt.Sprintf(format, args...))
}

// Execute runs the steps in order. A step that fails marks the run; later
// steps that are not Always are skipped, Always steps still run. When ctx
// ends (Ctrl-C), the running step stops, the rest that are not Always are
// skipped, and Always steps run on a context of their own, each bounded by
// its Timeout.
func Execute(ctx context.Context, log *slog.Logger, steps []Step) []*Phase {
	var phases []*Phase
	broken := false
	for _, s := range steps {
		p := &Phase{Name: s.Name}
		phases = append(phases, p)
		interrupted := ctx.Err() != nil
		if (broken || interrupted) && !s.Always {
			p.Outcome = Skipped
			if interrupted {
				p.Error = "the run was interrupted"
			} else {
				p.Error = "an earlier phase failed"
			}
			log.Info("phase skipped", "phase", s.Name, "why", p.Error)
			continue
		}
		parent := ctx
		if s.Always {
			parent = context.WithoutCancel(ctx)
		}
		p.Outcome = runStep(parent, log, s, p)
		if p.Outcome != Passed && p.Outcome != TestsFailed && p.Outcome != Leaked {
			broken = true
		}
	}
	return phases
}

func runStep(parent context.Context, log *slog.Logger, s Step, p *Phase) Outcome {
	if s.Timeout <= 0 {
		p.Error = "no timeout given (every phase must be bounded)"
		return Failed
	}
	ctx, cancel := context.WithTimeoutCause(parent, s.Timeout, fmt.Errorf("phase %s ran out of its %s", s.Name, s.Timeout))
	defer cancel()
	p.Start = time.Now()
	log.Info("phase started", "phase", s.Name, "timeout", s.Timeout)
	err := s.Run(ctx, p)
	p.End = time.Now()
	outcome := Passed
	switch {
	case err == nil:
	case errors.Is(err, ErrTestsFailed):
		outcome = TestsFailed
	case errors.Is(err, ErrLeaked):
		outcome = Leaked
	case ctx.Err() != nil && parent.Err() == nil:
		outcome = Timeout
	case parent.Err() != nil:
		outcome = Interrupted
	default:
		outcome = Failed
	}
	if err != nil {
		p.Error = err.Error()
	}
	log.Info("phase ended", "phase", s.Name, "outcome", outcome, "elapsed", p.Duration().Round(time.Second))
	return outcome
}

// Verdict is how a whole run ended, worst first: an infrastructure
// failure (a phase failed, timed out or was interrupted), leaks, failed
// tests, or passed.
type Verdict string

// Verdicts.
const (
	VerdictPassed      Verdict = "passed"
	VerdictTestsFailed Verdict = "tests failed"
	VerdictLeaks       Verdict = "leaks"
	VerdictInfra       Verdict = "infrastructure failure"
	VerdictInterrupted Verdict = "interrupted"
)

// VerdictOf summarises phases.
func VerdictOf(phases []*Phase) Verdict {
	v := VerdictPassed
	rank := map[Verdict]int{VerdictPassed: 0, VerdictTestsFailed: 1, VerdictLeaks: 2, VerdictInfra: 3, VerdictInterrupted: 4}
	raise := func(to Verdict) {
		if rank[to] > rank[v] {
			v = to
		}
	}
	for _, p := range phases {
		switch p.Outcome {
		case TestsFailed:
			raise(VerdictTestsFailed)
		case Leaked:
			raise(VerdictLeaks)
		case Failed, Timeout:
			raise(VerdictInfra)
		case Interrupted:
			raise(VerdictInterrupted)
		}
	}
	return v
}
