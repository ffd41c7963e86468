//go:build mage

// Mage targets of capilab. Targets only parse input and call the engine in
// internal/; `go run mage.go -l` lists them, `make help` shows the make names.
package main

import (
	"fmt"
)

// notImplemented is what a target returns until its issue lands: a loud
// failure with a non-zero exit, never a fake success.
func notImplemented(target string) error {
	return fmt.Errorf("%s: not implemented yet", target)
}
