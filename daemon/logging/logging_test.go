package logging

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestParseLevel(t *testing.T) {
	want := map[string]slog.Level{
		"trace": LevelTrace, "debug": slog.LevelDebug, "info": slog.LevelInfo,
		"warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError,
		"fatal": LevelFatal, "panic": LevelPanic, "DEBUG": slog.LevelDebug,
	}
	for s, l := range want {
		got, err := ParseLevel(s)
		if err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", s, got, err, l)
		}
	}
	if _, err := ParseLevel("verbose"); err == nil || !strings.Contains(err.Error(), "trace") {
		t.Errorf("ParseLevel(verbose) err = %v", err)
	}
	// Every documented name parses and the order is most verbose first.
	prev := slog.Level(-1 << 10)
	for _, n := range Names {
		l, err := ParseLevel(n)
		if err != nil || l <= prev {
			t.Errorf("Names order broken at %q", n)
		}
		prev = l
	}
}

func TestLoggerLevelVar(t *testing.T) {
	var buf bytes.Buffer
	var lv slog.LevelVar
	log := New(&buf, &lv)
	log.Debug("hidden")
	lv.Set(LevelTrace)
	log.Log(context.Background(), LevelTrace, "shown")
	out := buf.String()
	if strings.Contains(out, "hidden") {
		t.Error("debug logged at info level")
	}
	if !strings.Contains(out, "level=TRACE") || !strings.Contains(out, "shown") {
		t.Errorf("trace line missing: %q", out)
	}
}

func TestLevelName(t *testing.T) {
	for l, n := range map[slog.Level]string{
		LevelTrace: "TRACE", slog.LevelDebug: "DEBUG", slog.LevelInfo: "INFO",
		slog.LevelWarn: "WARN", slog.LevelError: "ERROR", LevelFatal: "FATAL", LevelPanic: "PANIC",
	} {
		if got := LevelName(l); got != n {
			t.Errorf("LevelName(%v) = %q, want %q", l, got, n)
		}
	}
}
