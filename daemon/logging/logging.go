// Package logging maps CRI-O's log levels onto log/slog and builds the
// daemon's logger. The level lives in a slog.LevelVar so that a SIGHUP
// reload can change it without rebuilding loggers handed out earlier.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Levels beyond slog's four. slog leaves gaps of 4 between its levels for
// exactly this; trace sits below debug, fatal and panic above error.
const (
	LevelTrace = slog.LevelDebug - 4
	LevelFatal = slog.LevelError + 4
	LevelPanic = slog.LevelError + 8
)

// Names lists the accepted log_level values, most verbose first.
var Names = []string{"trace", "debug", "info", "warn", "error", "fatal", "panic"}

// ParseLevel maps a log_level value (fatal|panic|error|warn|info|debug|trace,
// case-insensitive; "warning" too, as logrus accepts it) to a slog level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return LevelTrace, nil
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	case "fatal":
		return LevelFatal, nil
	case "panic":
		return LevelPanic, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want one of %s)", s, strings.Join(Names, ", "))
}

// LevelName is the inverse of ParseLevel, upper-cased as log lines show it.
func LevelName(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "TRACE"
	case l >= LevelPanic:
		return "PANIC"
	case l >= LevelFatal:
		return "FATAL"
	}
	return l.String()
}

// New returns a text logger writing to w at the level of lv.
func New(w io.Writer, lv slog.Leveler) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: lv,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.LevelKey {
				if l, ok := a.Value.Any().(slog.Level); ok {
					a.Value = slog.StringValue(LevelName(l))
				}
			}
			return a
		},
	}))
}
