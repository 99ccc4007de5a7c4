package oci

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// Exec runs extra processes in running containers with "runc exec": the
// process's environment, working directory, user, capabilities, rlimits
// and security labels are the container's own (from config.json in the
// bundle), only the arguments change. That is what kubectl exec and probes
// expect: the command sees what the container's main process sees.

// MaxExecArgBytes bounds the total size of an exec's arguments. execve
// refuses more than ARG_MAX (2 MiB with the default stack limit, shared
// with the environment) anyway; failing early keeps a hostile request from
// making crio write and runc parse a huge process file.
const MaxExecArgBytes = 1 << 20

// ErrBadExecArgs is returned for arguments no process can be given.
var ErrBadExecArgs = errdefs.New(errdefs.ErrInvalidArgument, "invalid exec command")

// CheckExecArgs rejects what execve cannot take: no command, a NUL byte in
// an argument (it would silently cut the argument), or too much in total.
func CheckExecArgs(args []string) error {
	if len(args) == 0 || args[0] == "" {
		return fmt.Errorf("%w: no command", ErrBadExecArgs)
	}
	total := 0
	for i, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("%w: argument %d contains a NUL byte", ErrBadExecArgs, i)
		}
		total += len(a) + 1
		if total > MaxExecArgBytes {
			return fmt.Errorf("%w: arguments exceed %d bytes", ErrBadExecArgs, MaxExecArgBytes)
		}
	}
	return nil
}

// maxSpecBytes bounds the config.json read for an exec. crio wrote it,
// but its size follows the request that created the container (env,
// annotations), which the gRPC message size bounds at 80 MiB by default.
const maxSpecBytes = 128 << 20

// ExecProcess returns the process an exec runs: the container's process
// from <bundle>/config.json with args replaced and terminal set as asked.
func ExecProcess(bundle string, args []string, terminal bool) (*rspec.Process, error) {
	if err := CheckExecArgs(args); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("container spec: %w", err)
	}
	defer f.Close()
	var s struct {
		Process *rspec.Process `json:"process"`
	}
	dec := json.NewDecoder(&limitedReader{f: f, n: maxSpecBytes})
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("container spec %s: %w", f.Name(), err)
	}
	if s.Process == nil {
		return nil, fmt.Errorf("container spec %s has no process", f.Name())
	}
	p := s.Process
	p.Args = append([]string(nil), args...)
	p.CommandLine = ""
	p.Terminal = terminal
	// The exec's terminal size comes from the client's resize messages.
	p.ConsoleSize = nil
	return p, nil
}

type limitedReader struct {
	f *os.File
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("container spec is larger than %d bytes", maxSpecBytes)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}

// execFiles are the per-exec files in the bundle: the process spec runc
// reads and the pid file it writes. They live in the bundle so that a
// crash leaves nothing the container's removal does not take along.
type execFiles struct {
	spec, pid string
}

func newExecFiles(bundle string, p *rspec.Process) (execFiles, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return execFiles{}, err
	}
	base := filepath.Join(bundle, "exec-"+hex.EncodeToString(b[:]))
	ef := execFiles{spec: base + ".json", pid: base + ".pid"}
	data, err := json.Marshal(p)
	if err != nil {
		return execFiles{}, fmt.Errorf("exec process spec: %w", err)
	}
	if err := os.WriteFile(ef.spec, data, 0o600); err != nil {
		return execFiles{}, fmt.Errorf("exec process spec: %w", err)
	}
	return ef, nil
}

func (ef execFiles) remove() {
	os.Remove(ef.spec)
	os.Remove(ef.pid)
}

// globalArgs are the runtime's flags before the command.
func (r *Runtime) globalArgs() []string {
	var args []string
	if r.cfg.RuntimeRoot != "" {
		args = append(args, "--root="+r.cfg.RuntimeRoot)
	}
	if r.cfg.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	return args
}

// monitorRuntimeArgs hands the runtime's global flags to conmon, which
// runs the runtime itself.
func (r *Runtime) monitorRuntimeArgs() []string {
	var args []string
	for _, a := range r.globalArgs() {
		args = append(args, "--runtime-arg", a)
	}
	if r.cfg.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	return args
}

// killExec kills the process an exec started, found through its pid file,
// and its process group (runc makes the exec's process a group leader, so
// the group holds what it spawned, e.g. the "sleep" of "sh -c 'sleep 9'").
// parent is the helper the process must be a child of: its pid stays
// reserved until that helper reaps it, so the check makes the kill safe
// against pid reuse. With no pid file yet (runc still setting up), only the
// helper is killed.
func killExec(pidFile string, parent int) {
	pid, err := readPidFile(pidFile)
	if err == nil {
		if fd, err := unix.PidfdOpen(pid, 0); err == nil {
			if ppid, pgid, ok := procParent(pid); ok && ppid == parent {
				_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
				if pgid == pid {
					_ = unix.Kill(-pid, unix.SIGKILL)
				}
				unix.Close(fd)
				return
			}
			unix.Close(fd)
		}
	}
	_ = unix.Kill(parent, unix.SIGKILL)
}

// procParent reads the parent pid and process group of pid.
func procParent(pid int) (ppid, pgid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	return ppid, pgid, err1 == nil && err2 == nil
}

// execHelper is a started runc (or conmon) that runs one exec. wait
// returns when it has exited; on ctx's end the exec's process is killed
// first, so the helper returns promptly and nothing stays behind.
type execHelper struct {
	cmd     *exec.Cmd
	pidFile string
	done    chan error
}

// reapGrace bounds the wait for a helper to exit once its process has been
// killed; after it the helper itself is killed.
const reapGrace = 10 * time.Second

// startHelper starts cmd in a process group of its own (a Ctrl-C to the
// daemon's terminal must not reach the helpers), or with attr.
func startHelper(cmd *exec.Cmd, pidFile string, attr *syscall.SysProcAttr) (*execHelper, error) {
	if attr == nil {
		attr = &syscall.SysProcAttr{Setpgid: true}
	}
	cmd.SysProcAttr = attr
	if startHook != nil {
		startHook(cmd)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h := &execHelper{cmd: cmd, pidFile: pidFile, done: make(chan error, 1)}
	go func() { h.done <- cmd.Wait() }()
	return h, nil
}

// wait returns the helper's exit error and whether ctx ended first (the
// exec was killed).
func (h *execHelper) wait(ctx context.Context) (err error, killed bool) {
	select {
	case err := <-h.done:
		return err, false
	case <-ctx.Done():
	}
	killExec(h.pidFile, h.cmd.Process.Pid)
	select {
	case err = <-h.done:
	case <-time.After(reapGrace):
		_ = h.cmd.Process.Kill()
		err = <-h.done
	}
	return err, true
}

// startHook lets tests see (and wrap) every helper command before it
// starts; nil in production.
var startHook func(*exec.Cmd)

// exitCode is the helper's exit status: runc exec exits with the
// process's status, 128+n for a process killed by signal n.
func exitCode(err error) (int, bool) {
	if err == nil {
		return 0, true
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ee.ExitCode(), true
	}
	return 0, false
}
