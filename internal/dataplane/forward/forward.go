// Package forward is a small TCP forwarder: it accepts connections on one
// address and relays each to a backend chosen round robin among the
// backends it currently has, trying the next one when a backend refuses.
// The backend set can change at any time (load balancer members come and
// go during a rolling update) without dropping established connections.
package forward

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DialTimeout bounds connecting to one backend.
const DialTimeout = 3 * time.Second

// Forwarder relays connections from one listener to backends.
type Forwarder struct {
	listener net.Listener
	log      *slog.Logger

	mu       sync.Mutex
	backends []string
	next     atomic.Uint64

	conns  sync.WaitGroup
	active atomic.Int64
	closed chan struct{}
	once   sync.Once
	// live holds the open client connections so Close can end them.
	liveMu sync.Mutex
	live   map[net.Conn]struct{}
}

// Listen starts forwarding from addr (host:port) to backends.
func Listen(ctx context.Context, addr string, backends []string, log *slog.Logger) (*Forwarder, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return Serve(l, backends, log), nil
}

// Serve forwards the connections accepted on l.
func Serve(l net.Listener, backends []string, log *slog.Logger) *Forwarder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{listener: l, log: log, closed: make(chan struct{}), live: map[net.Conn]struct{}{}}
	f.SetBackends(backends)
	go f.accept()
	return f
}

// Addr is the address the forwarder listens on.
func (f *Forwarder) Addr() net.Addr { return f.listener.Addr() }

// Active is the number of connections being relayed.
func (f *Forwarder) Active() int64 { return f.active.Load() }

// SetBackends replaces the backend set (host:port each). New connections
// use the new set; established ones keep their backend.
func (f *Forwarder) SetBackends(backends []string) {
	f.mu.Lock()
	f.backends = append([]string(nil), backends...)
	f.mu.Unlock()
}

// Backends returns the current backend set.
func (f *Forwarder) Backends() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.backends...)
}

// Close stops listening and ends every relayed connection.
func (f *Forwarder) Close() error {
	var err error
	f.once.Do(func() {
		close(f.closed)
		err = f.listener.Close()
		f.liveMu.Lock()
		for c := range f.live {
			c.Close()
		}
		f.liveMu.Unlock()
		f.conns.Wait()
	})
	return err
}

func (f *Forwarder) accept() {
	for {
		c, err := f.listener.Accept()
		if err != nil {
			select {
			case <-f.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			f.log.Warn("accept failed", "listen", f.listener.Addr().String(), "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		f.liveMu.Lock()
		select {
		case <-f.closed:
			f.liveMu.Unlock()
			c.Close()
			return
		default:
		}
		f.live[c] = struct{}{}
		f.conns.Add(1)
		f.liveMu.Unlock()
		go f.relay(c)
	}
}

func (f *Forwarder) relay(client net.Conn) {
	defer f.conns.Done()
	defer func() {
		f.liveMu.Lock()
		delete(f.live, client)
		f.liveMu.Unlock()
		client.Close()
	}()
	f.active.Add(1)
	defer f.active.Add(-1)
	backend, err := f.dial()
	if err != nil {
		f.log.Debug("no backend answers", "listen", f.listener.Addr().String(), "client", client.RemoteAddr().String(), "err", err)
		return
	}
	defer backend.Close()
	f.liveMu.Lock()
	f.live[backend] = struct{}{}
	f.liveMu.Unlock()
	defer func() {
		f.liveMu.Lock()
		delete(f.live, backend)
		f.liveMu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() { pipe(backend, client); done <- struct{}{} }()
	go func() { pipe(client, backend); done <- struct{}{} }()
	<-done
	<-done
}

// dial tries every backend once, starting at the next in round-robin order.
func (f *Forwarder) dial() (net.Conn, error) {
	bs := f.Backends()
	if len(bs) == 0 {
		return nil, errors.New("no backends")
	}
	start := int(f.next.Add(1) % uint64(len(bs)))
	var errs []error
	for i := range bs {
		addr := bs[(start+i)%len(bs)]
		c, err := net.DialTimeout("tcp", addr, DialTimeout)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// pipe copies src to dst, then half-closes dst so the peer sees EOF.
func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if tc, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	} else {
		dst.Close()
	}
}
