package cli

import (
	"fmt"
	"os"
	"syscall"
)

// dieWithParent asks the kernel to send SIGTERM to this process when its
// parent ends (PR_SET_PDEATHSIG; kept across exec, so it holds for the
// targets binary too). Where a parent stays between the caller and the work
// — `go run` (which lets SIGTERM and SIGKILL end itself, not its child) and
// make (whose SIGKILL reaches no child) — a killed caller thus stops the
// work. The targets take SIGTERM as an interrupt: they stop starting
// anything, end what runs within a bound, and exit.
func dieWithParent(ppid int) error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0); errno != 0 {
		return fmt.Errorf("setting the parent-death signal: %w", errno)
	}
	// The parent may have ended before the request took effect.
	if os.Getppid() != ppid {
		return fmt.Errorf("the process that started capilab (pid %d) has ended; nothing was run", ppid)
	}
	return nil
}
