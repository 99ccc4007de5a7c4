package nsfile

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func TestPinAndUnpin(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	paths, err := Pin(Request{
		Dir: dir, ID: "pod1", Kinds: []Kind{Net, IPC, UTS}, Hostname: "pinned-host",
		Sysctls: map[string]string{"net/ipv4/ip_unprivileged_port_start": "80", "kernel/shmmni": "1234"},
	})
	if err != nil {
		t.Fatal(err)
	}
	hostName, _ := os.Hostname()
	for k, p := range paths {
		if p != filepath.Join(dir, k.Dir(), "pod1") || !IsPinned(p) {
			t.Errorf("%s: %s not pinned", k, p)
		}
	}
	// The hostname was set inside the UTS namespace only.
	got, err := nodenameVia(Do, paths[UTS])
	if err != nil {
		t.Fatal(err)
	}
	if got != "pinned-host" {
		t.Errorf("hostname in pod = %q", got)
	}
	if h, _ := os.Hostname(); h != hostName {
		t.Errorf("host hostname changed to %q", h)
	}
	// Sysctls landed inside, not on the host.
	read := func(path string, k Kind, key string) string {
		var v []byte
		if err := Do(path, k, func() (err error) { v, err = os.ReadFile("/proc/sys/" + key); return }); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(v))
	}
	if v := read(paths[Net], Net, "net/ipv4/ip_unprivileged_port_start"); v != "80" {
		t.Errorf("net sysctl in pod = %q", v)
	}
	if v := read(paths[IPC], IPC, "kernel/shmmni"); v != "1234" {
		t.Errorf("ipc sysctl in pod = %q", v)
	}
	if v, _ := os.ReadFile("/proc/sys/kernel/shmmni"); strings.TrimSpace(string(v)) == "1234" {
		t.Errorf("ipc sysctl leaked to host")
	}
	// lo is up in the pod.
	if err := Do(paths[Net], Net, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, _ := unix.NewIfreq("lo")
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return err
		}
		if ifr.Uint16()&unix.IFF_UP == 0 {
			t.Error("lo down in pod")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if err := Unpin(p); err != nil {
			t.Fatal(err)
		}
		if err := Unpin(p); err != nil {
			t.Fatalf("second unpin: %v", err)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists", p)
		}
	}
}

func TestPinFailureLeavesNothing(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	_, err := Pin(Request{Dir: dir, ID: "pod2", Kinds: []Kind{Net, IPC}, Sysctls: map[string]string{"net/does/not/exist": "1"}})
	if err == nil {
		t.Fatal("want error for a missing sysctl")
	}
	for _, k := range []Kind{Net, IPC} {
		if _, err := os.Stat(filepath.Join(dir, k.Dir(), "pod2")); !os.IsNotExist(err) {
			t.Errorf("%s file left behind", k)
		}
	}
	if _, err := Pin(Request{Dir: dir, ID: "../x", Kinds: []Kind{Net}}); err == nil {
		t.Error("want error for an id with a slash")
	}
}

// Visit enters and leaves: inside, fn sees the pod's namespace; after it,
// every thread (including the one that visited, reused by the runtime) is
// back in the daemon's. A path of the wrong kind is refused by the kernel.
func TestVisit(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	paths, err := Pin(Request{Dir: dir, ID: "visit", Kinds: []Kind{UTS}, Hostname: "visited-host"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Unpin(paths[UTS]) })
	hostName, _ := os.Hostname()
	// The calling thread's namespace (not /proc/self's: a test before this
	// one may have wedged the main thread in a pod's namespace with Do).
	threadNS := func() string {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		ns, _ := os.Readlink("/proc/thread-self/ns/uts")
		return ns
	}
	hostNS := threadNS()
	for i := 0; i < 20; i++ {
		got, err := nodenameVia(Visit, paths[UTS])
		if err != nil {
			t.Fatal(err)
		}
		if got != "visited-host" {
			t.Fatalf("hostname inside = %q", got)
		}
	}
	// The threads that visited went back to the pool, at home: the
	// goroutines that run on them next see the host's namespace.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 0; i < 50; i++ {
		wg.Go(func() {
			if ns := threadNS(); ns != hostNS {
				mu.Lock()
				t.Errorf("a thread is in %s, not the host's %s", ns, hostNS)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if h, _ := os.Hostname(); h != hostName {
		t.Errorf("host hostname changed to %q", h)
	}
	if err := Visit(paths[UTS], Net, func() error { return nil }); err == nil {
		t.Error("a UTS namespace file was accepted as a network namespace")
	}
	if err := Visit(paths[UTS], "pid", func() error { return nil }); err == nil {
		t.Error("an unknown kind was accepted")
	}
}

// nodenameVia reads the host name inside the UTS namespace at path, entered
// with enter (Do or Visit).
func nodenameVia(enter func(string, Kind, func() error) error, path string) (string, error) {
	var got string
	err := enter(path, UTS, func() error {
		var u unix.Utsname
		err := unix.Uname(&u)
		got = unix.ByteSliceToString(u.Nodename[:])
		return err
	})
	return got, err
}
