package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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

// probe is one health check: nil when the daemon answers.
type probe func(ctx context.Context) error

// criProbe asks the daemon for its CRI version over a new connection to its
// own socket, as the kubelet would: the accept loop, the protocol mux, the
// gRPC server and the runtime service all have to answer.
func criProbe(socket string) probe {
	return func(ctx context.Context) error {
		cc, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("connect to %s: %w", socket, err)
		}
		defer cc.Close()
		if _, err := runtimeapi.NewRuntimeServiceClient(cc).Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
			return fmt.Errorf("CRI Version on %s: %w", socket, err)
		}
		return nil
	}
}

// startWatchdog feeds systemd's watchdog when the unit sets WatchdogSec, but
// only with proof of life: every third of the interval it runs check, and
// sends WATCHDOG=1 only when check passed. A daemon that is up but no
// longer serves CRI thus misses its pings and systemd restarts it, which
// is safe because containers outlive the daemon. The returned func stops
// it.
func startWatchdog(log *slog.Logger, check probe) (stop func()) {
	interval, err := sdnotify.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return func() {}
	}
	return runWatchdog(log, interval, check, func() { notify(log, "WATCHDOG=1") })
}

// runWatchdog is startWatchdog's loop with its interval and ping given.
func runWatchdog(log *slog.Logger, interval time.Duration, check probe, ping func()) (stop func()) {
	period := interval / 3
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(period)
		defer t.Stop()
		healthy := true
		for {
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
			pctx, pcancel := context.WithTimeout(ctx, period)
			err := check(pctx)
			pcancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				if healthy { // log the change, not every missed ping
					log.Warn("watchdog: the daemon does not answer CRI; not feeding systemd's watchdog", "error", err)
				}
				healthy = false
				continue
			}
			if !healthy {
				log.Info("watchdog: the daemon answers CRI again")
			}
			healthy = true
			ping()
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
