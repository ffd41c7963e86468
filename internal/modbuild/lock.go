package modbuild

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/capilab/capilab/internal/fsutil"
	"github.com/capilab/capilab/internal/wait"
)

// lock takes an exclusive file lock named name under CacheDir/locks,
// waiting (bounded, reported) while another process builds the same thing.
func (b *Builder) lock(ctx context.Context, name string) (func(), error) {
	unlock, err := fsutil.Lock(ctx, b.log(), filepath.Join(b.CacheDir, "locks", name+".lock"),
		wait.Spec{What: "another process to finish building " + name, Timeout: time.Hour, Interval: time.Second})
	if err != nil {
		return nil, fmt.Errorf("build lock: %w", err)
	}
	return unlock, nil
}
