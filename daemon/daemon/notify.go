package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// systemdEnv is what systemd told the daemon through its environment:
// where to send notifications and the watchdog interval. It is taken once,
// and the variables are then removed from the process environment: every
// child (conmon, runc, CNI plugins, the storage helpers) inherits it, and
// runc given NOTIFY_SOCKET sets the container up for sd_notify (a socket
// proxy under its state directory) and fails to start it.
type systemdEnv struct {
	socket   string        // NOTIFY_SOCKET; "" when not run as Type=notify
	watchdog time.Duration // from WATCHDOG_USEC, when WATCHDOG_PID is us
}

var (
	sdOnce sync.Once
	sdEnv  systemdEnv
)

// takeSystemdEnv returns the daemon's systemd environment, removing it from
// the process environment on the first call. New calls it before anything
// can start a child.
func takeSystemdEnv() systemdEnv {
	sdOnce.Do(func() { sdEnv = readSystemdEnv() })
	return sdEnv
}

// readSystemdEnv reads the systemd variables and unsets them.
func readSystemdEnv() systemdEnv {
	var env systemdEnv
	env.socket = os.Getenv("NOTIFY_SOCKET")
	if d, err := sdnotify.SdWatchdogEnabled(false); err == nil {
		env.watchdog = d
	}
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		os.Unsetenv(k)
	}
	return env
}

// notify sends state to systemd when the daemon runs as Type=notify;
// otherwise it does nothing.
func notify(log *slog.Logger, state string) {
	socket := takeSystemdEnv().socket
	if socket == "" {
		return
	}
	if state == "RELOADING=1" {
		// Type=notify-reload wants the time of the reload with it.
		state += "\n" + sdnotify.SdNotifyMonotonicUsec()
	}
	if err := sendNotify(socket, state); err != nil {
		log.Warn("sd_notify failed", "state", state, "error", err)
		return
	}
	log.Debug("sd_notify", "state", state)
}

// sendNotify writes one datagram to systemd's notification socket (a path,
// or an abstract address written with a leading '@').
func sendNotify(socket, state string) error {
	addr := &net.UnixAddr{Name: socket, Net: "unixgram"}
	if strings.HasPrefix(socket, "@") {
		addr.Name = "\x00" + socket[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
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
	interval := takeSystemdEnv().watchdog
	if interval <= 0 {
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
