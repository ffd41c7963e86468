package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Options configure a logger.
type Options struct {
	Format  string // "text" (default) or "json"
	Level   string // debug, info (default), warn, error
	Secrets *Secrets
}

// ParseLevel maps a level name to a slog level.
func ParseLevel(name string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(name))); err != nil {
		return 0, fmt.Errorf("log level %q: use debug, info, warn or error", name)
	}
	return l, nil
}

// New returns a logger writing to w whose every record is redacted.
func New(w io.Writer, opts Options) (*slog.Logger, error) {
	level := slog.LevelInfo
	if opts.Level != "" {
		l, err := ParseLevel(opts.Level)
		if err != nil {
			return nil, err
		}
		level = l
	}
	ho := &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr(opts.Secrets)}
	var h slog.Handler
	switch opts.Format {
	case "", "text":
		ho.ReplaceAttr = compactTime(ho.ReplaceAttr)
		h = slog.NewTextHandler(w, ho)
	case "json":
		h = slog.NewJSONHandler(w, ho)
	default:
		return nil, fmt.Errorf("log format %q: use text or json", opts.Format)
	}
	return slog.New(&redactingHandler{Handler: h, secrets: opts.Secrets}), nil
}

// replaceAttr redacts attributes by key (password=..., token=...) and by
// value (any registered secret inside any string or error).
func replaceAttr(secrets *Secrets) func([]string, slog.Attr) slog.Attr {
	return func(_ []string, a slog.Attr) slog.Attr {
		if sensitiveKey(a.Key) && a.Value.Kind() != slog.KindGroup {
			return slog.String(a.Key, Redacted)
		}
		switch a.Value.Kind() {
		case slog.KindDuration:
			// As people read them ("1.5s"), in JSON too, where slog would
			// write integer nanoseconds.
			return slog.String(a.Key, a.Value.Duration().String())
		case slog.KindString:
			return slog.String(a.Key, secrets.Redact(a.Value.String()))
		case slog.KindAny:
			v := a.Value.Any()
			if err, ok := v.(error); ok {
				return slog.String(a.Key, secrets.Redact(err.Error()))
			}
			if s, ok := v.(fmt.Stringer); ok {
				return slog.String(a.Key, secrets.Redact(s.String()))
			}
			return slog.String(a.Key, secrets.Redact(fmt.Sprintf("%+v", v)))
		}
		return a
	}
}

// compactTime shortens the text handler's timestamp to wall-clock time; the
// date is noise in a terminal and CI logs carry their own.
func compactTime(next func([]string, slog.Attr) slog.Attr) func([]string, slog.Attr) slog.Attr {
	return func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.String(slog.TimeKey, a.Value.Time().Format("15:04:05"))
		}
		return next(groups, a)
	}
}

// redactingHandler also redacts the message, which ReplaceAttr never sees.
type redactingHandler struct {
	slog.Handler
	secrets *Secrets
}

func (h *redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	if msg := h.secrets.Redact(r.Message); msg != r.Message {
		nr := slog.NewRecord(r.Time, r.Level, msg, r.PC)
		r.Attrs(func(a slog.Attr) bool { nr.AddAttrs(a); return true })
		r = nr
	}
	return h.Handler.Handle(ctx, r)
}

func (h *redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &redactingHandler{Handler: h.Handler.WithAttrs(attrs), secrets: h.secrets}
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	return &redactingHandler{Handler: h.Handler.WithGroup(name), secrets: h.secrets}
}

// Discard is a logger that drops everything, for tests and libraries' defaults.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
