// Package pidns holds a pod's shared PID namespace (shareProcessNamespace)
// with a minimal init process, so that the pod's containers can join it.
//
// A PID namespace dies with its init, so unlike the network, IPC and UTS
// namespaces it cannot be kept by a bind mount alone: some process must be
// PID 1. CRI-O and containerd run the pause image as an infra container
// for that, which costs an image pull, a runc run and a conmon per pod.
// Here the crio binary itself is re-executed in a helper mode instead: it
// starts in a new PID and mount namespace, inside the pod's network, IPC
// and UTS namespaces, pivots into an empty read-only tmpfs, drops to an
// unprivileged uid with no capabilities, and then only reaps zombies and
// waits for SIGTERM or SIGKILL, exactly what pause does. Containers see it
// as PID 1 and can reach nothing of the host through it (/proc/1/root is
// the empty tmpfs; its namespaces are the pod's).
//
// The binary's main must call reexec.Init (daemon/cmd/crio does).
package pidns

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"
)

// helperName is argv[0] of the helper process, as ps shows it.
const helperName = "crio-pod-init"

// unprivileged is the uid and gid the helper runs as (the kubelet's and
// pause's "nobody" of choice).
const unprivileged = 65535

func init() {
	reexec.Register(helperName, helperMain)
}

// Holder identifies a running helper. StartTime (from /proc/<pid>/stat)
// guards against a recycled PID after a daemon restart.
type Holder struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// Options say where the helper goes.
type Options struct {
	// ID is the pod id, shown in the helper's command line.
	ID string
	// JoinNS are pinned namespace files the helper joins, by kind ("net",
	// "ipc", "uts"); a kind left out stays the host's.
	JoinNS map[string]string
	// CgroupDirs are the pod's cgroup directories; the helper is moved
	// into each.
	CgroupDirs []string
	// PinPath, if set, gets a bind mount of the helper's PID namespace,
	// a stable path for containers to join.
	PinPath string
}

var nsFlags = map[string]int{"net": unix.CLONE_NEWNET, "ipc": unix.CLONE_NEWIPC, "uts": unix.CLONE_NEWUTS}

// children are helpers this process started, so Stop can reap them.
var children sync.Map // pid -> chan struct{} closed when reaped

// Start runs a helper and waits until it reports itself set up.
func Start(opts Options) (*Holder, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pod init: %w", err)
	}
	defer r.Close()
	type started struct {
		pid int
		err error
	}
	ch := make(chan started, 1)
	go func() {
		// The helper inherits the namespaces of the thread that forks it.
		// This thread joins the pod's namespaces and is never unlocked, so
		// it ends with this goroutine.
		runtime.LockOSThread()
		defer w.Close()
		for kind, path := range opts.JoinNS {
			if err := setns(path, kind); err != nil {
				ch <- started{err: err}
				return
			}
		}
		cmd := reexec.Command(helperName, opts.ID)
		cmd.ExtraFiles = []*os.File{w} // fd 3: the status pipe
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS,
			// Its own session: signals for the daemon's process group (a
			// Ctrl-C in a terminal) must not end every pod.
			Setsid: true,
		}
		if err := cmd.Start(); err != nil {
			ch <- started{err: fmt.Errorf("start pod init: %w", err)}
			return
		}
		done := make(chan struct{})
		children.Store(cmd.Process.Pid, done)
		go func() {
			cmd.Wait()
			close(done)
		}()
		ch <- started{pid: cmd.Process.Pid}
	}()
	s := <-ch
	if s.err != nil {
		return nil, s.err
	}
	h := &Holder{PID: s.pid}
	fail := func(err error) (*Holder, error) {
		_ = h.Stop(5 * time.Second)
		return nil, err
	}
	// The helper writes "ok" once set up, or an error; EOF without either
	// means it died.
	msg, err := readStatus(r, 10*time.Second)
	if err != nil {
		return fail(fmt.Errorf("pod init: %w", err))
	}
	if msg != "ok" {
		return fail(fmt.Errorf("pod init: %s", msg))
	}
	if h.StartTime, err = startTime(h.PID); err != nil {
		return fail(fmt.Errorf("pod init: %w", err))
	}
	for _, dir := range opts.CgroupDirs {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(h.PID)), 0); err != nil {
			return fail(fmt.Errorf("pod init: join cgroup %s: %w", dir, err))
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

func readStatus(r *os.File, timeout time.Duration) (string, error) {
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(r, 4096))
		ch <- res{b, err}
	}()
	select {
	case x := <-ch:
		if x.err != nil {
			return "", x.err
		}
		if len(x.b) == 0 {
			return "", errors.New("helper exited during set-up")
		}
		return strings.TrimSpace(string(x.b)), nil
	case <-time.After(timeout):
		r.Close()
		return "", fmt.Errorf("helper not ready after %s", timeout)
	}
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

// startTime is field 22 of /proc/<pid>/stat (clock ticks since boot).
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: split
	// after its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64) // field 22 is the 20th after ')'
}

// Alive reports whether the helper still runs (the same process, not a
// recycled PID).
func (h *Holder) Alive() bool {
	if h == nil || h.PID <= 0 {
		return false
	}
	st, err := startTime(h.PID)
	if err != nil || st != h.StartTime {
		return false
	}
	// A zombie is not alive: its namespace is gone.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", h.PID))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// Stop kills the helper, and with it every process left in its PID
// namespace, and waits until it is gone. Stopping a helper that is gone
// already is fine.
func (h *Holder) Stop(timeout time.Duration) error {
	if h == nil || h.PID <= 0 {
		return nil
	}
	if h.StartTime != 0 && !h.Alive() {
		h.reap()
		return nil
	}
	if err := unix.Kill(h.PID, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("stop pod init %d: %w", h.PID, err)
	}
	if v, ok := children.Load(h.PID); ok {
		select {
		case <-v.(chan struct{}):
			children.Delete(h.PID)
			return nil
		case <-time.After(timeout):
			return fmt.Errorf("stop pod init %d: still running after %s", h.PID, timeout)
		}
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

func (h *Holder) reap() {
	if v, ok := children.Load(h.PID); ok {
		<-v.(chan struct{})
		children.Delete(h.PID)
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

// helperMain is the helper process: PID 1 of the pod's PID namespace.
func helperMain() {
	status := os.NewFile(3, "status")
	fail := func(format string, args ...any) {
		fmt.Fprintf(status, format, args...)
		os.Exit(1)
	}
	if os.Getpid() != 1 {
		fail("helper is not PID 1 of a new PID namespace")
	}
	if err := isolate(); err != nil {
		fail("%v", err)
	}
	// Orphans of the pod are re-parented to us; with SIGCHLD ignored the
	// kernel reaps them, and the disposition survives the exec below.
	signal.Ignore(unix.SIGCHLD)
	w := bufio.NewWriter(status)
	w.WriteString("ok")
	w.Flush()
	// Close-on-exec: the daemon sees the pipe close once the exec is done,
	// so Start returns with the final program in place.
	unix.CloseOnExec(3)
	err := execWaitForever(append([]string{helperName}, os.Args[1:]...))
	status.Close()
	// Still here: no wait-forever program for this architecture, or the
	// kernel refuses to execute a memfd (vm.memfd_noexec). Wait as we are,
	// exiting on the signals pause exits on.
	_ = err
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	<-sigs
	os.Exit(0)
}

// isolate leaves the helper with nothing of the host: an empty read-only
// root, no supplementary groups, an unprivileged uid (which clears every
// capability) and no_new_privs.
func isolate() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	const root = "/tmp"
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k,mode=0755"); err != nil {
		return fmt.Errorf("mount empty root: %w", err)
	}
	if err := os.Mkdir(root+"/old", 0o700); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.PivotRoot(root, root+"/old"); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir: %w", err)
	}
	if err := unix.Unmount("/old", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := os.Remove("/old"); err != nil {
		return fmt.Errorf("remove old root: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("remount root read-only: %w", err)
	}
	// The syscall package applies these to every thread of the process.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setresgid(unprivileged, unprivileged, unprivileged); err != nil {
		return fmt.Errorf("setresgid: %w", err)
	}
	if err := syscall.Setresuid(unprivileged, unprivileged, unprivileged); err != nil {
		return fmt.Errorf("setresuid: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	return nil
}
