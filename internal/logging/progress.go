package logging

import (
	"log/slog"
	"time"
)

// Step is one long step of a target, logged when it starts and ends with
// its elapsed time, so a CI log shows where the minutes went.
type Step struct {
	log   *slog.Logger
	name  string
	start time.Time
}

// StartStep logs the start of a named step.
func StartStep(log *slog.Logger, name string, attrs ...any) *Step {
	log.Info("▶ "+name, attrs...)
	return &Step{log: log, name: name, start: time.Now()}
}

// Elapsed is the time since the step started.
func (s *Step) Elapsed() time.Duration { return time.Since(s.start) }

// Progress logs an intermediate state of the step.
func (s *Step) Progress(msg string, attrs ...any) {
	s.log.Info("  "+s.name+": "+msg, append(attrs, "elapsed", Round(s.Elapsed()))...)
}

// Done logs the end of the step; with a non-nil error it logs that the
// step failed, but not the error itself: that is returned to the caller,
// and reported once, by whoever handles it (the run's last line).
func (s *Step) Done(err error, attrs ...any) {
	attrs = append(attrs, "elapsed", Round(s.Elapsed()))
	if err != nil {
		s.log.Error("✗ "+s.name+" failed", attrs...)
		return
	}
	s.log.Info("✓ "+s.name, attrs...)
}

// Round makes durations readable in logs: 1m23s, 4.2s, 120ms.
func Round(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}
