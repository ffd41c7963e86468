// Package fsutil holds the two file operations capilab's runs share: a file
// written whole or not at all, and a lock between processes.
package fsutil

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/capilab/capilab/internal/wait"
)

// WriteAtomic replaces the file at path with data, mode perm: a reader sees
// the old content or the new, never a part, and two writers never share a
// temporary file. The directory must exist.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Lock takes an exclusive flock(2) on the file at path (created 0600, with
// its directory 0700 where missing), waiting while another process holds
// it — the wait named and bounded by spec. The kernel releases the lock when
// its holder ends, however it ends; the returned func releases it earlier.
// The descriptor is close-on-exec: a program the holder starts does not
// keep the lock.
func Lock(ctx context.Context, log *slog.Logger, path string, spec wait.Spec) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	err = wait.For(ctx, log, spec, func(context.Context) (bool, string, error) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, "lock " + path + " held by another process", nil
		}
		return err == nil, "", err
	})
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
