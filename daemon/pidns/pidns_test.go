package pidns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crio-appliance/crio/daemon/nsfile"
)

func statusField(t *testing.T, pid int, key string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestHolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	pinned, err := nsfile.Pin(nsfile.Request{Dir: dir, ID: "p1", Kinds: []nsfile.Kind{nsfile.Net, nsfile.IPC, nsfile.UTS}, Hostname: "holder"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, p := range pinned {
			nsfile.Unpin(p)
		}
	}()
	pinPath := filepath.Join(dir, "pidns", "p1")
	h, err := Start(Options{
		ID:      "p1",
		RootDir: filepath.Join(dir, "init-root"),
		JoinNS:  map[string]string{"net": pinned[nsfile.Net], "ipc": pinned[nsfile.IPC], "uts": pinned[nsfile.UTS]},
		PinPath: pinPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !h.Alive() {
		t.Fatal("holder not alive")
	}
	if ns := strings.Fields(statusField(t, h.PID, "NSpid")); len(ns) != 2 || ns[1] != "1" {
		t.Errorf("NSpid = %v, want PID 1 in a nested namespace", ns)
	}
	if uid := statusField(t, h.PID, "Uid"); uid != "65535\t65535\t65535\t65535" {
		t.Errorf("Uid = %q", uid)
	}
	if c := statusField(t, h.PID, "CapEff"); c != "0000000000000000" {
		t.Errorf("CapEff = %q", c)
	}
	for kind, k := range map[string]nsfile.Kind{"net": nsfile.Net, "ipc": nsfile.IPC, "uts": nsfile.UTS} {
		if inode(t, fmt.Sprintf("/proc/%d/ns/%s", h.PID, kind)) != inode(t, pinned[k]) {
			t.Errorf("holder not in the pod's %s namespace", kind)
		}
	}
	if inode(t, fmt.Sprintf("/proc/%d/ns/pid", h.PID)) != inode(t, pinPath) || !nsfile.IsPinned(pinPath) {
		t.Error("PID namespace not pinned")
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", h.PID)); exe != filepath.Join(dir, "init-root", programName) {
		t.Errorf("holder runs %q", exe)
	}
	if g := statusField(t, h.PID, "Groups"); g != "" {
		t.Errorf("Groups = %q", g)
	}
	// Orphans re-parented to the init are reaped (SIGCHLD ignored).
	if out, err := exec.Command("nsenter", "--pid="+pinPath, "--", "busybox", "sh", "-c", "busybox sleep 0.2 & exit 0").CombinedOutput(); err != nil {
		t.Fatalf("orphan: %v %s", err, out)
	}
	time.Sleep(600 * time.Millisecond)
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, _ := os.ReadFile(st)
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 2 && f[1] == fmt.Sprint(h.PID) && f[0] == "Z" {
			t.Errorf("zombie child of the init: %s", b)
		}
	}
	if !h.Alive() {
		t.Fatal("init died")
	}
	if rss := statusField(t, h.PID, "VmRSS"); rss == "" || len(strings.Fields(rss)) != 2 || len(strings.Fields(rss)[0]) > 3 {
		t.Errorf("holder VmRSS = %q, want under 1000 kB", rss)
	}
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/root/", h.PID))
	if err != nil || len(entries) != 1 || entries[0].Name() != programName {
		t.Errorf("holder root has %v (%v), want only the program", entries, err)
	}
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", h.PID)); cwd != filepath.Join(dir, "init-root") {
		t.Errorf("holder cwd %q is outside its root", cwd)
	}
	if d := dumpable(t, h.PID); d {
		t.Error("holder is dumpable")
	}
	if err := h.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if h.Alive() {
		t.Error("alive after Stop")
	}
	if err := h.Stop(time.Second); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := Unpin(pinPath); err != nil {
		t.Fatal(err)
	}
	if err := Unpin(pinPath); err != nil {
		t.Errorf("second Unpin: %v", err)
	}
}

func TestWaitForeverELF(t *testing.T) {
	for arch, runner := range map[string][]string{"amd64": nil, "arm64": {"qemu-aarch64-static"}} {
		elf := waitForeverELF(arch)
		if elf == nil {
			t.Fatalf("no program for %s", arch)
		}
		if runtime.GOARCH != arch && (runner == nil || !haveCmd(runner[0])) {
			continue
		}
		path := filepath.Join(t.TempDir(), "wait")
		if err := os.WriteFile(path, elf, 0o755); err != nil {
			t.Fatal(err)
		}
		var cmd *exec.Cmd
		if runtime.GOARCH == arch {
			cmd = exec.Command(path)
		} else {
			cmd = exec.Command(runner[0], path)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Fatalf("%s: program exited: %v", arch, err)
		case <-time.After(300 * time.Millisecond):
		}
		cmd.Process.Signal(unix.SIGCHLD) // ignored by default: must keep waiting
		select {
		case err := <-done:
			t.Fatalf("%s: program exited on SIGCHLD: %v", arch, err)
		case <-time.After(100 * time.Millisecond):
		}
		cmd.Process.Kill()
		<-done
	}
}

// dumpable reports whether an unprivileged process of the same uid could
// inspect pid: /proc/<pid>/environ is owned by root for a non-dumpable one.
func dumpable(t *testing.T, pid int) bool {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/environ", pid), &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid != 0
}

func haveCmd(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}
