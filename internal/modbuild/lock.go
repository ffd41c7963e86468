package modbuild

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/capilab/capilab/internal/wait"
)

// lock takes an exclusive file lock named name under CacheDir/locks,
// waiting (bounded, reported) while another process builds the same thing.
func (b *Builder) lock(ctx context.Context, name string) (func(), error) {
	unlock, err := FileLock(ctx, b.log(), filepath.Join(b.CacheDir, "locks", name+".lock"), "another process to finish building "+name)
	if err != nil {
		return nil, fmt.Errorf("build lock: %w", err)
	}
	return unlock, nil
}

// FileLock takes an exclusive lock on the file at path (created with its
// directory), waiting up to an hour — reported as waiting for what — while
// another holder has it. The kernel releases it when its holder ends,
// however it ends; the returned func releases it earlier.
func FileLock(ctx context.Context, log *slog.Logger, path, what string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	try := func() bool { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil }
	if !try() {
		err := wait.For(ctx, log, wait.Spec{What: what, Timeout: time.Hour, Interval: time.Second},
			func(context.Context) (bool, string, error) { return try(), "lock " + path + " held", nil })
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
