// Package cli is the command line of capilab's Mage bootstrap: mage.go,
// which `go run mage.go …` runs and `make bin/mage` builds into bin/mage.
//
// Mage alone reads every argument that is not an option as a target and
// runs them in order, so `mage appcred:delete CLUSTER=alpha` ran
// appcred:delete with the wrong settings before it complained about
// "CLUSTER=alpha". The bootstrap checks the whole command line first:
//
//   - NAME=value (NAME like an environment variable) is a setting, applied
//     to the environment exactly as make passes its variables; a NAME
//     capilab does not read is refused (typos such as DRYRUN=1 would
//     otherwise run the real thing);
//   - every other argument must be a target of magefiles/ (matched without
//     regard to case, as Mage does), read from the magefiles with Mage's own
//     parser, so the list cannot drift from what Mage would run;
//   - Mage's options are accepted before, between or after the targets.
//
// Any problem: one line per argument, exit code 2, nothing runs. Then the
// bootstrap compiles the targets (Mage's compiler, a no-op when current) and
// replaces itself with them (exec), so the process a caller started — and
// signals — is the work itself; where a parent stays (go run, make), the work
// ends with it (Linux parent-death signal).
package cli

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/capilab/capilab/internal/suggest"
)

// Exit codes of the bootstrap (the targets' own are in internal/lab).
const (
	ExitFailure  = 1
	ExitBadInput = 2
)

// Target is a Mage target: its name as Mage matches it (lower case) and the
// number of positional arguments it requires.
type Target struct {
	Name string
	Args int
}

// Assignment is a NAME=value argument.
type Assignment struct{ Name, Value string }

// Command is what the bootstrap does after the checks.
type Command string

const (
	Run     Command = ""        // compile the targets and exec them
	List    Command = "list"    // -l: Mage lists the targets (no compile)
	Help    Command = "help"    // -h <target>
	Version Command = "version" // -version
	Clean   Command = "clean"   // -clean: Mage's binary cache
	Compile Command = "compile" // -compile <path>: build the targets binary, run nothing
)

// Parsed is a checked command line.
type Parsed struct {
	Command     Command
	Assignments []Assignment
	// Targets are the targets to run, with their positional arguments.
	Targets []string
	// RunFlags go to the compiled targets binary (-v, -t).
	RunFlags []string
	// MageFlags go to Mage's compiler or to Mage itself (-debug, -keep, …).
	MageFlags []string
	// Problems are one line each; any problem means nothing runs.
	Problems []string
}

// option describes a Mage option the bootstrap accepts.
type option struct {
	value   bool    // takes a value
	command Command // selects a command
	run     bool    // passed to the compiled targets
}

var options = map[string]option{
	"l":         {command: List},
	"h":         {command: Help},
	"version":   {command: Version},
	"clean":     {command: Clean},
	"compile":   {value: true, command: Compile},
	"v":         {run: true},
	"t":         {value: true, run: true},
	"f":         {},
	"debug":     {},
	"keep":      {},
	"multiline": {},
	"gocmd":     {value: true},
}

// refused are Mage options that make no sense for capilab.
var refused = map[string]string{
	"d":            "capilab's targets are in magefiles/: run from the repository root",
	"w":            "targets run in the current directory: cd there (settings paths are relative to it)",
	"init":         "capilab has its magefiles already",
	"install":      "shell completion is not set up by capilab",
	"autocomplete": "shell completion is not set up by capilab",
	"goos":         "the targets run on this machine",
	"goarch":       "the targets run on this machine",
	"ldflags":      "the targets are built as they are",
}

// refusedValue are the refused options that take a value.
var refusedValue = map[string]bool{"d": true, "w": true, "install": true, "goos": true, "goarch": true, "ldflags": true}

var assignment = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// EnvNameFunc says whether a variable name is one capilab reads, with a hint
// for one it does not (config.EnvName).
type EnvNameFunc func(name string) (known bool, hint string)

// Parse checks args against the known targets and variable names.
// makeVars are the names of variables given on make's command line (make
// passes their values through the environment; the Makefile lists the
// names), checked like NAME=value arguments.
func Parse(args []string, targets []Target, envName EnvNameFunc, makeVars []string) Parsed {
	var p Parsed
	byName := make(map[string]Target, len(targets))
	for _, t := range targets {
		byName[strings.ToLower(t.Name)] = t
	}
	problem := func(format string, a ...any) { p.Problems = append(p.Problems, "capilab: "+fmt.Sprintf(format, a...)) }
	commandArg := ""
	setCommand := func(c Command, arg string) {
		if p.Command != Run && p.Command != c {
			problem("options %s and %s cannot be used together", commandArg, arg)
			return
		}
		p.Command, commandArg = c, arg
	}
	for _, name := range makeVars {
		if known, hint := envName(name); !known {
			problem("make variable %s %s; nothing was run", name, hint)
		}
	}
	flagsDone := false
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !flagsDone && arg == "--" {
			flagsDone = true
			continue
		}
		if !flagsDone && len(arg) > 1 && arg[0] == '-' {
			name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
			if why, ok := refused[name]; ok {
				problem("option %s is not supported: %s", arg, why)
				if refusedValue[name] && !hasValue && i+1 < len(args) {
					i++ // its value is no target
				}
				continue
			}
			opt, ok := options[name]
			if !ok {
				problem("unknown option %s (options: %s)", arg, optionList())
				continue
			}
			if opt.value && !hasValue {
				if i+1 >= len(args) {
					problem("option %s needs a value", arg)
					continue
				}
				i++
				value = args[i]
			}
			if !opt.value && hasValue {
				problem("option -%s takes no value", name)
				continue
			}
			flag := []string{"-" + name}
			if opt.value {
				flag = append(flag, value)
			}
			if opt.command != Run {
				setCommand(opt.command, arg)
			}
			if opt.run {
				p.RunFlags = append(p.RunFlags, flag...)
			} else {
				p.MageFlags = append(p.MageFlags, flag...)
			}
			continue
		}
		if m := assignment.FindStringSubmatch(arg); m != nil {
			if known, hint := envName(m[1]); !known {
				problem("%s: %s %s; nothing was run", short(arg), m[1], hint)
				continue
			}
			p.Assignments = append(p.Assignments, Assignment{Name: m[1], Value: m[2]})
			continue
		}
		t, ok := byName[strings.ToLower(arg)]
		if !ok {
			problem("unknown target %q%s; nothing was run (bin/mage -l lists the targets)", arg, closest(arg, targets))
			continue
		}
		p.Targets = append(p.Targets, t.Name)
		for n := 0; n < t.Args; n++ {
			if i+1 >= len(args) {
				problem("target %s needs %d argument(s)", t.Name, t.Args)
				break
			}
			i++
			p.Targets = append(p.Targets, args[i])
		}
	}
	if p.Command == Help && len(p.Targets) > 1 {
		problem("-h shows the help of one target, not %d", len(p.Targets))
	}
	return p
}

// short keeps a problem line readable when a value is long.
func short(arg string) string {
	if len(arg) > 60 {
		return arg[:60] + "…"
	}
	return arg
}

func optionList() string {
	names := make([]string, 0, len(options))
	for n := range options {
		names = append(names, "-"+n)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// closest suggests the nearest target name for a typo.
func closest(arg string, targets []Target) string {
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = strings.ToLower(t.Name)
	}
	return suggest.DidYouMean(strings.ToLower(arg), names)
}
