// Package wait has capilab's one way to wait: a named, bounded poll that
// logs what it waits for while it waits and says so when it gives up.
// Nothing in capilab waits without a bound.
package wait

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/capilab/capilab/internal/logging"
)

// Spec describes one wait.
type Spec struct {
	// What completes "waiting for ...", e.g. "image ubuntu-capi-image-v1.2.3 (3f2a…) to become active".
	What    string
	Timeout time.Duration // required
	// Interval is the longest pause between polls; default 2s. Polling
	// starts at an eighth of it (at least 100ms) and doubles up to it, so a
	// condition that is met quickly is seen quickly while a slow one costs
	// few calls.
	Interval time.Duration
	// ReportEvery is how often a progress line is logged; default 15s, 0 keeps the default.
	ReportEvery time.Duration
}

// Condition polls once. It returns done when the wait is over, a short status
// for progress lines and timeout errors, and an error to stop waiting at once.
type Condition func(ctx context.Context) (done bool, status string, err error)

// TimeoutError says what was awaited, for how long, and the last status seen.
type TimeoutError struct {
	What       string
	Timeout    time.Duration
	LastStatus string
}

func (e *TimeoutError) Error() string {
	msg := fmt.Sprintf("timed out after %s waiting for %s", e.Timeout, e.What)
	if e.LastStatus != "" {
		msg += " (last status: " + e.LastStatus + ")"
	}
	return msg
}

// For polls cond until it is done, fails, the timeout passes or ctx ends.
func For(ctx context.Context, log *slog.Logger, spec Spec, cond Condition) error {
	if spec.Timeout <= 0 {
		return fmt.Errorf("waiting for %s: no timeout given (every wait must be bounded)", spec.What)
	}
	if spec.Interval <= 0 {
		spec.Interval = 2 * time.Second
	}
	if spec.ReportEvery <= 0 {
		spec.ReportEvery = 15 * time.Second
	}
	start := time.Now()
	deadline := start.Add(spec.Timeout)
	lastReport := start
	interval := firstInterval(spec.Interval)
	var status string
	for {
		// The condition gets the wait's deadline too: a call that hangs
		// (an API that never answers) ends with the wait's budget.
		cctx, cancel := context.WithDeadline(ctx, deadline)
		done, st, err := cond(cctx)
		// Cut by the budget (not by the caller): the check failed, or says
		// so in its status.
		cut := cctx.Err() != nil && ctx.Err() == nil && (err != nil || strings.Contains(st, context.DeadlineExceeded.Error()))
		cancel()
		if done && err == nil {
			return nil
		}
		if cut {
			// What the cut check said is about the cut, not the state
			// waited for: the status before it is what the user needs.
			last := "the last check did not finish within the budget"
			if status != "" {
				last = status + "; " + last
			}
			return &TimeoutError{What: spec.What, Timeout: spec.Timeout, LastStatus: last}
		}
		if st != "" {
			status = st
		}
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", spec.What, err)
		}
		if done {
			return nil
		}
		now := time.Now()
		if now.After(deadline) {
			return &TimeoutError{What: spec.What, Timeout: spec.Timeout, LastStatus: status}
		}
		if now.Sub(lastReport) >= spec.ReportEvery {
			log.Info("waiting for "+spec.What, "status", status, "elapsed", logging.Round(now.Sub(start)), "timeout", spec.Timeout)
			lastReport = now
		}
		sleep := min(interval, time.Until(deadline))
		if sleep < 0 {
			sleep = 0
		}
		interval = nextInterval(interval, spec.Interval)
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for %s: %w", spec.What, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// firstInterval and nextInterval are the polling schedule: an eighth of
// the interval (at least 100ms), doubling up to the interval.
func firstInterval(limit time.Duration) time.Duration {
	return min(limit, max(limit/8, 100*time.Millisecond))
}

func nextInterval(cur, limit time.Duration) time.Duration { return min(2*cur, limit) }

// IsTimeout reports whether err is a wait that ran out of time.
func IsTimeout(err error) bool {
	var te *TimeoutError
	return errors.As(err, &te)
}

// Sleep pauses for d or until ctx ends, for backoff between retries (a
// pause of known length, not a wait for a state: use For for that).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
