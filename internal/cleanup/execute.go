package cleanup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/capilab/capilab/internal/logging"
	"github.com/capilab/capilab/internal/wait"
)

// BlockedError is a deletion the cloud refused because something still uses
// the resource (409, "volume in use"). The engine retries it while the
// blockers go away, until the step's timeout.
type BlockedError struct{ Err error }

func (e *BlockedError) Error() string { return "in use: " + e.Err.Error() }
func (e *BlockedError) Unwrap() error { return e.Err }

// ExecOptions tune execution.
type ExecOptions struct {
	Parallelism   int           // deletions at a time; default 8
	DeleteTimeout time.Duration // bound on retrying a refused deletion, and again on waiting until an accepted one is gone; default 10m
	PollInterval  time.Duration // first retry/poll interval; default 2s
	ProgressEvery time.Duration // progress line interval; default 10s
	Log           *slog.Logger
}

func (o ExecOptions) withDefaults() ExecOptions {
	if o.Parallelism <= 0 {
		o.Parallelism = 8
	}
	if o.DeleteTimeout <= 0 {
		o.DeleteTimeout = 10 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = logging.Discard()
	}
	return o
}

// Outcome of one step.
type Outcome string

const (
	OutcomeDeleted     Outcome = "deleted"
	OutcomeFailed      Outcome = "failed"
	OutcomeBlocked     Outcome = "not attempted" // a step it depends on failed
	OutcomeInterrupted Outcome = "interrupted"   // cancelled before it finished
)

// StepResult is what happened to one step.
type StepResult struct {
	Type    Type    `json:"type"`
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Cluster string  `json:"cluster"`
	Outcome Outcome `json:"outcome"`
	// Accepted: the cloud accepted the deletion (an asynchronous one may
	// still have been running when the step was interrupted).
	Accepted bool `json:"accepted,omitempty"`
	// CutOff: the interruption came while the deletion call was under way;
	// the cloud may or may not have applied it.
	CutOff   bool    `json:"cut_off,omitempty"`
	Error    string  `json:"error,omitempty"`
	Attempts int     `json:"attempts"`
	Seconds  float64 `json:"seconds"`
}

// ExecResult is what an execution did.
type ExecResult struct {
	Steps []StepResult `json:"steps"`
	// BlockedRetries counts deletions repeated because the resource was
	// still in use.
	BlockedRetries int64         `json:"blocked_retries"`
	Elapsed        time.Duration `json:"-"`
}

// Interruption says what is known of the steps an interruption cut short.
type Interruption struct {
	Deleted  int // confirmed gone
	Accepted int // accepted by the cloud, still being deleted when interrupted
	CutOff   int // deletion call under way when interrupted: it may or may not have been applied
	NotRun   int // never started
	Failed   int // failed for good before the interruption
}

func (i Interruption) String() string {
	s := fmt.Sprintf("%d deleted", i.Deleted)
	if i.Accepted > 0 {
		s += fmt.Sprintf(", %d accepted by the cloud and still being deleted", i.Accepted)
	}
	if i.CutOff > 0 {
		s += fmt.Sprintf(", %d cut off during the deletion call (may have been applied)", i.CutOff)
	}
	if i.Failed > 0 {
		s += fmt.Sprintf(", %d failed", i.Failed)
	}
	if i.NotRun > 0 {
		s += fmt.Sprintf(", %d not started", i.NotRun)
	}
	return s
}

// Interrupted counts the steps by what is known of them.
func (r *ExecResult) Interrupted() Interruption {
	var i Interruption
	for _, s := range r.Steps {
		switch {
		case s.Outcome == OutcomeDeleted:
			i.Deleted++
		case s.Outcome == OutcomeInterrupted && s.Accepted:
			i.Accepted++
		case s.Outcome == OutcomeInterrupted && s.CutOff:
			i.CutOff++
		case s.Outcome == OutcomeInterrupted, s.Outcome == OutcomeBlocked:
			i.NotRun++
		default:
			i.Failed++
		}
	}
	return i
}

// Failed reports whether any step did not get deleted.
func (r *ExecResult) Failed() int {
	n := 0
	for _, s := range r.Steps {
		if s.Outcome != OutcomeDeleted {
			n++
		}
	}
	return n
}

type node struct {
	step       *Step
	pending    int
	dependents []*node
	result     StepResult
	done       bool
}

// Execute deletes the plan's steps: a step starts once every step it waits
// for has been deleted, at most Parallelism at a time. A failed step marks
// the steps that wait for it "not attempted". Cancelling ctx stops
// dispatching, lets running steps end, and marks the rest "interrupted": a
// later run rediscovers what is left and finishes it.
func Execute(ctx context.Context, b Backend, plan *Plan, opts ExecOptions) *ExecResult {
	opts = opts.withDefaults()
	start := time.Now()
	nodes := make(map[string]*node, len(plan.Steps))
	order := make([]*node, 0, len(plan.Steps))
	for _, s := range plan.Steps {
		n := &node{step: s, result: StepResult{Type: s.Type, ID: s.ID, Name: s.Name, Cluster: s.Cluster}}
		nodes[s.Key()] = n
		order = append(order, n)
	}
	for _, n := range order {
		for _, k := range n.step.After {
			if dep, ok := nodes[k]; ok {
				n.pending++
				dep.dependents = append(dep.dependents, n)
			}
		}
	}

	res := &ExecResult{}
	var blockedRetries atomic.Int64
	ready := make(chan *node, len(order))
	finished := make(chan *node, len(order))
	// Workers make the deletion calls: at most Parallelism at a time. Once
	// an asynchronous deletion is accepted, waiting for it to finish (a
	// poll every few seconds) moves to a goroutine of its own, so the slow
	// deletions of load balancers and servers do not hold the pool.
	var workers, waiters sync.WaitGroup
	for range opts.Parallelism {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for n := range ready {
				if ctx.Err() != nil {
					// Dispatched before the interruption, not started:
					// no call is made with a cancelled context.
					n.result.Outcome, n.result.Error = OutcomeInterrupted, "cancelled before it started"
					finished <- n
					continue
				}
				start := time.Now()
				if !deleteStep(ctx, b, n, opts, &blockedRetries) || !b.Async(n.step.Type) {
					n.result.Seconds = time.Since(start).Seconds()
					finished <- n
					continue
				}
				waiters.Add(1)
				go func() {
					defer waiters.Done()
					waitGone(ctx, b, n, opts)
					n.result.Seconds = time.Since(start).Seconds()
					finished <- n
				}()
			}
		}()
	}

	remaining := len(order)
	running := 0
	dispatch := func(n *node) {
		if ctx.Err() != nil {
			n.result.Outcome, n.result.Error, n.done = OutcomeInterrupted, "cancelled before it started", true
			remaining--
			return
		}
		running++
		ready <- n
	}
	var block func(n *node, cause *node)
	block = func(n *node, cause *node) {
		if n.done {
			return
		}
		n.done = true
		remaining--
		n.result.Outcome = OutcomeBlocked
		n.result.Error = "waits for " + cause.step.Label() + ", which was not deleted"
		for _, d := range n.dependents {
			block(d, cause)
		}
	}
	for _, n := range order {
		if n.pending == 0 {
			dispatch(n)
		}
	}
	ticker := time.NewTicker(opts.ProgressEvery)
	defer ticker.Stop()
	failed := 0
	for remaining > 0 {
		if running == 0 {
			// Nothing running and nothing dispatchable: only possible after
			// cancellation; mark the rest interrupted.
			for _, n := range order {
				if !n.done {
					n.done, n.result.Outcome, n.result.Error = true, OutcomeInterrupted, "cancelled before it started"
					remaining--
				}
			}
			break
		}
		select {
		case n := <-finished:
			running--
			remaining--
			n.done = true
			if n.result.Outcome != OutcomeDeleted {
				failed++
				for _, d := range n.dependents {
					block(d, n)
				}
				continue
			}
			opts.Log.Info("deleted "+n.step.Label(), "cluster", clusterLabel(n.step.Cluster), "took", logging.Round(time.Duration(n.result.Seconds*float64(time.Second))))
			for _, d := range n.dependents {
				if d.done {
					continue
				}
				if d.pending--; d.pending == 0 {
					dispatch(d)
				}
			}
		case <-ticker.C:
			opts.Log.Info("fullclean progress", "done", len(order)-remaining, "of", len(order), "running", running, "failed", failed, "elapsed", logging.Round(time.Since(start)))
		}
	}
	close(ready)
	workers.Wait()
	waiters.Wait()
	for _, n := range order {
		res.Steps = append(res.Steps, n.result)
	}
	res.BlockedRetries = blockedRetries.Load()
	res.Elapsed = time.Since(start)
	return res
}

func clusterLabel(c string) string {
	if c == LabOwner {
		return "(lab)"
	}
	return c
}

// deleteStep makes the deletion call, retrying while the resource is in
// use, bounded by DeleteTimeout. It reports whether the cloud accepted it;
// otherwise the step's result says why not.
func deleteStep(ctx context.Context, b Backend, n *node, opts ExecOptions, blockedRetries *atomic.Int64) bool {
	s := &n.step.Resource
	var last error
	err := wait.For(ctx, opts.Log, wait.Spec{What: "deletion of " + s.Label() + " to be accepted", Timeout: opts.DeleteTimeout, Interval: opts.PollInterval, ReportEvery: time.Minute},
		func(ctx context.Context) (bool, string, error) {
			if ctx.Err() != nil {
				return false, "", context.Cause(ctx) // no call starts after the interruption
			}
			n.result.Attempts++
			if n.result.Attempts > 1 {
				blockedRetries.Add(1)
			}
			err := b.Delete(ctx, s)
			if err != nil && ctx.Err() != nil {
				n.result.CutOff = true
			}
			var blocked *BlockedError
			if errors.As(err, &blocked) {
				last = err
				return false, err.Error(), nil
			}
			return err == nil, "", err
		})
	if err != nil {
		if last != nil && wait.IsTimeout(err) {
			err = fmt.Errorf("%s: still in use after %s: %w", s.Label(), opts.DeleteTimeout, last)
		}
		fail(ctx, n, err)
		return false
	}
	n.result.Outcome, n.result.Accepted = OutcomeDeleted, true
	return true
}

// waitGone waits, bounded by DeleteTimeout, until an accepted asynchronous
// deletion has finished.
func waitGone(ctx context.Context, b Backend, n *node, opts ExecOptions) {
	s := &n.step.Resource
	err := wait.For(ctx, opts.Log, wait.Spec{What: s.Label() + " to be gone", Timeout: opts.DeleteTimeout, Interval: opts.PollInterval, ReportEvery: time.Minute},
		func(ctx context.Context) (bool, string, error) {
			exists, status, err := b.Exists(ctx, s)
			return !exists, status, err
		})
	if err != nil {
		fail(ctx, n, err)
	}
}

func fail(ctx context.Context, n *node, err error) {
	n.result.Outcome, n.result.Error = OutcomeFailed, err.Error()
	if ctx.Err() != nil {
		n.result.Outcome = OutcomeInterrupted
	}
}
