package forward

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// backend answers every connection with its name and closes it.
func backend(t *testing.T, name string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, name+":"+line)
			}()
		}
	}()
	return l.Addr().String()
}

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func ask(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "hi\n")
	b, _ := io.ReadAll(c)
	return strings.TrimSpace(string(b))
}

func TestForwarder(t *testing.T) {
	a, b, dead := backend(t, "a"), backend(t, "b"), deadAddr(t)
	tests := []struct {
		name     string
		backends []string
		want     map[string]bool // answers allowed
		spread   bool            // every allowed answer must appear
	}{
		{"one backend", []string{a}, map[string]bool{"a:hi": true}, true},
		{"round robin", []string{a, b}, map[string]bool{"a:hi": true, "b:hi": true}, true},
		{"dead backend skipped", []string{dead, b}, map[string]bool{"b:hi": true}, true},
		{"no backend answers", []string{dead}, map[string]bool{"": true}, true},
		{"no backends", nil, map[string]bool{"": true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Listen(context.Background(), "127.0.0.1:0", tt.backends, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got := map[string]bool{}
			for range 6 {
				got[ask(t, f.Addr().String())] = true
			}
			for g := range got {
				if !tt.want[g] {
					t.Errorf("answer %q not expected (want one of %v)", g, tt.want)
				}
			}
			if tt.spread && len(got) != len(tt.want) {
				t.Errorf("answers %v, want all of %v", got, tt.want)
			}
		})
	}
}

// Changing the backends takes effect for new connections; a connection that
// is open keeps its backend.
func TestSetBackendsKeepsOpenConnections(t *testing.T) {
	a, b := backend(t, "a"), backend(t, "b")
	f, err := Listen(context.Background(), "127.0.0.1:0", []string{a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	open, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	// make sure the relay has dialled a before switching
	deadline := time.Now().Add(2 * time.Second)
	for f.Active() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	f.SetBackends([]string{b})
	if got := ask(t, f.Addr().String()); got != "b:hi" {
		t.Errorf("new connection answered %q, want b:hi", got)
	}
	open.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(open, "old\n")
	got, _ := io.ReadAll(open)
	if strings.TrimSpace(string(got)) != "a:old" {
		t.Errorf("open connection answered %q, want a:old", got)
	}
}

func TestCloseEndsConnections(t *testing.T) {
	// a backend that never answers keeps the relay open
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	f, err := Listen(context.Background(), "127.0.0.1:0", []string{l.Addr().String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for f.Active() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { f.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the open connection")
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("client connection still open after Close")
	}
}
