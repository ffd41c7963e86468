//go:build ignore

// Zero-install entry point: `go run mage.go <target>` compiles and runs the
// targets in magefiles/ with the mage version pinned in go.mod, so a machine
// needs nothing but Go.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
