package wait

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestForDone(t *testing.T) {
	n := 0
	err := For(context.Background(), slog.New(slog.DiscardHandler), Spec{What: "x", Timeout: time.Minute, Interval: time.Millisecond},
		func(context.Context) (bool, string, error) { n++; return n == 3, "", nil })
	if err != nil || n != 3 {
		t.Fatalf("err=%v polls=%d", err, n)
	}
}

func TestForTimeoutNamesWhatAndLastStatus(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	err := For(context.Background(), log, Spec{What: "image foo to become active", Timeout: 30 * time.Millisecond, Interval: time.Millisecond, ReportEvery: 5 * time.Millisecond},
		func(context.Context) (bool, string, error) { return false, "saving", nil })
	if !IsTimeout(err) {
		t.Fatalf("want timeout, got %v", err)
	}
	if !strings.Contains(err.Error(), "image foo to become active") || !strings.Contains(err.Error(), "last status: saving") {
		t.Fatalf("error lacks what/status: %v", err)
	}
	if !strings.Contains(logs.String(), "waiting for image foo to become active") {
		t.Fatalf("no progress line logged: %s", logs.String())
	}
}

func TestForConditionError(t *testing.T) {
	boom := errors.New("boom")
	err := For(context.Background(), slog.New(slog.DiscardHandler), Spec{What: "y", Timeout: time.Minute},
		func(context.Context) (bool, string, error) { return false, "", boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "waiting for y") {
		t.Fatalf("got %v", err)
	}
}

func TestForCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	err := For(ctx, slog.New(slog.DiscardHandler), Spec{What: "z", Timeout: time.Hour, Interval: time.Hour},
		func(context.Context) (bool, string, error) { cancel(); return false, "", nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestForRequiresBound(t *testing.T) {
	called := false
	err := For(context.Background(), slog.New(slog.DiscardHandler), Spec{What: "unbounded"},
		func(context.Context) (bool, string, error) { called = true; return true, "", nil })
	if err == nil || called {
		t.Fatalf("an unbounded wait must be refused before polling: %v", err)
	}
}

func TestPollSchedule(t *testing.T) {
	tests := []struct {
		interval time.Duration
		want     []time.Duration
	}{
		{2 * time.Second, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second}},
		{400 * time.Millisecond, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond}},
		{50 * time.Millisecond, []time.Duration{50 * time.Millisecond, 50 * time.Millisecond}},
	}
	for _, tt := range tests {
		got := []time.Duration{firstInterval(tt.interval)}
		for len(got) < len(tt.want) {
			got = append(got, nextInterval(got[len(got)-1], tt.interval))
		}
		for i := range tt.want {
			if got[i] != tt.want[i] {
				t.Fatalf("interval %s: schedule %v, want %v", tt.interval, got, tt.want)
			}
		}
	}
}

// A check that hangs (an API that never answers) ends with the wait's
// budget, as a timeout naming what it waited for and the last status.
func TestForBoundsAHangingCondition(t *testing.T) {
	calls := 0
	res := make(chan error, 1)
	go func() {
		res <- For(context.Background(), slog.New(slog.DiscardHandler), Spec{What: "cluster c to be deleted", Timeout: 50 * time.Millisecond, Interval: time.Millisecond},
			func(ctx context.Context) (bool, string, error) {
				calls++
				if calls == 1 {
					return false, "2 machines left", nil
				}
				<-ctx.Done() // hangs until its context ends
				return false, "", ctx.Err()
			})
	}()
	select {
	case err := <-res:
		if !IsTimeout(err) || !strings.Contains(err.Error(), "cluster c to be deleted") ||
			!strings.Contains(err.Error(), "2 machines left") || !strings.Contains(err.Error(), "did not finish within the budget") {
			t.Fatalf("got %v, want a timeout naming what, the last status and the unfinished check", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("For did not return: a hanging condition outlived the wait's budget")
	}
}
