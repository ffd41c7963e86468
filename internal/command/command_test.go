package command

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestStringIsPasteable(t *testing.T) {
	tests := []struct {
		cmd  *Cmd
		want string
	}{
		{New("docker", "ps", "-a"), "docker ps -a"},
		{New("sh", "-c", "echo 'a b'"), `sh -c 'echo '"'"'a b'"'"''`},
		{New("go", "build", "./core").WithDir("/tmp/x y").WithEnv(nil, "CGO_ENABLED=0", "GOFLAGS=-mod=mod -trimpath"),
			`(cd '/tmp/x y' && CGO_ENABLED=0 GOFLAGS='-mod=mod -trimpath' go build ./core)`},
	}
	for _, tt := range tests {
		if got := tt.cmd.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}
}

func TestRunErrorCarriesCommandCodeAndTail(t *testing.T) {
	err := New("sh", "-c", "echo first; echo to-stderr >&2; exit 7").Run(context.Background())
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *RunError", err)
	}
	if re.ExitCode != 7 || ExitCode(err) != 7 {
		t.Errorf("exit code %d, want 7", re.ExitCode)
	}
	if !strings.Contains(re.Tail, "first") || !strings.Contains(re.Tail, "to-stderr") {
		t.Errorf("tail %q lacks the output", re.Tail)
	}
	if !strings.Contains(err.Error(), "sh -c 'echo first; echo to-stderr >&2; exit 7'") {
		t.Errorf("error %q lacks the pasteable command", err)
	}
}

func TestOutputSeparatesStdout(t *testing.T) {
	out, err := New("sh", "-c", "echo out; echo err >&2").Output(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "out\n" {
		t.Errorf("stdout %q", out)
	}
}

func TestEnvOnTopOfBase(t *testing.T) {
	out, err := New("sh", "-c", "echo $A-$B").WithEnv([]string{"A=1", "B=2", "PATH=/usr/bin:/bin"}, "B=3").Output(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "1-3" {
		t.Errorf("got %q, want 1-3", got)
	}
}

func TestTailKeepsTheEnd(t *testing.T) {
	err := New("sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done; exit 1").Run(context.Background())
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatal(err)
	}
	if !strings.Contains(re.Tail, "line-2999") || strings.Contains(re.Tail, "line-10\n") {
		t.Errorf("tail does not hold just the end: %d bytes", len(re.Tail))
	}
	if len(re.Tail) > TailBytes+4 {
		t.Errorf("tail has %d bytes, more than %d", len(re.Tail), TailBytes)
	}
}

func TestContextEndStopsTheProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New("sleep", "60").Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the command outlived its context")
	}
}

func TestMissingProgram(t *testing.T) {
	err := New("capilab-no-such-program").Run(context.Background())
	var re *RunError
	if !errors.As(err, &re) || re.ExitCode != -1 {
		t.Fatalf("err = %v, want RunError with code -1", err)
	}
}

// Stdout and stderr are copied by two goroutines; what both write to (the
// combined output, the tail of a failed run) keeps every line of both
// (under -race, unsynchronized writes fail this test).
func TestCombinedOutputKeepsBothStreams(t *testing.T) {
	const n = 300
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo out$i; echo err$i >&2; i=$((i+1)); done; exit 3`, n)
	out, err := New("sh", "-c", script).CombinedOutput(context.Background())
	if ExitCode(err) != 3 {
		t.Fatalf("exit code %d (%v), want 3", ExitCode(err), err)
	}
	var re *RunError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *RunError", err)
	}
	for i := range n {
		for _, want := range []string{fmt.Sprintf("out%d\n", i), fmt.Sprintf("err%d\n", i)} {
			if !strings.Contains(string(out), want) {
				t.Fatalf("combined output lacks %q", want)
			}
		}
	}
	if !strings.Contains(re.Tail, fmt.Sprintf("out%d\n", n-1)) || !strings.Contains(re.Tail, fmt.Sprintf("err%d\n", n-1)) {
		t.Errorf("tail lacks the last lines of both streams: %q", re.Tail)
	}
}
