package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/spec"
)

// These tests run real runc and conmon on a busybox-static rootfs.

func requireTools(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, b := range []string{"runc", "conmon"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed", b)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("/bin/busybox missing (busybox-static)")
	}
}

// busyboxRootfs makes a root filesystem of the static busybox.
func busyboxRootfs(t testing.TB, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"sh", "echo", "sleep", "cat", "true", "tail", "id", "touch", "ls", "grep"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", app)); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\n"), 0o644)
	return root
}

type env struct {
	t      testing.TB
	dir    string
	rt     *Runtime
	rootfs string

	mu    sync.Mutex
	exits map[string]chan struct{}
	w     *ExitWatcher
}

func newEnv(t testing.TB) *env {
	t.Helper()
	requireTools(t)
	dir, err := os.MkdirTemp("", "oci-test-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, exits: map[string]chan struct{}{}}
	e.rootfs = busyboxRootfs(t, dir)
	e.rt, err = New(Config{
		Name: "runc", RuntimeRoot: filepath.Join(dir, "runc"),
		ExitDir: filepath.Join(dir, "exits"), SocketDir: filepath.Join(dir, "sockets"),
		MonitorEnv: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		LogSizeMax: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.w, err = WatchExits(e.rt.ExitDir(), func(id string) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if ch, ok := e.exits[id]; ok {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.w.Close()
		os.RemoveAll(dir)
		for _, h := range []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", "unified"} {
			os.Remove(filepath.Join("/sys/fs/cgroup", h, "crio-oci-test-"+filepath.Base(dir)))
		}
	})
	return e
}

type ctr struct {
	id, bundle, log string
	exited          chan struct{}
	created         *Created
}

// create writes a bundle from a generated spec (new namespaces of every
// kind) and creates the container.
func (e *env) create(cfg *runtimeapi.ContainerConfig) (*ctr, error) {
	e.t.Helper()
	id := fmt.Sprintf("%x", time.Now().UnixNano())
	bundle := filepath.Join(e.dir, "bundles", id)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		e.t.Fatal(err)
	}
	if cfg.Metadata == nil {
		cfg.Metadata = &runtimeapi.ContainerMetadata{Name: "c"}
	}
	res, err := spec.Generate(&spec.Input{
		ID: id, Config: cfg, Rootfs: e.rootfs,
		Pod:      spec.Pod{CgroupParent: "/crio-oci-test-" + filepath.Base(e.dir), Hostname: "test"},
		Defaults: spec.Defaults{Capabilities: []string{"CHOWN", "KILL", "SETUID", "SETGID"}},
		Host:     &spec.RealHost{},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	s := res.Spec
	for _, ns := range []rspec.LinuxNamespaceType{rspec.NetworkNamespace, rspec.IPCNamespace, rspec.UTSNamespace} {
		s.Linux.Namespaces = append(s.Linux.Namespaces, rspec.LinuxNamespace{Type: ns})
	}
	data, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	c := &ctr{id: id, bundle: bundle, log: filepath.Join(e.dir, "logs", id+".log"), exited: make(chan struct{})}
	os.MkdirAll(filepath.Dir(c.log), 0o755)
	e.mu.Lock()
	e.exits[id] = c.exited
	e.mu.Unlock()
	e.t.Cleanup(func() {
		e.rt.Delete(context.Background(), id)
		e.rt.Cleanup(id)
	})
	c.created, err = e.rt.Create(context.Background(), CreateOptions{ID: id, Name: "c", Bundle: bundle, LogPath: c.log})
	return c, err
}

func (e *env) run(args ...string) *ctr {
	e.t.Helper()
	c, err := e.create(&runtimeapi.ContainerConfig{Command: args})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.rt.Start(context.Background(), c.id); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) waitExit(c *ctr, timeout time.Duration) Exit {
	e.t.Helper()
	select {
	case <-c.exited:
	case <-time.After(timeout):
		e.t.Fatalf("container %s did not exit within %s", c.id, timeout)
	}
	ex, ok, err := ReadExit(e.rt.ExitDir(), c.id)
	if err != nil || !ok {
		e.t.Fatalf("exit file: ok=%v err=%v", ok, err)
	}
	return ex
}

var criLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d) (stdout|stderr) (F|P) (.*)$`)

func TestEchoLogAndExit(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	c := e.run("sh", "-c", "echo hello; echo oops >&2; exit 3")
	if c.created.PID <= 0 || c.created.MonitorPID <= 0 {
		t.Fatalf("pids %+v", c.created)
	}
	ex := e.waitExit(c, 10*time.Second)
	if ex.Code != 3 {
		t.Fatalf("exit code %d, want 3", ex.Code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("exit noticed after %s", d)
	}
	data, err := os.ReadFile(c.log)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		m := criLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("log line %q is not in CRI format", l)
		}
		got = append(got, m[3]+" "+m[4]+" "+m[5])
	}
	if strings.Join(got, "|") != "stdout F hello|stderr F oops" && strings.Join(got, "|") != "stderr F oops|stdout F hello" {
		t.Fatalf("log %q", got)
	}
	st, err := e.rt.State(context.Background(), c.id)
	if err != nil || st.Status != "stopped" {
		t.Fatalf("state %+v %v", st, err)
	}
	if OOMKilled(c.bundle) {
		t.Fatal("oom reported for a clean exit")
	}
}

func TestKillAndState(t *testing.T) {
	e := newEnv(t)
	c := e.run("sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done")
	st, err := e.rt.State(context.Background(), c.id)
	if err != nil || st.Status != "running" || st.Pid != c.created.PID {
		t.Fatalf("state %+v, created %+v, err %v", st, c.created, err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := e.rt.Kill(context.Background(), c.id, "SIGTERM", false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
		t.Fatal("a TERM-ignoring process exited on TERM")
	case <-time.After(time.Second):
	}
	if err := e.rt.Kill(context.Background(), c.id, "KILL", true); err != nil {
		t.Fatal(err)
	}
	if ex := e.waitExit(c, 10*time.Second); ex.Code != 137 {
		t.Fatalf("exit %d, want 137", ex.Code)
	}
	if err := e.rt.Delete(context.Background(), c.id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.State(context.Background(), c.id); err == nil || !strings.Contains(err.Error(), ErrNotExist.Error()) {
		t.Fatalf("state after delete: %v", err)
	}
	if err := e.rt.Delete(context.Background(), c.id); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if err := e.rt.Cleanup(c.id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(e.rt.ExitDir(), c.id)); !os.IsNotExist(err) {
		t.Fatal("exit file left after Cleanup")
	}
}

func TestOOM(t *testing.T) {
	e := newEnv(t)
	c, err := e.create(&runtimeapi.ContainerConfig{
		Command: []string{"sh", "-c", "tail /dev/zero"},
		Linux:   &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Start(context.Background(), c.id); err != nil {
		t.Fatal(err)
	}
	ex := e.waitExit(c, 30*time.Second)
	if ex.Code != 137 || !OOMKilled(c.bundle) {
		t.Fatalf("exit %d, oom %v; want 137 and oom", ex.Code, OOMKilled(c.bundle))
	}
}

func TestReopenLog(t *testing.T) {
	e := newEnv(t)
	c := e.run("sh", "-c", "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, _ := os.ReadFile(c.log); strings.Contains(string(b), "line1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no output")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.Rename(c.log, c.log+".1"); err != nil {
		t.Fatal(err)
	}
	if err := ReopenLog(c.bundle); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		if b, err := os.ReadFile(c.log); err == nil && strings.Contains(string(b), "stdout F line") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("log not reopened")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.rt.Kill(context.Background(), c.id, "KILL", true)
	e.waitExit(c, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // conmon exits right after writing the exit file
	if err := ReopenLog(c.bundle); err != ErrMonitorGone {
		t.Fatalf("reopen after exit: %v, want ErrMonitorGone", err)
	}
}

func TestCreateFailureReported(t *testing.T) {
	e := newEnv(t)
	_, err := e.create(&runtimeapi.ContainerConfig{Command: []string{"/no/such/binary"}})
	if err == nil {
		t.Fatal("create of a missing binary succeeded")
	}
	if !strings.Contains(err.Error(), "no/such/binary") {
		t.Fatalf("error does not name the binary: %v", err)
	}
	t.Log(err)
}

// log_size_max: conmon keeps the log file under the limit.
func TestLogSizeMax(t *testing.T) {
	e := newEnv(t)
	rt, err := New(Config{
		Name: "runc", RuntimeRoot: filepath.Join(e.dir, "runc"),
		ExitDir: e.rt.ExitDir(), SocketDir: filepath.Join(e.dir, "sockets"),
		MonitorEnv: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, LogSizeMax: 8192,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	c := e.run("sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line-$i-padding-padding-padding; i=$((i+1)); done")
	e.waitExit(c, 20*time.Second)
	fi, err := os.Stat(c.log)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 8192+512 {
		t.Fatalf("log is %d bytes with log_size_max 8192", fi.Size())
	}
	if b, _ := os.ReadFile(c.log); !strings.Contains(string(b), "line-1999-") {
		t.Fatalf("the newest output is not in the log: %q", b)
	}
}
