//go:build mage

// Mage targets of capilab. Targets only parse input and call the engine in
// internal/; `go run mage.go -l` lists them, `make help` shows the make names.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/capilab/capilab/internal/lab"
)

// stopGrace bounds how long a target may take to stop after SIGINT,
// SIGTERM or SIGHUP (it stops starting work at once; this bounds what is
// in flight).
const stopGrace = 20 * time.Second

// run executes the named target body (internal/lab.Targets) with this
// process's settings: invalid settings stop it before any cloud or cluster
// call, with exit code 2. The process exits with the target's own code,
// after writing its error once, in the log format (Mage's own error line
// would be plain text and every code but Mage's known ones would be lost).
//
// SIGINT (Ctrl-C), SIGTERM and SIGHUP (a CI runner cancelling the job, or
// the parent-death signal the bootstrap asks for) are an interrupt: the
// target's context is cancelled; if it has not returned within its grace
// (lab.StopGrace) the process exits anyway. Mage's generated main also
// cancels on SIGINT but then exits 5 s later whatever the target still
// does (removing what it made), so the targets take SIGINT over from it.
func run(ctx context.Context, name string) error {
	target, ok := lab.Targets()[name]
	if !ok {
		return fmt.Errorf("%s: no such target in internal/lab", name)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	takeSignals := func() {
		signal.Ignore(syscall.SIGINT) // drops Mage's SIGINT handler
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	}
	takeSignals()
	// Mage installs its handler right after starting this target's
	// goroutine, almost always before it gets here; once more a moment
	// later in case it came after.
	retake := time.AfterFunc(time.Second, takeSignals)
	defer retake.Stop()
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done) // runs before signal.Stop: a normal return is no signal
	go func() {
		select {
		case <-done:
			return
		case sig := <-sigs:
			cancel(fmt.Errorf("%s received: %w", signalNames[sig], context.Canceled))
		case <-ctx.Done():
		}
		grace := lab.StopGrace(name, stopGrace)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			fmt.Fprintf(os.Stderr, "Error: %s did not stop within %s of the interrupt; exiting\n", name, grace)
			os.Exit(lab.ExitFailure)
		}
	}()
	// controller-runtime's clients log through a process-wide logger: only
	// its warnings, on stderr.
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if code := lab.Execute(ctx, lab.OptionsFromProcess(), name, target); code != 0 {
		os.Exit(code)
	}
	return nil
}

var signalNames = map[os.Signal]string{syscall.SIGINT: "SIGINT (Ctrl-C)", syscall.SIGTERM: "SIGTERM", syscall.SIGHUP: "SIGHUP"}

// notImplemented is what a target returns until its issue lands: a loud
// failure with a non-zero exit, never a fake success.
func notImplemented(target string) error {
	return lab.NotImplementedError(target)
}
