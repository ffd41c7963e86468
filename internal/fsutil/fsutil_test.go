package fsutil

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/wait"
)

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret.yaml")
	for _, content := range []string{"first", "second, longer content"} {
		if err := WriteAtomic(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := WriteAtomic(filepath.Join(dir, "missing", "f"), nil, 0o644); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

// Many writers at once: each write lands whole and no temporary file stays.
func TestWriteAtomicConcurrent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "status.json")
	contents := map[string]bool{}
	var wg sync.WaitGroup
	for i := range 8 {
		c := string(make([]byte, 4096+i))
		contents[c] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := WriteAtomic(p, []byte(c), 0o644); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := os.ReadFile(p)
	if err != nil || !contents[string(got)] {
		t.Fatalf("content of %d bytes is none of the writes (%v)", len(got), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left: %d entries", len(entries))
	}
}

func TestLockTakesTurnsAndIsBounded(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := filepath.Join(t.TempDir(), "locks", "x.lock")
	spec := wait.Spec{What: "the test lock", Timeout: 500 * time.Millisecond, Interval: 50 * time.Millisecond}
	unlock, err := Lock(t.Context(), log, p, spec)
	if err != nil {
		t.Fatal(err)
	}
	// A second holder (another open file description, as another process
	// would have) waits and gives up at the bound.
	_, err = Lock(t.Context(), log, p, spec)
	var te *wait.TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("second Lock while held: %v, want a timeout", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Lock(ctx, log, p, spec); err == nil {
		t.Fatal("Lock with a cancelled context succeeded while held")
	}
	unlock()
	unlock2, err := Lock(t.Context(), log, p, spec)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	unlock2()
	fi, err := os.Stat(filepath.Dir(p))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("lock directory mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}
