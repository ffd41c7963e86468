package image

import (
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/capilab/capilab/internal/logging"
)

// meter logs the progress of a long byte stream (download, hashing,
// upload): bytes, percent when the total is known, and rate.
type meter struct {
	step  *logging.Step
	what  string // "download", "upload", "sha256"
	total int64  // <= 0: unknown
	every time.Duration

	mu      sync.Mutex
	done    int64
	start   time.Time
	last    time.Time
	started int64 // bytes already there when the meter started (resumed download)
}

func newMeter(step *logging.Step, what string, total, already int64, every time.Duration) *meter {
	now := time.Now()
	return &meter{step: step, what: what, total: total, every: every, start: now, last: now, done: already, started: already}
}

// add counts n more bytes and logs when a report is due.
func (m *meter) add(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done += int64(n)
	if now := time.Now(); now.Sub(m.last) >= m.every {
		m.last = now
		m.step.Progress(m.what, m.attrsLocked(now)...)
	}
}

// finish logs the final figures.
func (m *meter) finish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.step.Progress(m.what+" done", m.attrsLocked(time.Now())...)
}

func (m *meter) bytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.done
}

func (m *meter) attrsLocked(now time.Time) []any {
	attrs := []any{"bytes", humanBytes(m.done)}
	if m.total > 0 {
		attrs = append(attrs, "of", humanBytes(m.total), "percent", fmt.Sprintf("%.1f%%", 100*float64(m.done)/float64(m.total)))
	}
	if secs := now.Sub(m.start).Seconds(); secs > 0 {
		attrs = append(attrs, "rate", humanBytes(int64(float64(m.done-m.started)/secs))+"/s")
	}
	return attrs
}

// humanBytes formats a byte count in binary units: 512 B, 3.2 MiB, 1.0 GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// meteredReader counts and hashes what passes through it.
type meteredReader struct {
	r      io.Reader
	meter  *meter
	hashes []hash.Hash
	eof    bool
}

func (mr *meteredReader) Read(p []byte) (int, error) {
	n, err := mr.r.Read(p)
	if n > 0 {
		for _, h := range mr.hashes {
			h.Write(p[:n])
		}
		mr.meter.add(n)
	}
	if err == io.EOF {
		mr.eof = true
	}
	return n, err
}
