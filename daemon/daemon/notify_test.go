package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crio-appliance/crio/daemon/logging"
	"github.com/crio-appliance/crio/internal/testutil"
)

// The watchdog is fed while the daemon answers CRI on its own socket and
// starves as soon as it does not.
func TestWatchdogFedOnlyWhileCRIAnswers(t *testing.T) {
	res := testResult(t)
	d, logs := newTestDaemon(t, Options{Result: res})
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Stop(ctx)

	var pings atomic.Int64
	stop := runWatchdog(logging.New(logs, slog.LevelInfo), 150*time.Millisecond,
		criProbe(res.Config.API.Listen), func() { pings.Add(1) })
	defer stop()
	waitFor(t, 5*time.Second, func() bool { return pings.Load() >= 3 }, "no watchdog ping while the daemon serves")

	// The process lives on, but CRI no longer answers: no more pings.
	d.grpc.Stop()
	time.Sleep(200 * time.Millisecond) // a probe in flight may still pass
	before := pings.Load()
	time.Sleep(500 * time.Millisecond)
	if after := pings.Load(); after != before {
		t.Errorf("watchdog fed %d times after the gRPC server stopped", after-before)
	}
	waitFor(t, 5*time.Second, func() bool {
		return strings.Contains(logs.String(), "does not answer CRI")
	}, "the missed ping was not logged")
}

func TestWatchdogStarvesOnFailingProbeAndRecovers(t *testing.T) {
	var fail atomic.Bool
	var pings atomic.Int64
	fail.Store(true)
	logs := &testutil.SyncBuffer{}
	stop := runWatchdog(logging.New(logs, slog.LevelInfo), 60*time.Millisecond, func(context.Context) error {
		if fail.Load() {
			return errors.New("wedged")
		}
		return nil
	}, func() { pings.Add(1) })
	defer stop()
	time.Sleep(300 * time.Millisecond)
	if n := pings.Load(); n != 0 {
		t.Fatalf("%d pings while the probe fails", n)
	}
	fail.Store(false)
	waitFor(t, 5*time.Second, func() bool { return pings.Load() > 0 }, "no ping after the probe recovered")
	if !strings.Contains(logs.String(), "answers CRI again") {
		t.Errorf("recovery not logged: %s", logs)
	}
}

// A probe that hangs is cut off at the period, and stop does not wait for
// longer than that either.
func TestWatchdogProbeBounded(t *testing.T) {
	var pings atomic.Int64
	stop := runWatchdog(slog.New(slog.DiscardHandler), 90*time.Millisecond, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}, func() { pings.Add(1) })
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	stop()
	if d := time.Since(start); d > time.Second {
		t.Errorf("stop took %v", d)
	}
	if pings.Load() != 0 {
		t.Error("a hanging probe fed the watchdog")
	}
}

func waitFor(t *testing.T, limit time.Duration, ok func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The daemon keeps systemd's variables for itself: a child that inherited
// NOTIFY_SOCKET (runc, through conmon) would set up sd_notify for the
// container and fail to start it.
func TestSystemdEnvTakenFromChildren(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "6000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	env := readSystemdEnv()
	if env.socket != sock || env.watchdog != 6*time.Second {
		t.Fatalf("env = %+v", env)
	}
	out, err := exec.Command("env").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		if strings.Contains(string(out), k+"=") {
			t.Errorf("a child still sees %s", k)
		}
	}
	if err := sendNotify(env.socket, "READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	l.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := l.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("systemd got %q, %v", buf[:n], err)
	}
}
