// Package nsfile creates a pod's network, IPC and UTS namespaces and pins
// them to files with bind mounts, so the namespaces outlive any process and
// no pause process is needed to hold them (CRI-O's drop_infra_ctr).
//
// Go schedules goroutines on any OS thread, and namespaces belong to
// threads. Every function here that enters or creates a namespace does it on
// a fresh goroutine locked to its thread and returns without unlocking: the
// Go runtime then ends that thread instead of returning it to the pool, so
// no other goroutine ever runs inside a pod's namespaces.
package nsfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Kind is one namespace type that can be pinned.
type Kind string

// The pinnable kinds. Their values are the /proc/<pid>/ns/ entry names.
const (
	Net Kind = "net"
	IPC Kind = "ipc"
	UTS Kind = "uts"
)

// Dir is the subdirectory of namespaces_dir for kind k ("netns", ...), the
// layout CRI-O and `ip netns` use.
func (k Kind) Dir() string { return string(k) + "ns" }

func (k Kind) flag() int {
	switch k {
	case Net:
		return unix.CLONE_NEWNET
	case IPC:
		return unix.CLONE_NEWIPC
	case UTS:
		return unix.CLONE_NEWUTS
	}
	return 0
}

// Request describes the namespaces to create for one pod.
type Request struct {
	// Dir is namespaces_dir; files go to Dir/<kind>ns/<ID>.
	Dir string
	// ID names the files; the caller guarantees it is a safe file name.
	ID string
	// Kinds to create; the others stay the host's.
	Kinds []Kind
	// Hostname is set in the new UTS namespace (ignored without UTS).
	Hostname string
	// Sysctls are written inside the new namespaces, keyed by their
	// /proc/sys relative path (e.g. "net/ipv4/ip_forward"). The caller has
	// checked that each belongs to a namespace being created.
	Sysctls map[string]string
}

// Pin creates the namespaces and bind-mounts each to its file. It returns
// the paths by kind. On error nothing is left behind.
func Pin(req Request) (map[Kind]string, error) {
	if req.ID == "" || strings.ContainsAny(req.ID, "/\x00") || req.ID == "." || req.ID == ".." {
		return nil, fmt.Errorf("pin namespaces: bad id %q", req.ID)
	}
	paths := map[Kind]string{}
	flags := 0
	for _, k := range req.Kinds {
		if k.flag() == 0 {
			return nil, fmt.Errorf("pin namespaces: unknown kind %q", k)
		}
		flags |= k.flag()
		paths[k] = filepath.Join(req.Dir, k.Dir(), req.ID)
	}
	if flags == 0 {
		return paths, nil
	}
	// Create the mount-point files first, from this (ordinary) thread.
	var created []string
	undo := func() {
		for _, p := range created {
			_ = Unpin(p)
		}
	}
	for _, k := range req.Kinds {
		p := paths[k]
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			undo()
			return nil, fmt.Errorf("pin namespaces: %w", err)
		}
		f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if err != nil {
			undo()
			return nil, fmt.Errorf("pin namespaces: %w", err)
		}
		f.Close()
		created = append(created, p)
	}
	errc := make(chan error, 1)
	go func() {
		// Locked and never unlocked: this thread ends with the goroutine.
		runtime.LockOSThread()
		errc <- pinOnThread(req, flags, paths)
	}()
	if err := <-errc; err != nil {
		undo()
		return nil, err
	}
	return paths, nil
}

// pinOnThread runs on a thread that is thrown away afterwards.
func pinOnThread(req Request, flags int, paths map[Kind]string) error {
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("unshare namespaces: %w", err)
	}
	if flags&unix.CLONE_NEWUTS != 0 && req.Hostname != "" {
		if err := unix.Sethostname([]byte(req.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", req.Hostname, err)
		}
	}
	if flags&unix.CLONE_NEWNET != 0 {
		// Plugins usually bring lo up (the loopback plugin), but a pod whose
		// network config lacks it would have no localhost at all.
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	for key, value := range req.Sysctls {
		// /proc/sys/net and the IPC/UTS entries show the namespaces of the
		// calling thread, which are the pod's here.
		if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
		}
	}
	tid := unix.Gettid()
	for kind, p := range paths {
		src := fmt.Sprintf("/proc/self/task/%d/ns/%s", tid, kind)
		if err := unix.Mount(src, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount %s namespace to %s: %w", kind, p, err)
		}
	}
	return nil
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// Unpin unmounts a pinned namespace file and removes it. It is idempotent:
// a file that is gone or no longer mounted is fine. The namespace itself
// dies when its last user (a container process, an open fd) goes.
func Unpin(path string) error {
	if path == "" {
		return nil
	}
	// MNT_DETACH: a container runtime or plugin may still hold the mount
	// briefly; the file must go now regardless.
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// IsPinned reports whether path is a live namespace bind mount (after a
// reboot the file may exist with nothing mounted on it).
func IsPinned(path string) bool {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return false
	}
	return fs.Type == unix.NSFS_MAGIC
}

// Do runs fn on a throw-away thread that has joined the namespace pinned at
// path (kind k). Sockets fn opens stay in that namespace after it returns,
// which is how a caller dials from inside a pod's network.
func Do(path string, k Kind, fn func() error) error {
	if k.flag() == 0 {
		return fmt.Errorf("enter namespace: unknown kind %q", k)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		f, err := os.Open(path)
		if err != nil {
			errc <- fmt.Errorf("enter %s namespace: %w", k, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), k.flag()); err != nil {
			errc <- fmt.Errorf("enter %s namespace %s: %w", k, path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Visit runs fn on a thread that has joined the namespace pinned at path
// (kind k) and then moves that thread back, so the thread goes on serving
// other goroutines: cheaper than Do for a frequent, short visit such as a
// stats read. fn must not keep anything (a socket, a child) that has to
// live in the namespace. The kernel refuses a file that is not a namespace
// of kind k, so a stale or hostile path cannot move the thread into
// another kind of namespace. If the thread cannot get back, it is left
// locked and the Go runtime ends it with its goroutine, instead of handing
// a thread in a pod's namespace to other code.
func Visit(path string, k Kind, fn func() error) error {
	if k.flag() == 0 {
		return fmt.Errorf("enter namespace: unknown kind %q", k)
	}
	errc := make(chan error, 1)
	go func() { errc <- visitLocked(path, k, fn) }()
	return <-errc
}

func visitLocked(path string, k Kind, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("enter %s namespace: %w", k, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	// Opened after locking: this thread's own namespace, to come back to.
	home, err := os.Open("/proc/thread-self/ns/" + string(k))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s namespace: %w", k, err)
	}
	defer home.Close()
	if err := unix.Setns(int(target.Fd()), k.flag()); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s namespace %s: %w", k, path, err)
	}
	fnErr := fn()
	if err := unix.Setns(int(home.Fd()), k.flag()); err != nil {
		return fmt.Errorf("leave %s namespace %s: %w", k, path, err) // thread stays locked
	}
	runtime.UnlockOSThread()
	return fnErr
}
