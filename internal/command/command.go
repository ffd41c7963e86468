// Package command is capilab's one way to run an external program (docker,
// go, tofu, qemu-img, …). A failed command comes back as a *RunError that
// carries what a person needs to reproduce and understand it: the command
// line ready to paste into a shell (with the environment it was given on
// top of the process's own), its exit code, and the tail of its output.
//
// The shape follows kind's pkg/exec: a Cmd value built by New, run with a
// context; callers that need a seam for unit tests take a Runner.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"al.essio.dev/pkg/shellescape"
)

// TailBytes is how much of a failed command's output its error keeps.
const TailBytes = 4096

// Cmd is one command to run. Build it with New; the zero value is not usable.
type Cmd struct {
	Name string
	Args []string
	// Dir is the working directory ("" = the caller's).
	Dir string
	// Env is added on top of BaseEnv (later entries win).
	Env []string
	// BaseEnv is the environment the command starts from; nil inherits
	// this process's environment (as os/exec does).
	BaseEnv []string
	Stdin   io.Reader
	// Stdout and Stderr, when set, also receive the output as it comes
	// (progress for long commands); the error keeps the tail either way.
	Stdout io.Writer
	Stderr io.Writer
	// WaitDelay bounds how long Run waits for the process after ctx ends
	// (it is sent SIGTERM first, SIGKILL after WaitDelay); default 10s.
	WaitDelay time.Duration
}

// New returns a command.
func New(name string, args ...string) *Cmd { return &Cmd{Name: name, Args: args} }

// WithDir sets the working directory.
func (c *Cmd) WithDir(dir string) *Cmd { c.Dir = dir; return c }

// WithEnv sets the base environment and the variables added on top.
func (c *Cmd) WithEnv(base []string, extra ...string) *Cmd {
	c.BaseEnv, c.Env = base, extra
	return c
}

// WithStdin sets the standard input.
func (c *Cmd) WithStdin(r io.Reader) *Cmd { c.Stdin = r; return c }

// WithOutput streams stdout and stderr to w as well.
func (c *Cmd) WithOutput(w io.Writer) *Cmd { c.Stdout, c.Stderr = w, w; return c }

// String is the command line as a shell would take it, with the added
// environment first.
func (c *Cmd) String() string {
	parts := make([]string, 0, len(c.Env)+1+len(c.Args))
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		parts = append(parts, k+"="+shellescape.Quote(v))
	}
	parts = append(parts, shellescape.Quote(c.Name))
	for _, a := range c.Args {
		parts = append(parts, shellescape.Quote(a))
	}
	line := strings.Join(parts, " ")
	if c.Dir != "" {
		line = "(cd " + shellescape.Quote(c.Dir) + " && " + line + ")"
	}
	return line
}

// RunError is a command that could not start or did not succeed.
type RunError struct {
	Command  string // pasteable command line
	ExitCode int    // -1 when it did not start or was killed by a signal
	Tail     string // last TailBytes of its combined output
	Err      error
}

func (e *RunError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "command failed: %s: %v", e.Command, e.Err)
	if t := strings.TrimSpace(e.Tail); t != "" {
		b.WriteString("\n--- output (tail) ---\n")
		b.WriteString(t)
	}
	return b.String()
}

func (e *RunError) Unwrap() error { return e.Err }

// Run runs the command to completion.
func (c *Cmd) Run(ctx context.Context) error {
	_, err := c.run(ctx, false)
	return err
}

// Output runs the command and returns its standard output; stderr goes
// into the error's tail (and to c.Stderr when set).
func (c *Cmd) Output(ctx context.Context) ([]byte, error) {
	return c.run(ctx, true)
}

// CombinedOutput runs the command and returns stdout and stderr together.
func (c *Cmd) CombinedOutput(ctx context.Context) ([]byte, error) {
	var all bytes.Buffer
	both := &syncWriter{w: &all} // stdout and stderr both end in it
	saved := c.Stdout
	c.Stdout = teeTo(both, saved)
	savedErr := c.Stderr
	c.Stderr = teeTo(both, savedErr)
	defer func() { c.Stdout, c.Stderr = saved, savedErr }()
	_, err := c.run(ctx, false)
	return all.Bytes(), err
}

func (c *Cmd) run(ctx context.Context, captureStdout bool) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, &RunError{Command: c.String(), ExitCode: -1, Err: err}
	}
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Dir = c.Dir
	if c.BaseEnv != nil {
		cmd.Env = append(append([]string{}, c.BaseEnv...), c.Env...)
	} else if len(c.Env) > 0 {
		cmd.Env = append(cmd.Environ(), c.Env...)
	}
	cmd.Stdin = c.Stdin
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = c.WaitDelay
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = 10 * time.Second
	}
	tail := &tailBuffer{max: TailBytes}
	tailW := &syncWriter{w: tail} // stdout and stderr may both go to it
	var stdout bytes.Buffer
	if captureStdout {
		cmd.Stdout = teeTo(&stdout, c.Stdout)
	} else {
		cmd.Stdout = teeTo(tailW, c.Stdout)
	}
	cmd.Stderr = teeTo(tailW, c.Stderr)
	err := cmd.Run()
	if err == nil {
		return stdout.Bytes(), nil
	}
	code := -1
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	out := tail.String()
	if captureStdout && out == "" {
		out = lastBytes(stdout.String(), TailBytes)
	}
	return stdout.Bytes(), &RunError{Command: c.String(), ExitCode: code, Tail: out, Err: err}
}

func teeTo(w io.Writer, extra io.Writer) io.Writer {
	if extra == nil {
		return w
	}
	return io.MultiWriter(w, extra)
}

// syncWriter lets two goroutines write to one writer (exec.Cmd copies
// stdout and stderr in two when they are different writers).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append([]byte{}, t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return lastBytes(string(t.buf), t.max) }

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		s = s[i+1:]
	}
	return "…" + s
}

// ExitCode is the exit code of a failed command, or -1.
func ExitCode(err error) int {
	var re *RunError
	if errors.As(err, &re) {
		return re.ExitCode
	}
	return -1
}

// Runner runs commands; tests replace it.
type Runner interface {
	Run(ctx context.Context, c *Cmd) error
	Output(ctx context.Context, c *Cmd) ([]byte, error)
}

// Exec is the Runner that runs real processes.
type Exec struct{}

// Run runs c.
func (Exec) Run(ctx context.Context, c *Cmd) error { return c.Run(ctx) }

// Output runs c and returns its stdout.
func (Exec) Output(ctx context.Context, c *Cmd) ([]byte, error) { return c.Output(ctx) }
