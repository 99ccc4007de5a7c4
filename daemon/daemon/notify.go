package daemon

import (
	"log/slog"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
)

// notify sends state to systemd when NOTIFY_SOCKET is set (Type=notify);
// otherwise it does nothing.
func notify(log *slog.Logger, state string) {
	if state == "RELOADING=1" {
		// Type=notify-reload wants the time of the reload with it.
		state += "\n" + sdnotify.SdNotifyMonotonicUsec()
	}
	sent, err := sdnotify.SdNotify(false, state)
	if err != nil {
		log.Warn("sd_notify failed", "state", state, "error", err)
		return
	}
	if sent {
		log.Debug("sd_notify", "state", state)
	}
}

// startWatchdog pings systemd's watchdog at half its interval when the unit
// sets WatchdogSec; the returned func stops it.
func startWatchdog(log *slog.Logger) (stop func()) {
	interval, err := sdnotify.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				notify(log, "WATCHDOG=1")
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}
