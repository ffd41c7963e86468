package modbuild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/capilab/capilab/internal/wait"
)

// lock takes an exclusive file lock named name under CacheDir/locks,
// waiting (bounded, reported) while another process builds the same thing.
func (b *Builder) lock(ctx context.Context, name string) (func(), error) {
	dir := filepath.Join(b.CacheDir, "locks")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	try := func() bool { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil }
	if !try() {
		err := wait.For(ctx, b.log(), wait.Spec{What: "another process to finish building " + name, Timeout: time.Hour, Interval: time.Second},
			func(context.Context) (bool, string, error) { return try(), "lock " + path + " held", nil })
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("build lock: %w", err)
		}
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
