package imagebuild

import (
	"context"
	"testing"
	"time"
)

// TestLockTakesTurns: while one holder has the lock a second one waits and
// gives up when its context ends; once released, the next one gets it.
func TestLockTakesTurns(t *testing.T) {
	b := &Builder{CacheDir: t.TempDir()}
	unlock, err := b.Lock(t.Context(), "push")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(ctx, "push"); err == nil {
		t.Fatal("a second holder got the lock while the first held it")
	}
	other, err := b.Lock(t.Context(), "other")
	if err != nil {
		t.Fatalf("a lock of another name: %v", err)
	}
	other()
	unlock()
	again, err := b.Lock(t.Context(), "push")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
}
