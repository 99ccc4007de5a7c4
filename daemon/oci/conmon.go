package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crio-appliance/crio/daemon/cgroups"

	"github.com/crio-appliance/crio/daemon/metrics"
)

// CreateOptions describe a container to create. The bundle must hold
// config.json.
type CreateOptions struct {
	ID   string
	Name string // shown by conmon in its messages
	// Bundle is the container's directory: config.json, and what conmon
	// writes there (pid files, exit, oom, the ctl FIFO, its own log).
	Bundle string
	// LogPath is where conmon writes the container's output, in the
	// kubelet's CRI format.
	LogPath  string
	Terminal bool
	Stdin    bool
	// StdinOnce closes the container's stdin when the first attached
	// client detaches.
	StdinOnce bool
	// Cgroup is where conmon is moved before it starts anything (the
	// pod's cgroup, or a scope of its own with the systemd driver); nil
	// leaves it in the daemon's.
	Cgroup *cgroups.Cgroup
	// LogLevel is conmon's (error, warn, info, debug).
	LogLevel string
}

// Created is a container the runtime has created: its init process waits
// for Start.
type Created struct {
	PID        int // the container's init, in the host's PID namespace
	MonitorPID int // conmon
}

// createTimeout bounds the wait for "runtime create" when the caller's
// context has no earlier deadline.
const createTimeout = 4 * time.Minute

// monitorLog is conmon's own stderr, kept in the bundle so that a failure
// before conmon can report on the sync pipe still says something.
const monitorLog = "conmon.log"

// Create starts conmon, which creates the container with the runtime and
// stays to monitor it. On error nothing is left running; the bundle and
// the runtime's state (if any) are the caller's to remove with Delete.
func (r *Runtime) Create(ctx context.Context, o CreateOptions) (*Created, error) {
	// The whole of it: conmon's start, the runtime's create and the sync.
	defer metrics.Runtime(metrics.ActionCreate, time.Now())
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, createTimeout)
		defer cancel()
	}
	syncParent, syncChild, err := socketpair()
	if err != nil {
		return nil, err
	}
	defer syncParent.Close()
	startParent, startChild, err := socketpair()
	if err != nil {
		syncChild.Close()
		return nil, err
	}
	defer startParent.Close()

	logf, err := os.OpenFile(filepath.Join(o.Bundle, monitorLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		syncChild.Close()
		startChild.Close()
		return nil, fmt.Errorf("create container %s: %w", o.ID, err)
	}
	cmd := exec.Command(r.cfg.MonitorPath, r.monitorArgs(o)...)
	cmd.Dir = o.Bundle
	cmd.Env = append(append([]string{}, r.cfg.MonitorEnv...), "_OCI_SYNCPIPE=3", "_OCI_STARTPIPE=4")
	cmd.ExtraFiles = []*os.File{syncChild, startChild}
	cmd.Stdout, cmd.Stderr = logf, logf
	// A session of its own: a signal to the daemon's process group (a
	// Ctrl-C in a terminal) must not reach the monitors.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	syncChild.Close()
	startChild.Close()
	logf.Close()
	if err != nil {
		return nil, fmt.Errorf("create container %s: start %s: %w", o.ID, r.cfg.MonitorPath, err)
	}
	fail := func(err error) (*Created, error) {
		_ = cmd.Process.Kill() // its Wait is (or will be) running below
		if mon, perr := readPidFile(filepath.Join(o.Bundle, "conmon-pidfile")); perr == nil {
			_ = unix.Kill(mon, unix.SIGKILL) // the forked monitor, if it got that far
		}
		if tail := monitorTail(o.Bundle); tail != "" {
			err = fmt.Errorf("%w (conmon: %s)", err, tail)
		}
		return nil, fmt.Errorf("create container %s: %w", o.ID, err)
	}
	if o.Cgroup != nil {
		if err := cgroups.Join(o.Cgroup, cmd.Process.Pid); err != nil {
			return fail(fmt.Errorf("move conmon: %w", err))
		}
	}
	// conmon forks only once this byte arrives, so everything it spawns
	// is in the cgroup chosen above.
	if _, err := startParent.Write([]byte{0}); err != nil {
		return fail(fmt.Errorf("start conmon: %w", err))
	}
	// The first conmon process exits as soon as it has forked the monitor,
	// which PID 1 inherits: the monitor outlives this daemon, and nothing
	// of it stays in our process tree. (conmon's --sync would keep it as
	// our child, but a forked monitor starts with only the pages it
	// touches, about 1.5 MiB less RSS per container.)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			return fail(fmt.Errorf("conmon: %w", err))
		}
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	pid, err := readSync(ctx, syncParent)
	if err != nil {
		return fail(err)
	}
	mon, err := readPidFile(filepath.Join(o.Bundle, "conmon-pidfile"))
	if err != nil {
		return fail(fmt.Errorf("conmon pid: %w", err))
	}
	return &Created{PID: pid, MonitorPID: mon}, nil
}

func (r *Runtime) monitorArgs(o CreateOptions) []string {
	level := o.LogLevel
	if level == "" {
		level = "error"
	}
	args := []string{
		"-c", o.ID,
		"-n", o.Name,
		"-u", o.ID,
		"-r", r.cfg.RuntimePath,
		"-b", o.Bundle,
		"-p", filepath.Join(o.Bundle, "pidfile"),
		"-P", filepath.Join(o.Bundle, "conmon-pidfile"),
		"-l", o.LogPath,
		"--exit-dir", r.cfg.ExitDir,
		"--persist-dir", o.Bundle,
		"--socket-dir-path", r.cfg.SocketDir,
		"--log-level", level,
	}
	args = append(args, r.monitorRuntimeArgs()...)
	if r.cfg.LogSizeMax > 0 {
		args = append(args, "--log-size-max", strconv.FormatInt(r.cfg.LogSizeMax, 10))
	}
	if r.cfg.NoSyncLog {
		args = append(args, "--no-sync-log")
	}
	if o.Terminal {
		args = append(args, "-t")
	}
	if o.Stdin {
		args = append(args, "-i")
		if !o.StdinOnce {
			args = append(args, "--leave-stdin-open")
		}
	}
	return args
}

// socketpair returns the parent's and the child's ends of a
// SOCK_SEQPACKET pair: conmon's messages arrive whole.
func socketpair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("conmon pipes: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "conmon-parent"), os.NewFile(uintptr(fds[1]), "conmon-child"), nil
}

// syncMessage is what conmon writes on the sync pipe: the container's pid,
// or -1 and the runtime's error.
type syncMessage struct {
	Pid     int    `json:"pid"`
	Message string `json:"message,omitempty"`
}

func readSync(ctx context.Context, f *os.File) (int, error) {
	type result struct {
		msg syncMessage
		err error
	}
	ch := make(chan result, 1)
	go func() {
		buf := make([]byte, 64<<10)
		n, err := f.Read(buf)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("conmon exited without reporting the container's pid")
			}
			ch <- result{err: err}
			return
		}
		var m syncMessage
		if err := json.Unmarshal(bytes.TrimSpace(buf[:n]), &m); err != nil {
			ch <- result{err: fmt.Errorf("conmon sync message %q: %w", buf[:n], err)}
			return
		}
		ch <- result{msg: m}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			return 0, res.err
		}
		if res.msg.Pid <= 0 {
			msg := strings.TrimSpace(res.msg.Message)
			if msg == "" {
				msg = "runtime create failed"
			}
			return 0, errors.New(msg)
		}
		return res.msg.Pid, nil
	case <-ctx.Done():
		// Closing our end ends the reader; the caller kills conmon.
		return 0, fmt.Errorf("waiting for the runtime to create the container: %w", ctx.Err())
	}
}

func readPidFile(p string) (int, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", p, b)
	}
	return n, nil
}

// monitorTail is the end of conmon's own log, for error messages.
func monitorTail(bundle string) string {
	b, err := os.ReadFile(filepath.Join(bundle, monitorLog))
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 1024 {
		s = "..." + s[len(s)-1024:]
	}
	return s
}

// ReopenLog asks a running container's conmon to reopen its log file (the
// kubelet has rotated it). It fails when conmon is gone.
func ReopenLog(bundle string) error {
	return writeCtl(bundle, "2 0 0\n")
}

// Resize sets the container's terminal size through conmon.
func Resize(bundle string, width, height uint16) error {
	return writeCtl(bundle, fmt.Sprintf("1 %d %d\n", height, width))
}

// ErrMonitorGone is returned when a container's conmon is no longer there
// to receive a control message.
var ErrMonitorGone = errors.New("the container's monitor is not running")

func writeCtl(bundle, msg string) error {
	// Non-blocking: with no reader (conmon exited) the open fails with
	// ENXIO instead of hanging the RPC forever.
	f, err := os.OpenFile(filepath.Join(bundle, "ctl"), os.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENXIO) || errors.Is(err, os.ErrNotExist) {
		return ErrMonitorGone
	}
	if err != nil {
		return fmt.Errorf("conmon control FIFO: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(msg); err != nil {
		if errors.Is(err, unix.EPIPE) {
			return ErrMonitorGone
		}
		return fmt.Errorf("conmon control FIFO: %w", err)
	}
	return nil
}
