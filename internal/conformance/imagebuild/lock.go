package imagebuild

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/capilab/capilab/internal/fsutil"
	"github.com/capilab/capilab/internal/wait"
)

// Lock takes an exclusive file lock on CacheDir/<name>.lock: the work
// directories under CacheDir (Debian root file systems, unpacked packages,
// test certificates) are shared by every check on this machine, so checks of several clusters at once, in one
// process or several, take turns. It waits (bounded, reported) while
// another holds it; the kernel releases it when its holder ends, however
// it ends.
func (b *Builder) Lock(ctx context.Context, name string) (func(), error) {
	unlock, err := fsutil.Lock(ctx, b.log(), filepath.Join(b.CacheDir, name+".lock"),
		wait.Spec{What: "another check to release " + name, Timeout: time.Hour, Interval: time.Second})
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return unlock, nil
}
