package dataplane

import (
	"testing"
	"time"
)

func TestFailStreak(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type pass struct {
		at     int
		failed bool
	}
	tests := []struct {
		name      string
		passes    []pass
		wantN     int
		wantSince time.Time
	}{
		{"no pass", nil, 0, time.Time{}},
		{"one success", []pass{{0, false}}, 0, time.Time{}},
		{"one failure", []pass{{0, false}, {2, true}}, 1, at(2)},
		{"failures in a row keep the first start", []pass{{2, true}, {94, true}, {186, true}}, 3, at(2)},
		{"a success ends the streak", []pass{{2, true}, {94, true}, {96, false}}, 0, time.Time{}},
		{"a new streak starts afresh", []pass{{2, true}, {4, false}, {6, true}, {8, true}}, 2, at(6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f failStreak
			for _, p := range tt.passes {
				f.record(at(p.at), p.failed)
			}
			if f.n != tt.wantN || !f.since.Equal(tt.wantSince) {
				t.Errorf("after %v: %d failed since %v, want %d since %v", tt.passes, f.n, f.since, tt.wantN, tt.wantSince)
			}
		})
	}
}
