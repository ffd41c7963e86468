package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capilab/capilab/internal/report"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func step(name string, always bool, err error) Step {
	return Step{Name: name, Always: always, Timeout: time.Minute, Run: func(context.Context, *Phase) error { return err }}
}

func outcomes(ps []*Phase) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name+"="+string(p.Outcome))
	}
	return strings.Join(out, " ")
}

func TestFailureSkipsTheRestButCleanupRuns(t *testing.T) {
	ps := Execute(context.Background(), discard(), []Step{
		step("create", false, nil),
		step("check", false, errors.New("boom")),
		step("more", false, nil),
		step("delete", true, nil),
		step("leakcheck", true, fmt.Errorf("2 left: %w", ErrLeaked)),
	})
	if got := outcomes(ps); got != "create=passed check=failed more=skipped delete=passed leakcheck=leaked" {
		t.Errorf("outcomes: %s", got)
	}
	if v := VerdictOf(ps); v != VerdictInfra {
		t.Errorf("verdict %s", v)
	}
}

// Ctrl-C during a phase: it stops, the rest is skipped, and the cleanup
// phases run on a context of their own.
func TestInterruptRunsCleanupOnItsOwnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var cleanupCtxErr error
	ps := Execute(ctx, discard(), []Step{
		{Name: "check", Timeout: time.Minute, Run: func(ctx context.Context, _ *Phase) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}},
		step("more", false, nil),
		{Name: "delete", Always: true, Timeout: time.Minute, Run: func(ctx context.Context, _ *Phase) error {
			cleanupCtxErr = ctx.Err()
			return nil
		}},
	})
	if got := outcomes(ps); got != "check=interrupted more=skipped delete=passed" {
		t.Errorf("outcomes: %s", got)
	}
	if cleanupCtxErr != nil {
		t.Errorf("the cleanup phase ran on an ended context: %v", cleanupCtxErr)
	}
	if VerdictOf(ps) != VerdictInterrupted {
		t.Errorf("verdict %s", VerdictOf(ps))
	}
}

func TestPhaseTimeout(t *testing.T) {
	ps := Execute(context.Background(), discard(), []Step{{Name: "slow", Timeout: 20 * time.Millisecond, Run: func(ctx context.Context, _ *Phase) error {
		<-ctx.Done()
		return ctx.Err()
	}}, step("unbounded", true, nil)})
	ps2 := Execute(context.Background(), discard(), []Step{{Name: "x", Run: func(context.Context, *Phase) error { return nil }}})
	if ps[0].Outcome != Timeout || ps2[0].Outcome != Failed || !strings.Contains(ps2[0].Error, "no timeout") {
		t.Errorf("timeout: %s; unbounded: %s %s", outcomes(ps), outcomes(ps2), ps2[0].Error)
	}
}

func TestVerdictOrder(t *testing.T) {
	tests := []struct {
		outcomes []Outcome
		want     Verdict
	}{
		{[]Outcome{Passed, Passed}, VerdictPassed},
		{[]Outcome{Passed, TestsFailed}, VerdictTestsFailed},
		{[]Outcome{TestsFailed, Leaked}, VerdictLeaks},
		{[]Outcome{Leaked, Failed, TestsFailed}, VerdictInfra},
		{[]Outcome{Timeout}, VerdictInfra},
	}
	for _, tt := range tests {
		var ps []*Phase
		for _, o := range tt.outcomes {
			ps = append(ps, &Phase{Outcome: o})
		}
		if got := VerdictOf(ps); got != tt.want {
			t.Errorf("%v: %s, want %s", tt.outcomes, got, tt.want)
		}
	}
}

func record(id string, start time.Time, failing ...string) *Record {
	r := &Record{ID: id, Name: "nightly", Start: start, End: start.Add(10 * time.Minute), Clusters: []string{"a"}}
	p := &Phase{Name: "check", Start: start.Add(time.Minute), End: start.Add(4 * time.Minute), Outcome: Passed}
	p.AddCase(report.Case{Name: "works", Status: report.Passed})
	for _, f := range failing {
		p.AddCase(report.Case{Name: f, Status: report.Failed, Message: "expected x\ngot y", Location: "e2e/x.go:12"})
		p.Outcome = TestsFailed
	}
	p.AddArtifact("sonobuoy results", "check/a/results.tar.gz")
	leak := &Phase{Name: "leakcheck", Start: start.Add(8 * time.Minute), End: start.Add(9 * time.Minute), Outcome: Passed}
	r.Phases = []*Phase{{Name: "create", Start: start, End: start.Add(time.Minute), Outcome: Passed}, p, leak}
	r.Verdict = VerdictOf(r.Phases)
	return r
}

func TestCompareAndPrevious(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	prev := record(RunID(t0), t0, "old-failure")
	if err := prev.Write(filepath.Join(root, prev.ID)); err != nil {
		t.Fatal(err)
	}
	cur := record(RunID(t0.Add(24*time.Hour)), t0.Add(24*time.Hour), "new-failure")
	got, err := Previous(root, cur.ID)
	if err != nil || got == nil || got.ID != prev.ID {
		t.Fatalf("Previous: %+v %v", got, err)
	}
	c := Compare(got, cur)
	if strings.Join(c.NewlyFailing, ",") != "check: new-failure" || strings.Join(c.Fixed, ",") != "check: old-failure" || len(c.Durations) != 3 {
		t.Errorf("comparison %+v", c)
	}
	if p, _ := Previous(root, prev.ID); p != nil {
		t.Error("a run found itself as its previous run")
	}
}

func TestWriteRendersEverything(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	r := record(RunID(t0), t0, "[sig-node] Pods should fail")
	r.Phases[2].AddLeak(Leak{Type: "floating IP", Name: "172.24.4.20", ID: "f1", Cluster: "a", Reason: "OCCM floating IP of a Service"})
	r.Phases[2].Outcome = Leaked
	r.Verdict = VerdictOf(r.Phases)
	dir := t.TempDir()
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	for _, want := range []string{`id="verdict">leaks<`, `id="timeline"`, "[sig-node] Pods should fail", "expected x got y", "OCCM floating IP of a Service", `href="check/a/results.tar.gz"`} {
		if !strings.Contains(string(html), want) {
			t.Errorf("index.html lacks %q", want)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	if !strings.Contains(string(md), "| leakcheck | leaked |") || !strings.Contains(string(md), "**[sig-node] Pods should fail**") {
		t.Errorf("summary.md:\n%s", md)
	}
	junit, _ := os.ReadFile(filepath.Join(dir, "junit.xml"))
	for _, want := range []string{`testsuite name="create"`, `testsuite name="check"`, `name="phase leakcheck"`, "172.24.4.20"} {
		if !strings.Contains(string(junit), want) {
			t.Errorf("junit.xml lacks %q", want)
		}
	}
}
