package lab

import (
	"context"
	"errors"
	"fmt"

	"github.com/capilab/capilab/internal/state"
)

// LockLab takes the lab's lock for target (see state.Dir.Lock): a second
// run that changes the same lab says who holds it and exits with ExitBusy,
// having done nothing. A lock left by a run that was killed is free; taking
// it over is logged. Call the returned release when the change is done
// (the kernel releases it anyway when the process ends).
func (r *Run) LockLab(target string) (release func(), err error) {
	l, err := r.State().Lock(target)
	var busy *state.BusyError
	if errors.As(err, &busy) {
		return nil, &ExitError{Code: ExitBusy, Err: err}
	}
	if err != nil {
		return nil, err
	}
	if l.TakenOver != nil {
		r.Log.Info("took over the lab's lock from a run that ended without releasing it", "previous_holder", l.TakenOver.String())
	}
	return l.Release, nil
}

// Mutating wraps the body of a target that changes the lab: it holds the
// lab's lock while it runs. dryRun says whether the target honours
// DRY_RUN=1 (then a dry run takes no lock: it changes nothing); a target
// without a dry run refuses DRY_RUN=1 as bad input instead of changing
// things the user asked to leave alone.
func Mutating(name string, dryRun bool, t Target) Target {
	return func(ctx context.Context, r *Run) error {
		if r.Settings.DryRun {
			if !dryRun {
				return &ExitError{Code: ExitBadInput, Err: fmt.Errorf("%s has no dry run (dry_run applies to %s); nothing was done", name, dryRunTargets)}
			}
			return t(ctx, r)
		}
		release, err := r.LockLab(name)
		if err != nil {
			return err
		}
		defer release()
		return t(ctx, r)
	}
}

// dryRunTargets names the targets that honour dry_run, for messages.
const dryRunTargets = "make fullclean, make appcred-delete and make create MGMT_MODE=remote"
