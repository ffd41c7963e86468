// Package devcloud runs scripts/devcloud/devcloud.sh, the local OpenStack
// (Keystone, Glance, Neutron, Nova, Octavia, Cinder on 127.0.0.1) that the
// integration tests use. The script does the work; this package only runs it
// with context cancellation so that magefiles and test tooling can drive it.
//
// What devcloud is and cannot do: docs/devcloud.md.
package devcloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// DefaultScript is the script's path relative to the repository root.
const DefaultScript = "scripts/devcloud/devcloud.sh"

// Clouds are the clouds.yaml entries devcloud writes.
const (
	AdminCloud  = "devcloud"        // admin user, project admin
	MemberCloud = "devcloud-member" // a tenant: member + load-balancer_member roles in its own project
)

// Verbs the script understands.
var verbs = []string{"install", "start", "stop", "status", "env", "reset"}

// Runner runs the devcloud script. The zero value is not usable; use New.
type Runner struct {
	script         string
	stdout, stderr io.Writer
	// stopGrace is how long the script gets after SIGTERM when the context ends.
	stopGrace time.Duration
}

// Option configures a Runner.
type Option func(*Runner)

// WithScript runs the script at path instead of DefaultScript.
func WithScript(path string) Option { return func(r *Runner) { r.script = path } }

// WithOutput sends the script's progress (stdout) and errors (stderr) to w and errw.
func WithOutput(w, errw io.Writer) Option {
	return func(r *Runner) { r.stdout, r.stderr = w, errw }
}

// WithStopGrace sets how long the script may take to exit after SIGTERM once the context ends.
func WithStopGrace(d time.Duration) Option { return func(r *Runner) { r.stopGrace = d } }

// New returns a Runner for the script at DefaultScript (relative to the working
// directory, which mage sets to the repository root), printing to os.Stdout/os.Stderr.
func New(opts ...Option) *Runner {
	r := &Runner{script: DefaultScript, stdout: os.Stdout, stderr: os.Stderr, stopGrace: 10 * time.Second}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Run runs one verb of the script. When ctx ends, the script gets SIGTERM and
// then, after the stop grace, SIGKILL; the daemons it already started keep
// running (each is in its own session) until Down.
func (r *Runner) Run(ctx context.Context, verb string) error {
	if !slices.Contains(verbs, verb) {
		return fmt.Errorf("devcloud: unknown verb %q (want one of %s)", verb, strings.Join(verbs, ", "))
	}
	if _, err := os.Stat(r.script); err != nil {
		return fmt.Errorf("devcloud: script: %w", err)
	}
	cmd := exec.CommandContext(ctx, r.script, verb)
	cmd.Stdout, cmd.Stderr = r.stdout, r.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = r.stopGrace
	err := cmd.Run()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("devcloud %s: interrupted: %w", verb, errors.Join(ctxErr, err))
	}
	if err != nil {
		return fmt.Errorf("devcloud %s (%s): %w", verb, r.script, err)
	}
	return nil
}

// Up installs devcloud's packages (a quick check when they are there) and
// starts it (a quick check when it already runs).
func (r *Runner) Up(ctx context.Context) error {
	if err := r.Run(ctx, "install"); err != nil {
		return err
	}
	return r.Run(ctx, "start")
}

// Down stops every process devcloud started.
func (r *Runner) Down(ctx context.Context) error { return r.Run(ctx, "stop") }

// Status prints one line per service; it fails unless every service runs and answers.
func (r *Runner) Status(ctx context.Context) error { return r.Run(ctx, "status") }

// Env prints the shell exports that point OpenStack clients at devcloud.
func (r *Runner) Env(ctx context.Context) error { return r.Run(ctx, "env") }

// Reset drops every database and stored blob of devcloud and starts it afresh.
func (r *Runner) Reset(ctx context.Context) error { return r.Run(ctx, "reset") }
