package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// LockFile is the lab's lock, in the state directory. A run that changes
// the lab (fullclean, credentials, images, clusters) holds it, so two such
// runs of one lab never overlap (two fullcleans would trim each other's
// journal; two creates would race for the same names).
const LockFile = "lab.lock"

// Holder says who holds the lab's lock.
type Holder struct {
	PID    int       `json:"pid"`
	Target string    `json:"target"`
	Since  time.Time `json:"since"`
	Host   string    `json:"host,omitempty"`
}

func (h Holder) String() string {
	s := fmt.Sprintf("%s (pid %d", h.Target, h.PID)
	if h.Host != "" {
		s += " on " + h.Host
	}
	if !h.Since.IsZero() {
		s += fmt.Sprintf(", since %s, %s ago", h.Since.Local().Format(time.RFC3339), time.Since(h.Since).Round(time.Second))
	}
	return s + ")"
}

// BusyError is returned when another run holds the lock.
type BusyError struct {
	Path   string
	Holder Holder // zero when the holder could not be read
}

func (e *BusyError) Error() string {
	who := "another capilab run"
	if e.Holder.PID != 0 {
		who = e.Holder.String()
	}
	return fmt.Sprintf("the lab is busy: %s holds its lock %s; nothing was done (wait for it to finish, or stop it)", who, e.Path)
}

// Lock is a held lab lock.
type Lock struct {
	f *os.File
	// TakenOver is the holder recorded by a run that ended without
	// releasing the lock (killed): the lock was free and is ours now.
	TakenOver *Holder
}

// Lock takes the lab's lock for target, or returns a *BusyError naming the
// run that holds it. It never waits. The lock is an flock(2) on the file,
// which the kernel releases when the holding process ends, however it ends:
// a lock left by a killed run is free, and its record (pid, target, since)
// is only information, reported as TakenOver.
func (d Dir) Lock(target string) (*Lock, error) {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, fmt.Errorf("state %s: %w", d, err)
	}
	path := filepath.Join(string(d), LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", d, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &BusyError{Path: path, Holder: readHolder(path)}
		}
		return nil, fmt.Errorf("state %s: locking %s: %w", d, path, err)
	}
	l := &Lock{f: f}
	if old := readHolder(path); old.PID != 0 {
		l.TakenOver = &old
	}
	host, _ := os.Hostname()
	data, _ := json.Marshal(Holder{PID: os.Getpid(), Target: target, Since: time.Now().UTC().Truncate(time.Second), Host: host})
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt(append(data, '\n'), 0)
		if err == nil {
			err = f.Sync()
		}
	}
	if err != nil {
		l.Release()
		return nil, fmt.Errorf("state %s: recording the lock holder in %s: %w", d, path, err)
	}
	return l, nil
}

// Release clears the holder record and releases the lock.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
}

// readHolder reads the record of the current or last holder (zero if none
// or unreadable: a holder writes it right after taking the lock).
func readHolder(path string) Holder {
	data, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(data)) == "" {
		return Holder{}
	}
	var h Holder
	if json.Unmarshal(data, &h) != nil {
		return Holder{}
	}
	return h
}
