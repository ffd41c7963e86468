package kindcluster

import (
	"context"
	"fmt"
	"log/slog"

	kindlog "sigs.k8s.io/kind/pkg/log"
)

// kindLogger adapts slog to kind's logger: warnings and errors always, info
// up to verbosity 0 (kind's status lines), debug above.
type kindLogger struct{ log *slog.Logger }

func (l kindLogger) Warn(msg string) { l.log.Warn("kind: " + msg) }
func (l kindLogger) Warnf(format string, args ...any) {
	l.log.Warn("kind: " + fmt.Sprintf(format, args...))
}
func (l kindLogger) Error(msg string) { l.log.Error("kind: " + msg) }
func (l kindLogger) Errorf(format string, args ...any) {
	l.log.Error("kind: " + fmt.Sprintf(format, args...))
}
func (l kindLogger) V(level kindlog.Level) kindlog.InfoLogger {
	return kindInfo{log: l.log, level: level}
}

type kindInfo struct {
	log   *slog.Logger
	level kindlog.Level
}

func (i kindInfo) slogLevel() slog.Level {
	if i.level <= 0 {
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

func (i kindInfo) Info(msg string) {
	i.log.Log(context.Background(), i.slogLevel(), "kind: "+msg)
}
func (i kindInfo) Infof(format string, args ...any) { i.Info(fmt.Sprintf(format, args...)) }
func (i kindInfo) Enabled() bool {
	return i.log.Enabled(context.Background(), i.slogLevel())
}
