package conformance

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// BusyError says another run is active against the same cluster.
type BusyError struct{ Msg string }

func (e *BusyError) Error() string { return e.Msg }

// IsBusy reports whether err is a refused second run.
func IsBusy(err error) bool {
	var be *BusyError
	return errors.As(err, &be)
}

// localLock is an exclusive advisory lock (flock) on a file named after the
// cluster's API server: a second run from this machine against the same
// cluster is refused at once, and the kernel releases the lock when the
// process ends, however it ends.
type localLock struct{ f *os.File }

func lockFile(dir, server string) string {
	sum := sha256.Sum256([]byte(server))
	return filepath.Join(dir, "check-"+hex.EncodeToString(sum[:8])+".lock")
}

func acquireLocal(dir, server, cluster, owner string) (*localLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock dir: %w", err)
	}
	path := lockFile(dir, server)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &BusyError{Msg: fmt.Sprintf("another check is running against cluster %s (%s) from this machine (%s); wait for it to finish",
				cluster, server, strings.TrimSpace(string(holder)))}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(owner+"\n"), 0)
	}
	return &localLock{f: f}, nil
}

func (l *localLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}
