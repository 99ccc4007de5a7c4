// Package pidns holds a pod's shared PID namespace (shareProcessNamespace)
// with a minimal init process, so that the pod's containers can join it.
//
// A PID namespace dies with its init, so unlike the network, IPC and UTS
// namespaces it cannot be kept by a bind mount alone: some process must be
// PID 1. CRI-O and containerd run the pause image as an infra container for
// that. Here the init is a tiny static program (tinyinit.go) that crio
// writes once into a directory of its own and starts directly: in a new PID
// namespace, inside the pod's network, IPC and UTS namespaces (inherited
// from the thread that forks it), chrooted into that directory, as an
// unprivileged uid with no capabilities and no supplementary groups. The
// program file is execute-only, which makes the process non-dumpable: even
// a container running as the same uid cannot ptrace it or look through
// /proc/1/root or /proc/1/cwd.
package pidns

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crio-appliance/crio/daemon/cgroups"
)

// unprivileged is the uid and gid the init runs as (pause's 65535).
const unprivileged = 65535

// programName is the init's file name in its root, and its argv[0].
const programName = "crio-pod-init"

// Holder identifies a running init. StartTime (from /proc/<pid>/stat)
// guards against a recycled PID after a daemon restart.
type Holder struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// Options say where the init goes.
type Options struct {
	// ID is the pod id, the init's argv[1], so ps shows whose it is.
	ID string
	// RootDir is the directory the init is chrooted into; it holds the
	// program and nothing else, and is shared by all pods.
	RootDir string
	// JoinNS are pinned namespace files the init joins, by kind ("net",
	// "ipc", "uts"); a kind left out stays the host's.
	JoinNS map[string]string
	// Cgroup is where the init is moved (nil: it stays in the daemon's).
	Cgroup *cgroups.Cgroup
	// PinPath, if set, gets a bind mount of the init's PID namespace: a
	// stable path for containers to join.
	PinPath string
}

var nsFlags = map[string]int{"net": unix.CLONE_NEWNET, "ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS}

// children are inits this process started, so Stop can reap them.
var children sync.Map // pid -> chan struct{} closed when reaped

var rootMu sync.Mutex

// prepareRoot makes sure dir holds the program for this architecture,
// execute-only, and nothing the init could use.
func prepareRoot(dir string) error {
	elf := waitForeverELF(runtime.GOARCH)
	if elf == nil {
		return fmt.Errorf("no pod init program for %s", runtime.GOARCH)
	}
	rootMu.Lock()
	defer rootMu.Unlock()
	path := filepath.Join(dir, programName)
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, elf) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o111); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := os.Chmod(dir, 0o111); err != nil { // search only: nothing to list
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, elf, 0o111); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o111); err != nil { // WriteFile's mode is subject to the umask
		return err
	}
	return os.Rename(tmp, path)
}

// Start runs an init and returns once it is in place.
func Start(opts Options) (*Holder, error) {
	if err := prepareRoot(opts.RootDir); err != nil {
		return nil, fmt.Errorf("pod init: %w", err)
	}
	type started struct {
		pid int
		err error
	}
	ch := make(chan started, 1)
	go func() {
		// The init inherits the namespaces of the thread that forks it.
		// This thread joins the pod's namespaces and is never unlocked, so
		// it ends with this goroutine.
		runtime.LockOSThread()
		for kind, path := range opts.JoinNS {
			if err := setns(path, kind); err != nil {
				ch <- started{err: err}
				return
			}
		}
		null, err := os.Open(os.DevNull)
		if err != nil {
			ch <- started{err: fmt.Errorf("start pod init: %w", err)}
			return
		}
		defer null.Close()
		// The path is resolved after the chroot; Dir "/" is applied after
		// it too, so the init's working directory is inside its root.
		proc, err := os.StartProcess("/"+programName, []string{programName, opts.ID}, &os.ProcAttr{
			Dir:   "/",
			Env:   []string{},
			Files: []*os.File{null, null, null},
			Sys: &syscall.SysProcAttr{
				Chroot:     opts.RootDir,
				Credential: &syscall.Credential{Uid: unprivileged, Gid: unprivileged, Groups: []uint32{}},
				Cloneflags: unix.CLONE_NEWPID,
				// Its own session: signals for the daemon's process group
				// (a Ctrl-C in a terminal) must not end every pod.
				Setsid: true,
			},
		})
		if err != nil {
			ch <- started{err: fmt.Errorf("start pod init: %w", err)}
			return
		}
		done := make(chan struct{})
		children.Store(proc.Pid, done)
		go func() {
			proc.Wait()
			close(done)
		}()
		ch <- started{pid: proc.Pid}
	}()
	s := <-ch
	if s.err != nil {
		return nil, s.err
	}
	h := &Holder{PID: s.pid}
	fail := func(err error) (*Holder, error) {
		_ = h.Stop(5 * time.Second)
		return nil, fmt.Errorf("pod init: %w", err)
	}
	var err error
	if h.StartTime, err = startTime(h.PID); err != nil {
		return fail(err)
	}
	if opts.Cgroup != nil {
		if err := cgroups.Join(opts.Cgroup, h.PID); err != nil {
			return fail(err)
		}
	}
	if opts.PinPath != "" {
		if err := pin(h.PID, opts.PinPath); err != nil {
			return fail(err)
		}
	}
	return h, nil
}

func setns(path, kind string) error {
	flag, ok := nsFlags[kind]
	if !ok {
		return fmt.Errorf("pod init: cannot join a %q namespace", kind)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("pod init: %w", err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), flag); err != nil {
		return fmt.Errorf("pod init: join %s namespace %s: %w", kind, path, err)
	}
	return nil
}

func pin(pid int, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("pin PID namespace: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("pin PID namespace: %w", err)
	}
	f.Close()
	if err := unix.Mount(fmt.Sprintf("/proc/%d/ns/pid", pid), path, "", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return fmt.Errorf("pin PID namespace: %w", err)
	}
	return nil
}

// procStat returns the fields of /proc/<pid>/stat after the command name
// (which may hold spaces and parentheses): [0] is the state, [19] the
// start time.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return nil, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return fields, nil
}

func startTime(pid int) (uint64, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// Alive reports whether the init still runs: the same process (not a
// recycled PID), and not a zombie (whose namespace is gone).
func (h *Holder) Alive() bool {
	if h == nil || h.PID <= 0 {
		return false
	}
	f, err := procStat(h.PID)
	if err != nil || f[0] == "Z" {
		return false
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	return err == nil && st == h.StartTime
}

// Stop kills the init, and with it every process left in its PID
// namespace, and waits until it is gone. Stopping an init that is gone
// already is fine.
func (h *Holder) Stop(timeout time.Duration) error {
	if h == nil || h.PID <= 0 {
		return nil
	}
	if h.StartTime != 0 && !h.Alive() {
		h.reap(timeout)
		return nil
	}
	if err := unix.Kill(h.PID, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("stop pod init %d: %w", h.PID, err)
	}
	if ours, err := h.reap(timeout); ours {
		return err
	}
	// Not our child (started before a daemon restart): its new parent
	// reaps it; wait until it is gone.
	deadline := time.Now().Add(timeout)
	for h.Alive() {
		if time.Now().After(deadline) {
			return fmt.Errorf("stop pod init %d: still running after %s", h.PID, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// reap waits for an init this process started; ours is false for one
// started by an earlier daemon.
func (h *Holder) reap(timeout time.Duration) (ours bool, err error) {
	v, ok := children.Load(h.PID)
	if !ok {
		return false, nil
	}
	select {
	case <-v.(chan struct{}):
		children.Delete(h.PID)
		return true, nil
	case <-time.After(timeout):
		return true, fmt.Errorf("stop pod init %d: still running after %s", h.PID, timeout)
	}
}

// Unpin removes a pinned PID namespace file; idempotent.
func Unpin(path string) error {
	if path == "" {
		return nil
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
