//go:build ignore
// +build ignore

package main

import (
	_context "context"
	_flag "flag"
	_fmt "fmt"
	_io "io"
	_log "log"
	_os "os"
	_signal "os/signal"
	_filepath "path/filepath"
	_sort "sort"
	_strconv "strconv"
	_strings "strings"
	_syscall "syscall"
	_tabwriter "text/tabwriter"
	_time "time"
	
)

func main() {
	// Use local types and functions in order to avoid name conflicts with additional magefiles.
	type arguments struct {
		Verbose       bool          // print out log statements
		List          bool          // print out a list of targets
		Help          bool          // print out help for a specific target
		Timeout       _time.Duration // set a timeout to running the targets
		Args          []string      // args contain the non-flag command-line arguments
	}

	parseBool := func(env string) bool {
		val := _os.Getenv(env)
		if val == "" {
			return false
		}		
		b, err := _strconv.ParseBool(val)
		if err != nil {
			_log.Printf("warning: environment variable %s is not a valid bool value: %v", env, val)
			return false
		}
		return b
	}

	parseDuration := func(env string) _time.Duration {
		val := _os.Getenv(env)
		if val == "" {
			return 0
		}		
		d, err := _time.ParseDuration(val)
		if err != nil {
			_log.Printf("warning: environment variable %s is not a valid duration value: %v", env, val)
			return 0
		}
		return d
	}
	args := arguments{}
	fs := _flag.FlagSet{}
	fs.SetOutput(_os.Stdout)

	// default flag set with ExitOnError and auto generated PrintDefaults should be sufficient
	fs.BoolVar(&args.Verbose, "v", parseBool("MAGEFILE_VERBOSE"), "show verbose output when running targets")
	fs.BoolVar(&args.List, "l", parseBool("MAGEFILE_LIST"), "list targets for this binary")
	fs.BoolVar(&args.Help, "h", parseBool("MAGEFILE_HELP"), "print out help for a specific target")
	fs.DurationVar(&args.Timeout, "t", parseDuration("MAGEFILE_TIMEOUT"), "timeout in duration parsable format (e.g. 5m30s)")
	fs.Usage = func() {
		_fmt.Fprintf(_os.Stdout, `
%s [options] [target]

Commands:
  -l    list targets in this binary
  -h    show this help

Options:
  -h    show description of a target
  -t <string>
        timeout in duration parsable format (e.g. 5m30s)
  -v    show verbose output when running targets
 `[1:], _filepath.Base(_os.Args[0]))
	}
	if err := fs.Parse(_os.Args[1:]); err != nil {
		// flag will have printed out an error already.
		return
	}
	args.Args = fs.Args()
	if args.Help && len(args.Args) == 0 {
		fs.Usage()
		return
	}
		
	var printName = func(str string) string {
	// color is ANSI color type
	type color int

	// If you add/change/remove any items in this constant,
	// you will need to run "stringer -type=color" in this directory again.
	// NOTE: Please keep the list in an alphabetical order.
	const (
		black color = iota
		red
		green
		yellow
		blue
		magenta
		cyan
		white
		brightblack
		brightred
		brightgreen
		brightyellow
		brightblue
		brightmagenta
		brightcyan
		brightwhite
	)

	// AnsiColor are ANSI color codes for supported terminal colors.
	var ansiColor = map[color]string{
		black:         "\u001b[30m",
		red:           "\u001b[31m",
		green:         "\u001b[32m",
		yellow:        "\u001b[33m",
		blue:          "\u001b[34m",
		magenta:       "\u001b[35m",
		cyan:          "\u001b[36m",
		white:         "\u001b[37m",
		brightblack:   "\u001b[30;1m",
		brightred:     "\u001b[31;1m",
		brightgreen:   "\u001b[32;1m",
		brightyellow:  "\u001b[33;1m",
		brightblue:    "\u001b[34;1m",
		brightmagenta: "\u001b[35;1m",
		brightcyan:    "\u001b[36;1m",
		brightwhite:   "\u001b[37;1m",
	}

	const colorName = "blackredgreenyellowbluemagentacyanwhitebrightblackbrightredbrightgreenbrightyellowbrightbluebrightmagentabrightcyanbrightwhite"

	var colorIndex = [...]uint8{0, 5, 8, 13, 19, 23, 30, 34, 39, 50, 59, 70, 82, 92, 105, 115, 126}

	colorToLowerString := func(i color) string {
		if i < 0 || i >= color(len(colorIndex)-1) {
			return "color(" + _strconv.FormatInt(int64(i), 10) + ")"
		}
		return colorName[colorIndex[i]:colorIndex[i+1]]
	}

	// ansiColorReset is an ANSI color code to reset the terminal color.
	const ansiColorReset = "\033[0m"

	// defaultTargetAnsiColor is a default ANSI color for colorizing targets.
	// It is set to Cyan as an arbitrary color, because it has a neutral meaning
	var defaultTargetAnsiColor = ansiColor[cyan]

	getAnsiColor := func(color string) (string, bool) {
		colorLower := _strings.ToLower(color)
		for k, v := range ansiColor {
			colorConstLower := colorToLowerString(k)
			if colorConstLower == colorLower {
				return v, true
			}
		}
		return "", false
	}

	// Terminals which  don't support color:
	//
	//	TERM=vt100
	//	TERM=cygwin
	//	TERM=xterm-mono
	var noColorTerms = map[string]bool{
		"vt100":      false,
		"cygwin":     false,
		"xterm-mono": false,
	}

	// terminalSupportsColor checks if the current console supports color output
	//
	// Supported:
	//
	//	linux, mac, or windows's ConEmu, Cmder, putty, git-bash.exe, pwsh.exe
	//
	// Not supported:
	//
	//	windows cmd.exe, powerShell.exe
	terminalSupportsColor := func() bool {
		envTerm := _os.Getenv("TERM")
		if _, ok := noColorTerms[envTerm]; ok {
			return false
		}
		return true
	}

	// enableColor reports whether the user has requested to enable a color output.
	enableColor := func() bool {
		b, _ := _strconv.ParseBool(_os.Getenv("MAGEFILE_ENABLE_COLOR"))
		return b
	}

	// targetColor returns the ANSI color which should be used to colorize targets.
	targetColor := func() string {
		s, exists := _os.LookupEnv("MAGEFILE_TARGET_COLOR")
		if exists {
			if c, ok := getAnsiColor(s); ok {
				return c
			}
		}
		return defaultTargetAnsiColor
	}

	// store the color terminal variables, so that the detection isn't repeated for each target
	var enableColorValue = enableColor() && terminalSupportsColor()
	var targetColorValue = targetColor()

	if enableColorValue {
		return _fmt.Sprintf("%s%s%s", targetColorValue, str, ansiColorReset)
	}

	return str
}


	list := func() error {
		_fmt.Println(`Mage targets of capilab. Targets only parse input and call the engine in internal/; 'go run mage.go -l' lists them, 'make help' shows the make names.
`)
		targets := map[string]string{
			"appcred:create": "creates the lab's application credential and CLUSTER's (APPCRED_SCOPE=lab: only the lab's), with their clouds.yaml entries and cloud.conf.",
			"appcred:delete": "revokes CLUSTER's application credential (APPCRED_SCOPE=lab: the lab's) and removes its local entries.",
			"appcred:list": "shows the lab's application credentials and whether their secret is known locally.",
			"check:conformance": "runs certified-conformance against CLUSTER.",
			"check:csi": "runs the non-disruptive CSI e2e tests against CLUSTER.",
			"check:quick": "runs the sonobuoy quick check against CLUSTER.",
			"check:run": "runs sonobuoy against CLUSTER in mode SONOMODE.",
			"check:storage": "runs the non-disruptive storage e2e tests against CLUSTER.",
			"clean:all": "deletes every workload cluster through the management cluster, then the management cluster.",
			"clean:check": "lists leaks (owned OpenStack resources that outlive their cluster) and fails if there are any; LEAK_SCOPE=lab counts everything the lab owns.",
			"clean:full": "deletes every leaked OpenStack resource of the lab, in dependency order, and verifies.",
			"cluster:create": "creates or updates workload cluster CLUSTER.",
			"cluster:delete": "deletes workload cluster CLUSTER and everything it owns.",
			"cluster:kubeconfig": "writes the kubeconfig of CLUSTER (0600) into the state directory.",
			"config:check": "validates the settings and authenticates against the cloud (OS_CLOUD).",
			"config:show": "prints the effective settings and where each value came from (secrets redacted).",
			"devcloud:down": "stops every devcloud process it started.",
			"devcloud:env": "prints the shell exports that point OpenStack clients at devcloud (OS_CLOUD=devcloud-member).",
			"devcloud:reset": "wipes devcloud's databases and images and starts it from scratch.",
			"devcloud:status": "shows each devcloud service and API; fails unless all run.",
			"devcloud:up": "installs (once) and starts devcloud; idempotent, quick when it already runs.",
			"image:register": "registers the CAPI node image for KUBERNETES_VERSION in Glance (a no-op when it is there).",
			"kind:image": "builds kindest/node:<pinned>-local from source (cached by content; a no-op when current).",
			"kind:nodeImage": "prints the node image kind clusters use here (KIND_NODE_IMAGE, else upstream when reachable, else local) and why.",
			"mgmt:create": "creates the kind management cluster, installs Cluster API and creates the first workload cluster.",
			"mgmt:delete": "deletes the kind management cluster.",
			"mgmt:ssh": "opens a shell on the remote management node (MGMT_MODE=remote).",
			"mgmt:status": "shows the management cluster's providers, their versions, controller health and the source used.",
			"nightly:run": "creates the management cluster (or reuses it), CLUSTERS, checks them (SONOMODE), always deletes them, cleans up and asserts no leaks; report in ARTIFACTS_DIR/nightly/.",
		}

		keys := make([]string, 0, len(targets))
		for name := range targets {
			keys = append(keys, name)
		}
		_sort.Strings(keys)

		_fmt.Println("Targets:")
		w := _tabwriter.NewWriter(_os.Stdout, 0, 4, 4, ' ', 0)
		for _, name := range keys {
			_fmt.Fprintf(w, "  %v\t%v\n", printName(name), targets[name])
		}
		err := w.Flush()
		return err
	}

	var ctx _context.Context
	ctxCancel := func(){}

	// by deferring in a closure, we let the cancel function get replaced
	// by the getContext function.
	defer func() {
		ctxCancel()
	}()

	getContext := func() (_context.Context, func()) {
		if ctx == nil {
			if args.Timeout != 0 {
				ctx, ctxCancel = _context.WithTimeout(_context.Background(), args.Timeout)
			} else {
				ctx, ctxCancel = _context.WithCancel(_context.Background())
			}
		}

		return ctx, ctxCancel
	}

	runTarget := func(logger *_log.Logger, fn func(_context.Context) error) interface{} {
		var err interface{}
		ctx, cancel := getContext()
		d := make(chan interface{})
		go func() {
			defer func() {
				err := recover()
				d <- err
			}()
			err := fn(ctx)
			d <- err
		}()
		sigCh := make(chan _os.Signal, 1)
		_signal.Notify(sigCh, _syscall.SIGINT)
		select {
		case <-sigCh:
			logger.Println("cancelling mage targets, waiting up to 5 seconds for cleanup...")
			cancel()
			cleanupCh := _time.After(5 * _time.Second)

			select {
			// target exited by itself
			case err = <-d:
				return err
			// cleanup timeout exceeded
			case <-cleanupCh:
				return _fmt.Errorf("cleanup timeout exceeded")
			// second SIGINT received
			case <-sigCh:
				logger.Println("exiting mage")
				return _fmt.Errorf("exit forced")
			}
		case <-ctx.Done():
			cancel()
			e := ctx.Err()
			_fmt.Printf("ctx err: %v\n", e)
			return e
		case err = <-d:
			// we intentionally don't cancel the context here, because
			// the next target will need to run with the same _context.
			return err
		}
	}
	// This is necessary in case there aren't any targets, to avoid an unused
	// variable error.
	_ = runTarget

	handleError := func(logger *_log.Logger, err interface{}) {
		if err != nil {
			logger.Printf("Error: %+v\n", err)
			type code interface {
				ExitStatus() int
			}
			if c, ok := err.(code); ok {
				_os.Exit(c.ExitStatus())
			}
			_os.Exit(1)
		}
	}
	_ = handleError

	// Set MAGEFILE_VERBOSE so mg.Verbose() reflects the flag value.
	if args.Verbose {
		_os.Setenv("MAGEFILE_VERBOSE", "1")
	} else {
		_os.Setenv("MAGEFILE_VERBOSE", "0")
	}

	_log.SetFlags(0)
	if !args.Verbose {
		_log.SetOutput(_io.Discard)
	}
	logger := _log.New(_os.Stderr, "", 0)
	if args.List {
		if err := list(); err != nil {
			_log.Println(err)
			_os.Exit(1)
		}
		return
	}

	if args.Help {
		if len(args.Args) < 1 {
			logger.Println("no target specified")
			_os.Exit(2)
		}
		switch _strings.ToLower(args.Args[0]) {
			case "appcred:create":
				_fmt.Println("Create creates the lab's application credential and CLUSTER's (APPCRED_SCOPE=lab: only the lab's), with their clouds.yaml entries and cloud.conf.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 appcred:create\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "appcred:delete":
				_fmt.Println("Delete revokes CLUSTER's application credential (APPCRED_SCOPE=lab: the lab's) and removes its local entries.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 appcred:delete\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "appcred:list":
				_fmt.Println("List shows the lab's application credentials and whether their secret is known locally.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 appcred:list\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "check:conformance":
				_fmt.Println("Conformance runs certified-conformance against CLUSTER.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 check:conformance\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "check:csi":
				_fmt.Println("Csi runs the non-disruptive CSI e2e tests against CLUSTER.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 check:csi\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "check:quick":
				_fmt.Println("Quick runs the sonobuoy quick check against CLUSTER.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 check:quick\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "check:run":
				_fmt.Println("Run runs sonobuoy against CLUSTER in mode SONOMODE.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 check:run\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "check:storage":
				_fmt.Println("Storage runs the non-disruptive storage e2e tests against CLUSTER.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 check:storage\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "clean:all":
				_fmt.Println("All deletes every workload cluster through the management cluster, then the management cluster.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 clean:all\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "clean:check":
				_fmt.Println("Check lists leaks (owned OpenStack resources that outlive their cluster) and fails if there are any; LEAK_SCOPE=lab counts everything the lab owns.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 clean:check\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "clean:full":
				_fmt.Println("Full deletes every leaked OpenStack resource of the lab, in dependency order, and verifies.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 clean:full\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "cluster:create":
				_fmt.Println("Create creates or updates workload cluster CLUSTER.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 cluster:create\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "cluster:delete":
				_fmt.Println("Delete deletes workload cluster CLUSTER and everything it owns.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 cluster:delete\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "cluster:kubeconfig":
				_fmt.Println("Kubeconfig writes the kubeconfig of CLUSTER (0600) into the state directory.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 cluster:kubeconfig\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "config:check":
				_fmt.Println("Check validates the settings and authenticates against the cloud (OS_CLOUD).")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 config:check\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "config:show":
				_fmt.Println("Show prints the effective settings and where each value came from (secrets redacted).")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 config:show\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "devcloud:down":
				_fmt.Println("Down stops every devcloud process it started.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 devcloud:down\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "devcloud:env":
				_fmt.Println("Env prints the shell exports that point OpenStack clients at devcloud (OS_CLOUD=devcloud-member).")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 devcloud:env\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "devcloud:reset":
				_fmt.Println("Reset wipes devcloud's databases and images and starts it from scratch.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 devcloud:reset\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "devcloud:status":
				_fmt.Println("Status shows each devcloud service and API; fails unless all run.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 devcloud:status\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "devcloud:up":
				_fmt.Println("Up installs (once) and starts devcloud; idempotent, quick when it already runs.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 devcloud:up\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "image:register":
				_fmt.Println("Register registers the CAPI node image for KUBERNETES_VERSION in Glance (a no-op when it is there).")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 image:register\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "kind:image":
				_fmt.Println("Image builds kindest/node:<pinned>-local from source (cached by content; a no-op when current).")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 kind:image\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "kind:nodeimage":
				_fmt.Println("NodeImage prints the node image kind clusters use here (KIND_NODE_IMAGE, else upstream when reachable, else local) and why.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 kind:nodeimage\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "mgmt:create":
				_fmt.Println("Create creates the kind management cluster, installs Cluster API and creates the first workload cluster.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 mgmt:create\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "mgmt:delete":
				_fmt.Println("Delete deletes the kind management cluster.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 mgmt:delete\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "mgmt:ssh":
				_fmt.Println("SSH opens a shell on the remote management node (MGMT_MODE=remote).")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 mgmt:ssh\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "mgmt:status":
				_fmt.Println("Status shows the management cluster's providers, their versions, controller health and the source used.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 mgmt:status\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			case "nightly:run":
				_fmt.Println("Run creates the management cluster (or reuses it), CLUSTERS, checks them (SONOMODE), always deletes them, cleans up and asserts no leaks; report in ARTIFACTS_DIR/nightly/.")
				_fmt.Println()
				
				_fmt.Print("Usage:\n\n\tcapilab-8e9e9d4a987b30811cb4f313 nightly:run\n\n")
				var aliases []string
				if len(aliases) > 0 {
					_sort.Strings(aliases)
					_fmt.Printf("Aliases: %s\n\n", _strings.Join(aliases, ", "))
				}
				return
			default:
				logger.Printf("Unknown target: %q\n", args.Args[0])
				_os.Exit(2)
		}
	}
	if len(args.Args) < 1 {
		if err := list(); err != nil {
			logger.Println("Error:", err)
			_os.Exit(1)
		}
		return
	}
	for x := 0; x < len(args.Args); {
		target := args.Args[x]
		x++

		// resolve aliases
		switch _strings.ToLower(target) {
		
		}

		switch _strings.ToLower(target) {
		
			case "appcred:create":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Appcred:Create\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Appcred:Create")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Appcred{}.Create(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "appcred:delete":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Appcred:Delete\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Appcred:Delete")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Appcred{}.Delete(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "appcred:list":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Appcred:List\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Appcred:List")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Appcred{}.List(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "check:conformance":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Check:Conformance\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Check:Conformance")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Check{}.Conformance(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "check:csi":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Check:Csi\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Check:Csi")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Check{}.Csi(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "check:quick":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Check:Quick\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Check:Quick")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Check{}.Quick(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "check:run":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Check:Run\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Check:Run")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Check{}.Run(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "check:storage":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Check:Storage\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Check:Storage")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Check{}.Storage(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "clean:all":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Clean:All\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Clean:All")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Clean{}.All(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "clean:check":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Clean:Check\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Clean:Check")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Clean{}.Check(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "clean:full":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Clean:Full\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Clean:Full")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Clean{}.Full(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "cluster:create":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Cluster:Create\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Cluster:Create")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Cluster{}.Create(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "cluster:delete":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Cluster:Delete\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Cluster:Delete")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Cluster{}.Delete(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "cluster:kubeconfig":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Cluster:Kubeconfig\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Cluster:Kubeconfig")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Cluster{}.Kubeconfig(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "config:check":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Config:Check\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Config:Check")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Config{}.Check(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "config:show":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Config:Show\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Config:Show")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Config{}.Show(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "devcloud:down":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Devcloud:Down\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Devcloud:Down")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Devcloud{}.Down(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "devcloud:env":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Devcloud:Env\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Devcloud:Env")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Devcloud{}.Env(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "devcloud:reset":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Devcloud:Reset\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Devcloud:Reset")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Devcloud{}.Reset(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "devcloud:status":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Devcloud:Status\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Devcloud:Status")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Devcloud{}.Status(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "devcloud:up":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Devcloud:Up\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Devcloud:Up")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Devcloud{}.Up(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "image:register":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Image:Register\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Image:Register")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Image{}.Register(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "kind:image":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Kind:Image\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Kind:Image")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Kind{}.Image(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "kind:nodeimage":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Kind:NodeImage\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Kind:NodeImage")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Kind{}.NodeImage(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "mgmt:create":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Mgmt:Create\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Mgmt:Create")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Mgmt{}.Create(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "mgmt:delete":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Mgmt:Delete\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Mgmt:Delete")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Mgmt{}.Delete(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "mgmt:ssh":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Mgmt:SSH\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Mgmt:SSH")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Mgmt{}.SSH(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "mgmt:status":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Mgmt:Status\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Mgmt:Status")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Mgmt{}.Status(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
			case "nightly:run":
				expected := x + 0
				if expected > len(args.Args) {
					// note that expected and args at this point include the arg for the target itself
					// so we subtract 1 here to show the number of args without the target.
					logger.Printf("not enough arguments for target \"Nightly:Run\", expected %v, got %v\n", expected-1, len(args.Args)-1)
					_os.Exit(2)
				}
				if args.Verbose {
					logger.Println("Running target:", "Nightly:Run")
				}
				
				wrapFn := func(ctx _context.Context) error {
					return Nightly{}.Run(ctx)
				}
				ret := runTarget(logger, wrapFn)
				handleError(logger, ret)
		
		default:
			logger.Printf("Unknown target specified: %q\n", target)
			_os.Exit(2)
		}
	}
}




