package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/capilab/capilab/internal/dataplane/forward"
)

// LBConfig is what a load balancer's helper container forwards: written by
// the agent into the helper's config directory, re-read by the helper
// whenever it changes, so member changes apply without a restart.
type LBConfig struct {
	LoadBalancer string       `json:"loadbalancer"`
	Listeners    []LBListener `json:"listeners"`
}

// LBListener is one TCP port of the VIP and its pool.
type LBListener struct {
	Port    int        `json:"port"`
	Members []LBMember `json:"members"`
	Monitor *LBMonitor `json:"monitor,omitempty"`
}

// LBMember is one backend.
type LBMember struct {
	Address string `json:"address"`
	Port    int    `json:"port"`
	Backup  bool   `json:"backup,omitempty"`
}

func (m LBMember) hostPort() string { return net.JoinHostPort(m.Address, strconv.Itoa(m.Port)) }

// LBMonitor is a health monitor: members failing Fall checks in a row are
// skipped until they pass Rise in a row. Every type is checked as a TCP
// connect (devcloud's amphorae do not exist to run HTTP checks).
type LBMonitor struct {
	Delay   time.Duration `json:"delay"`
	Timeout time.Duration `json:"timeout"`
	Rise    int           `json:"rise"`
	Fall    int           `json:"fall"`
}

// RunLB is the helper's main loop: it serves the listeners of the config
// file at path and follows its changes until ctx ends.
func RunLB(ctx context.Context, path string, log *slog.Logger) error {
	h := &lbHelper{log: log, listeners: map[int]*lbListener{}}
	defer h.closeAll()
	var lastMod time.Time
	var lastSize int64 = -1
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		fi, err := os.Stat(path)
		if err == nil && (!fi.ModTime().Equal(lastMod) || fi.Size() != lastSize) {
			raw, rerr := os.ReadFile(path)
			var cfg LBConfig
			if rerr == nil {
				rerr = json.Unmarshal(raw, &cfg)
			}
			if rerr != nil {
				log.Warn("config unreadable; keeping the current one", "path", path, "err", rerr)
			} else {
				lastMod, lastSize = fi.ModTime(), fi.Size()
				h.apply(ctx, cfg)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

type lbHelper struct {
	log       *slog.Logger
	listeners map[int]*lbListener
}

type lbListener struct {
	fwd    *forward.Forwarder
	cancel context.CancelFunc

	mu      sync.Mutex
	cfg     LBListener
	healthy map[string]bool // member → up
	streak  map[string]int  // consecutive results against the current state
}

func (h *lbHelper) closeAll() {
	for p, l := range h.listeners {
		l.cancel()
		l.fwd.Close()
		delete(h.listeners, p)
	}
}

func (h *lbHelper) apply(ctx context.Context, cfg LBConfig) {
	want := map[int]LBListener{}
	for _, l := range cfg.Listeners {
		want[l.Port] = l
	}
	for port, l := range h.listeners {
		if _, ok := want[port]; !ok {
			h.log.Info("listener removed", "port", port)
			l.cancel()
			l.fwd.Close()
			delete(h.listeners, port)
		}
	}
	for port, lc := range want {
		l, ok := h.listeners[port]
		if !ok {
			f, err := forward.Listen(ctx, ":"+strconv.Itoa(port), nil, h.log.With("port", port))
			if err != nil {
				h.log.Error("cannot listen", "port", port, "err", err)
				continue
			}
			lctx, cancel := context.WithCancel(ctx)
			l = &lbListener{fwd: f, cancel: cancel, healthy: map[string]bool{}, streak: map[string]int{}}
			h.listeners[port] = l
			go l.monitor(lctx, h.log.With("port", port))
			h.log.Info("listening", "port", port)
		}
		l.mu.Lock()
		l.cfg = lc
		for _, m := range lc.Members {
			if _, known := l.healthy[m.hostPort()]; !known {
				l.healthy[m.hostPort()] = true // members start in service, as Octavia's do
			}
		}
		l.mu.Unlock()
		l.update()
		h.log.Info("members", "port", port, "members", len(lc.Members), "backends", l.fwd.Backends())
	}
}

// update sets the forwarder's backends: the healthy primary members, else
// the healthy backups.
func (l *lbListener) update() {
	l.mu.Lock()
	defer l.mu.Unlock()
	var primary, backup []string
	for _, m := range l.cfg.Members {
		if l.cfg.Monitor != nil && !l.healthy[m.hostPort()] {
			continue
		}
		if m.Backup {
			backup = append(backup, m.hostPort())
		} else {
			primary = append(primary, m.hostPort())
		}
	}
	if len(primary) == 0 {
		primary = backup
	}
	if !slices.Equal(primary, l.fwd.Backends()) {
		l.fwd.SetBackends(primary)
	}
}

// monitor runs the health checks of the listener's monitor, if it has one.
func (l *lbListener) monitor(ctx context.Context, log *slog.Logger) {
	for {
		l.mu.Lock()
		mon := l.cfg.Monitor
		members := append([]LBMember(nil), l.cfg.Members...)
		l.mu.Unlock()
		delay := time.Second
		if mon != nil {
			delay = max(mon.Delay, time.Second)
			timeout := min(max(mon.Timeout, 500*time.Millisecond), delay)
			changed := false
			for _, m := range members {
				addr := m.hostPort()
				c, err := net.DialTimeout("tcp", addr, timeout)
				up := err == nil
				if c != nil {
					c.Close()
				}
				l.mu.Lock()
				if up == l.healthy[addr] {
					l.streak[addr] = 0
				} else {
					l.streak[addr]++
					need := mon.Fall
					if up {
						need = mon.Rise
					}
					if l.streak[addr] >= max(need, 1) {
						l.healthy[addr] = up
						l.streak[addr] = 0
						changed = true
						log.Info("member "+map[bool]string{true: "up", false: "down"}[up], "member", addr)
					}
				}
				l.mu.Unlock()
			}
			if changed {
				l.update()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// lbConfig derives a load balancer's helper config from Octavia's view.
func lbConfig(lb LoadBalancer, v *lbView) (LBConfig, []string) {
	cfg := LBConfig{LoadBalancer: lb.ID}
	var skipped []string
	for _, l := range v.listeners[lb.ID] {
		if !l.AdminStateUp {
			continue
		}
		switch l.Protocol {
		case "TCP", "HTTP", "HTTPS", "TERMINATED_HTTPS", "PROXY", "PROXYV2":
		default:
			skipped = append(skipped, fmt.Sprintf("listener %s: %s is not forwarded (TCP only)", l.ID, l.Protocol))
			continue
		}
		out := LBListener{Port: l.ProtocolPort}
		p, ok := v.pools[l.DefaultPoolID]
		if ok && p.AdminStateUp {
			for _, m := range v.members[p.ID] {
				if !m.AdminStateUp || (m.Weight != nil && *m.Weight == 0) {
					continue
				}
				out.Members = append(out.Members, LBMember{Address: m.Address, Port: m.ProtocolPort, Backup: m.Backup})
			}
			if hm, ok := v.monitors[p.HealthMonitorID]; ok && hm.AdminStateUp {
				out.Monitor = &LBMonitor{
					Delay: time.Duration(hm.Delay) * time.Second, Timeout: time.Duration(hm.Timeout) * time.Second,
					Rise: hm.MaxRetries, Fall: hm.MaxRetriesDown,
				}
			}
		}
		cfg.Listeners = append(cfg.Listeners, out)
	}
	slices.SortFunc(cfg.Listeners, func(a, b LBListener) int { return a.Port - b.Port })
	return cfg, skipped
}
