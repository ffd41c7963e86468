//go:build mage

// Mage targets of capilab. Targets only parse input and call the engine in
// internal/; `go run mage.go -l` lists them, `make help` shows the make names.
package main

import (
	"context"
	"fmt"

	"github.com/capilab/capilab/internal/lab"
)

// run executes the named target body (internal/lab.Targets) with this
// process's settings: invalid settings stop it before any cloud or cluster
// call, with exit code 2.
func run(ctx context.Context, name string) error {
	target, ok := lab.Targets()[name]
	if !ok {
		return fmt.Errorf("%s: no such target in internal/lab", name)
	}
	return lab.Main(ctx, lab.OptionsFromProcess(), target)
}

// notImplemented is what a target returns until its issue lands: a loud
// failure with a non-zero exit, never a fake success.
func notImplemented(target string) error {
	return lab.NotImplementedError(target)
}
