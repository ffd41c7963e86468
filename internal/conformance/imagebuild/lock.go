package imagebuild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/capilab/capilab/internal/wait"
)

// Lock takes an exclusive file lock on CacheDir/<name>.lock: the work
// directories under CacheDir (Debian root file systems, unpacked packages,
// test certificates) and the temporary tags of a push are shared by every
// check on this machine, so checks of several clusters at once, in one
// process or several, take turns. It waits (bounded, reported) while
// another holds it; the kernel releases it when its holder ends, however
// it ends.
func (b *Builder) Lock(ctx context.Context, name string) (func(), error) {
	if err := os.MkdirAll(b.CacheDir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(b.CacheDir, name+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	try := func() bool { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil }
	if !try() {
		err := wait.For(ctx, b.log(), wait.Spec{What: "another check to release " + name, Timeout: time.Hour, Interval: time.Second},
			func(context.Context) (bool, string, error) { return try(), "lock " + path + " held", nil })
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
