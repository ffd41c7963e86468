package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/magefile/mage/mage"
	"github.com/magefile/mage/mg"

	"github.com/capilab/capilab/internal/fsutil"
	"github.com/capilab/capilab/internal/wait"
)

// MakeVarsEnv lists, space-separated, the names of the variables given on
// make's command line; the Makefile sets it for every recipe that runs the
// bootstrap, so `make fullclean DRYRUN=1` is refused like `bin/mage
// clean:full DRYRUN=1`.
const MakeVarsEnv = "CAPILAB_MAKE_VARS"

// Process is what Main needs from the process it runs in.
type Process struct {
	Args   []string // without the program name
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Environ is the process environment (os.Environ()); the targets get it
	// with the NAME=value arguments applied.
	Environ []string
	// EnvName says whether a variable is one capilab reads (config.EnvName).
	EnvName EnvNameFunc
}

// Main runs the bootstrap and returns its exit code; on success it does not
// return (the process becomes the targets binary).
func Main(p Process) int {
	ppid := os.Getppid()
	targets, err := Targets(MagefilesDir)
	if err != nil {
		fmt.Fprintln(p.Stderr, "capilab:", err)
		return ExitFailure
	}
	parsed := Parse(p.Args, targets, p.EnvName, strings.Fields(getenv(p.Environ, MakeVarsEnv)))
	if len(parsed.Problems) > 0 {
		for _, line := range parsed.Problems {
			fmt.Fprintln(p.Stderr, line)
		}
		return ExitBadInput
	}
	env := withAssignments(p.Environ, parsed.Assignments)
	if parsed.Command != Run || len(parsed.Targets) == 0 {
		// Listing, help, version, cache cleaning, -compile: Mage does these
		// itself and none of them runs a target's work.
		args := append(append(append([]string{}, parsed.MageFlags...), parsed.RunFlags...), parsed.Targets...)
		return mage.ParseAndRun(p.Stdout, p.Stderr, p.Stdin, args)
	}

	// From here on the work starts: it must not outlive whoever started it.
	// The parent-death signal is an attribute of one thread, and exec keeps
	// only the thread that calls it: both must happen on the same thread.
	runtime.LockOSThread()
	if err := dieWithParent(ppid); err != nil {
		fmt.Fprintln(p.Stderr, "capilab:", err)
		return ExitFailure
	}
	exe, err := compileTargets(p, parsed)
	if err != nil {
		fmt.Fprintln(p.Stderr, "capilab:", err)
		return ExitFailure
	}
	argv := append(append([]string{exe}, parsed.RunFlags...), parsed.Targets...)
	err = syscall.Exec(exe, argv, env)
	fmt.Fprintf(p.Stderr, "capilab: running the compiled targets %s: %v\n", exe, err)
	return ExitFailure
}

// getenv reads a variable of environ ("" when unset).
func getenv(environ []string, name string) string {
	v := ""
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val // the last one wins
		}
	}
	return v
}

// withAssignments is environ with NAME=value arguments set, as make sets
// its command-line variables in the environment of its recipes.
func withAssignments(environ []string, as []Assignment) []string {
	set := map[string]string{}
	for _, a := range as {
		set[a.Name] = a.Value
	}
	out := make([]string, 0, len(environ)+len(as))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			out = append(out, kv)
		}
	}
	for _, a := range as {
		if v, ok := set[a.Name]; ok {
			out = append(out, a.Name+"="+v)
			delete(set, a.Name) // the last of repeated names, once
		}
	}
	return out
}

// compileTargets builds the targets binary with Mage's compiler (go build:
// a no-op when nothing changed) into a path of Mage's cache that belongs to
// this checkout, under a lock of this checkout: Mage writes its generated
// main file into magefiles/, so two runs of one checkout must not compile
// at once, while runs of other checkouts (their own magefiles/) need not
// wait; two checkouts with the same magefiles must not run each other's
// binary.
func compileTargets(p Process, parsed Parsed) (string, error) {
	root, err := os.Getwd()
	if err != nil {
		return "", err
	}
	goCmd := mg.GoCmd()
	for i := 0; i+1 < len(parsed.MageFlags); i++ {
		if parsed.MageFlags[i] == "-gocmd" {
			goCmd = parsed.MageFlags[i+1]
		}
	}
	cacheDir := mg.CacheDir()
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("mage cache %s: %w", cacheDir, err)
	}
	files, err := mage.Magefiles(MagefilesDir, "", "", true)
	if err != nil {
		return "", err
	}
	name, err := mage.ExeName(goCmd, cacheDir, files)
	if err != nil {
		return "", fmt.Errorf("naming the targets binary: %w", err)
	}
	sum := sha256.Sum256([]byte(root + "\x00" + filepath.Base(name)))
	exe := filepath.Join(cacheDir, "capilab-"+hex.EncodeToString(sum[:12]))

	unlock, err := lockFile(compileLockPath(cacheDir, root), 30*time.Minute, p.Stderr)
	if err != nil {
		return "", err
	}
	defer unlock()
	inv := mage.Invocation{
		Dir: ".", CompileOut: exe, Force: true,
		Stdout: p.Stderr, Stderr: p.Stderr, Stdin: p.Stdin,
		GoCmd: goCmd, CacheDir: cacheDir,
	}
	for _, f := range parsed.MageFlags {
		switch f {
		case "-debug":
			inv.Debug = true
		case "-keep":
			inv.Keep = true
		case "-multiline":
			inv.Multiline = true
		}
	}
	if code := mage.Invoke(inv); code != 0 {
		return "", fmt.Errorf("compiling the targets in %s failed (exit code %d)", MagefilesDir, code)
	}
	return exe, nil
}

// compileLockPath is the lock a run of the checkout at root holds while
// Mage compiles that checkout's magefiles/.
func compileLockPath(cacheDir, root string) string {
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(cacheDir, "capilab-compile-"+hex.EncodeToString(sum[:12])+".lock")
}

// lockFile takes an exclusive lock on path, waiting at most bound; the
// kernel drops it when the process ends (or execs: the descriptor is
// close-on-exec).
func lockFile(path string, bound time.Duration, progress io.Writer) (func(), error) {
	log := slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	return fsutil.Lock(context.Background(), log, path, wait.Spec{What: "another capilab run to finish compiling the targets (lock " + path + ")", Timeout: bound, Interval: time.Second})
}
