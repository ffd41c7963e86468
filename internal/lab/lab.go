// Package lab is the application layer between the Mage targets and the
// capability packages: it loads and validates the settings (before anything
// touches a cloud or a cluster), builds the logger, connects to the cloud
// once, and turns errors into redacted messages and exit codes CI can trust.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/capilab/capilab/internal/cloud"
	"github.com/capilab/capilab/internal/config"
	"github.com/capilab/capilab/internal/logging"
)

// Exit codes of capilab targets.
const (
	ExitFailure  = 1 // the target failed
	ExitBadInput = 2 // settings or arguments are invalid; nothing was done
	ExitLeaks    = 3 // leakcheck / fullclean verification found owned resources
	ExitBusy     = 4 // another run holds the lab's lock; nothing was done
	// 5: ExitTestsFailed (nightly.go)
)

// Options is what one invocation gets from its process.
type Options struct {
	Dir     string    // working directory ("" = current)
	Environ []string  // process environment
	Stdin   io.Reader // interactive targets only (make ssh); nil: none
	Stdout  io.Writer
	Stderr  io.Writer
	// CloudsFile overrides the clouds.yaml search (tests); "" = standard lookup.
	CloudsFile string
}

// OptionsFromProcess reads the options of the running process.
func OptionsFromProcess() Options {
	dir, _ := os.Getwd()
	return Options{Dir: dir, Environ: os.Environ(), Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
}

// Run is one invocation: validated settings, logger, secrets, cloud.
type Run struct {
	Loaded   *config.Loaded
	Settings *config.Settings
	Log      *slog.Logger
	Secrets  *logging.Secrets
	Stdout   io.Writer
	// Stderr is where progress of external tools goes (the log writes there too).
	Stderr io.Writer
	Dir    string

	opts      Options
	cloudOnce sync.Once
	cloud     *cloud.Cloud
	cloudErr  error
}

// Target is the body of one target.
type Target func(ctx context.Context, r *Run) error

// Main runs a target: settings first (bad input stops here with
// ExitBadInput and no cloud or cluster call), then the target. The returned
// error is redacted and carries the exit code.
func Main(ctx context.Context, opts Options, target Target) error {
	err, _ := run(ctx, opts, target)
	return err
}

// Execute runs a target the way a process does: it returns the exit code
// and, on failure, writes the error once, as the last line on stderr — in
// the run's log format (LOG_FORMAT=json: a JSON record with the exit code).
func Execute(ctx context.Context, opts Options, name string, target Target) int {
	err, format := run(ctx, opts, target)
	code := ExitCode(err)
	if err == nil {
		return code
	}
	stderr := opts.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	if format == "json" {
		h := slog.NewJSONHandler(stderr, nil)
		slog.New(h).Error(err.Error(), "target", name, "exit_code", code)
		return code
	}
	fmt.Fprintf(stderr, "Error: %s\n", err)
	return code
}

// ExitCode is the exit code an error of a target gives (0 for nil).
func ExitCode(err error) int {
	var e interface{ ExitStatus() int }
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.ExitStatus()
	}
	return ExitFailure
}

// run is Main, also returning the log format the error should be written in.
func run(ctx context.Context, opts Options, target Target) (error, string) {
	secrets := logging.NewSecrets()
	r, err := New(opts, secrets)
	if err != nil {
		return secrets.RedactError(err), formatFromEnv(opts.Environ)
	}
	err = target(ctx, r)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted: %w (a re-run continues where this one stopped)", err)
	}
	return secrets.RedactError(err), r.Settings.LogFormat
}

// formatFromEnv is LOG_FORMAT when the settings did not load.
func formatFromEnv(environ []string) string {
	if environMap(environ)["LOG_FORMAT"] == "json" {
		return "json"
	}
	return "text"
}

// New loads the settings and builds the run's logger.
func New(opts Options, secrets *logging.Secrets) (*Run, error) {
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	loaded, err := config.Load(config.Options{Dir: opts.Dir, Environ: opts.Environ})
	if err != nil {
		var invalid *config.InvalidError
		if errors.As(err, &invalid) {
			return nil, &ExitError{Code: ExitBadInput, Err: err}
		}
		return nil, err
	}
	log, err := logging.New(opts.Stderr, logging.Options{Format: loaded.Settings.LogFormat, Level: loaded.Settings.LogLevel, Secrets: secrets})
	if err != nil {
		return nil, &ExitError{Code: ExitBadInput, Err: err}
	}
	return &Run{Loaded: loaded, Settings: &loaded.Settings, Log: log, Secrets: secrets, Stdout: opts.Stdout, Stderr: opts.Stderr, Dir: opts.Dir, opts: opts}, nil
}

// Getenv is a variable of the run's environment (Options.Environ), "" when
// unset: packages never read the process environment themselves.
func (r *Run) Getenv(name string) string { return environMap(r.opts.Environ)[name] }

// cloudOptions are the connection options of this run.
func (r *Run) cloudOptions() cloud.Options {
	return cloud.Options{Cloud: r.Settings.Cloud, Log: r.Log, Secrets: r.Secrets, CloudsFile: r.cloudsFile(),
		TokenCache: filepath.Join(r.Path(r.Settings.StateDir), "tokens")}
}

func (r *Run) cloudsFile() string {
	if r.opts.CloudsFile != "" {
		return r.opts.CloudsFile
	}
	for _, kv := range r.opts.Environ {
		if v, ok := strings.CutPrefix(kv, "OS_CLIENT_CONFIG_FILE="); ok {
			return v
		}
	}
	return ""
}

// cloudOptionsChecked are the connection options, or bad input (exit
// code 2, no call made) when no cloud is selected or clouds.yaml has no
// such entry.
func (r *Run) cloudOptionsChecked() (cloud.Options, error) {
	opts := r.cloudOptions()
	if _, err := cloud.Resolve(opts); err != nil {
		return opts, &ExitError{Code: ExitBadInput, Err: err}
	}
	return opts, nil
}

// Cloud connects once per run.
func (r *Run) Cloud(ctx context.Context) (*cloud.Cloud, error) {
	r.cloudOnce.Do(func() {
		opts, err := r.cloudOptionsChecked()
		if err != nil {
			r.cloudErr = err
			return
		}
		r.cloud, r.cloudErr = cloud.Connect(ctx, opts)
	})
	return r.cloud, r.cloudErr
}

// ExitError carries an exit code to mage (which honours ExitStatus).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string   { return e.Err.Error() }
func (e *ExitError) Unwrap() error   { return e.Err }
func (e *ExitError) ExitStatus() int { return e.Code }

// NotImplemented is what a target returns until its work lands: a loud
// failure, never a fake success.
func NotImplemented(name string) Target {
	return func(context.Context, *Run) error { return NotImplementedError(name) }
}

// NotImplementedError is the error of a target whose work has not landed.
func NotImplementedError(name string) error { return fmt.Errorf("%s: not implemented yet", name) }
