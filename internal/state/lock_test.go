package state

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLockIsExclusiveAndSaysWhoHoldsIt(t *testing.T) {
	d := Dir(t.TempDir())
	first, err := d.Lock("clean:full")
	if err != nil {
		t.Fatal(err)
	}
	if first.TakenOver != nil {
		t.Errorf("fresh lock reports a takeover from %v", first.TakenOver)
	}
	_, err = d.Lock("appcred:create")
	var busy *BusyError
	if !errors.As(err, &busy) {
		t.Fatalf("second lock: %v, want a BusyError", err)
	}
	if busy.Holder.PID != os.Getpid() || busy.Holder.Target != "clean:full" || time.Since(busy.Holder.Since) > time.Minute {
		t.Errorf("holder %+v, want pid %d, target clean:full, since just now", busy.Holder, os.Getpid())
	}
	for _, want := range []string{"clean:full", "pid ", "since ", LockFile} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	first.Release()
	again, err := d.Lock("appcred:create")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if again.TakenOver != nil {
		t.Errorf("a released lock reports a takeover from %v", again.TakenOver)
	}
	again.Release()
}

// TestLockOfAKilledRunIsTakenOver: a process takes the lock and is killed
// with SIGKILL (no chance to release); the next Lock succeeds at once and
// reports the dead holder.
func TestLockOfAKilledRunIsTakenOver(t *testing.T) {
	if os.Getenv("CAPILAB_LOCK_HELPER") != "" {
		l, err := Dir(os.Getenv("CAPILAB_LOCK_HELPER")).Lock("clean:full")
		if err != nil {
			os.Exit(5)
		}
		_ = l
		os.Stdout.WriteString("locked\n")
		_, _ = io.ReadAll(os.Stdin) // held until the test kills this process
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockOfAKilledRunIsTakenOver$")
	cmd.Env = append(os.Environ(), "CAPILAB_LOCK_HELPER="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe() // never written: the helper blocks reading it
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		cmd.Process.Kill()
		t.Fatalf("helper did not take the lock: %q %v", buf, err)
	}
	if _, err := Dir(dir).Lock("image:register"); err == nil {
		t.Fatal("lock taken while the helper holds it")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	l, err := Dir(dir).Lock("image:register")
	if err != nil {
		t.Fatalf("lock of a killed run not taken over: %v", err)
	}
	defer l.Release()
	if l.TakenOver == nil || l.TakenOver.PID != cmd.Process.Pid || l.TakenOver.Target != "clean:full" {
		t.Fatalf("takeover %+v, want the killed helper (pid %d, clean:full)", l.TakenOver, cmd.Process.Pid)
	}
	data, _ := os.ReadFile(filepath.Join(dir, LockFile))
	if !strings.Contains(string(data), `"image:register"`) {
		t.Errorf("lock file does not name the new holder: %s", data)
	}
}
