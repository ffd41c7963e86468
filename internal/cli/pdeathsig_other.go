//go:build !linux

package cli

// dieWithParent is Linux-only (PR_SET_PDEATHSIG); elsewhere the work ends
// with its parent only when the parent forwards signals.
func dieWithParent(int) error { return nil }
