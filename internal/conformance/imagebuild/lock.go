package imagebuild

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/capilab/capilab/internal/modbuild"
)

// Lock takes an exclusive file lock on CacheDir/<name>.lock: the work
// directories under CacheDir (Debian root file systems, unpacked packages,
// test certificates) are shared by every check on this machine, so checks of several clusters at once, in one
// process or several, take turns. It waits (bounded, reported) while
// another holds it; the kernel releases it when its holder ends, however
// it ends.
func (b *Builder) Lock(ctx context.Context, name string) (func(), error) {
	unlock, err := modbuild.FileLock(ctx, b.log(), filepath.Join(b.CacheDir, name+".lock"), "another check to release "+name)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return unlock, nil
}
