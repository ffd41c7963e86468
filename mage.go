//go:build ignore

// Zero-install entry point: `go run mage.go <target>…` (or bin/mage, which
// `make bin/mage` builds from this file) checks the whole command line —
// NAME=value settings, targets, options — before anything runs, then
// compiles the targets in magefiles/ with the mage version pinned in go.mod
// and becomes them (exec). See internal/cli.
package main

import (
	"os"

	"github.com/capilab/capilab/internal/cli"
	"github.com/capilab/capilab/internal/config"
)

func main() {
	os.Exit(cli.Main(cli.Process{Args: os.Args[1:], Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Environ: os.Environ(), EnvName: config.EnvName}))
}
