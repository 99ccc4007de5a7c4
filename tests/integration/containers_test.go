package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Output reaches the log in the kubelet's format; the exit code and the
// times are reported; a failing command's code (3) comes through.
func TestContainerLogAndExitCode(t *testing.T) {
	e := startCtrDaemon(t, nil)
	podID, pod := e.pod(t, "ctr-log", nil)

	before := time.Now().UnixNano()
	st, lines := e.runToExit(t, podID, pod, e.ctrConfig("echo", "sh", "-c", "echo hello world; echo to-stderr >&2"))
	if st.ExitCode != 0 || st.Reason != "Completed" {
		t.Errorf("exit %d reason %q, want 0 Completed", st.ExitCode, st.Reason)
	}
	if !slices.Contains(lines, "stdout hello world") || !slices.Contains(lines, "stderr to-stderr") {
		t.Errorf("log lines %q", lines)
	}
	if !(before <= st.CreatedAt && st.CreatedAt <= st.StartedAt && st.StartedAt <= st.FinishedAt) {
		t.Errorf("times out of order: created %d started %d finished %d (test began %d)", st.CreatedAt, st.StartedAt, st.FinishedAt, before)
	}
	wantLog := filepath.Join(pod.LogDirectory, "echo", "0.log")
	if st.LogPath != wantLog {
		t.Errorf("log path %q, want %q", st.LogPath, wantLog)
	}
	if st.ImageRef == "" || !strings.HasPrefix(st.ImageId, "") || st.ImageId == "" || st.Image.GetImage() != e.image {
		t.Errorf("image fields: image %q ref %q id %q", st.Image.GetImage(), st.ImageRef, st.ImageId)
	}

	st, lines = e.runToExit(t, podID, pod, e.ctrConfig("exit3", "sh", "-c", "echo bye; exit 3"))
	if st.ExitCode != 3 || st.Reason != "Error" {
		t.Errorf("exit %d reason %q, want 3 Error", st.ExitCode, st.Reason)
	}
	if !slices.Equal(lines, []string{"stdout bye"}) {
		t.Errorf("log %q", lines)
	}
}

// A container that allocates past its memory limit is reported OOMKilled.
func TestContainerOOMKilled(t *testing.T) {
	e := startCtrDaemon(t, nil)
	podID, pod := e.pod(t, "ctr-oom", nil)
	cfg := e.ctrConfig("oom", "sh", "-c", "tail /dev/zero")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}
	st, _ := e.runToExit(t, podID, pod, cfg)
	if st.Reason != "OOMKilled" || st.ExitCode != 137 {
		t.Fatalf("reason %q exit %d, want OOMKilled 137", st.Reason, st.ExitCode)
	}
}

// StopContainer sends the stop signal and waits the timeout; a process
// ignoring SIGTERM is killed after it; a second Stop with a short timeout
// is not held up by a first one with a long timeout.
func TestContainerStopTimeout(t *testing.T) {
	e := startCtrDaemon(t, nil)
	podID, pod := e.pod(t, "ctr-stop", nil)

	// Graceful: exits on TERM at once.
	id := e.run(t, podID, pod, e.ctrConfig("graceful", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"))
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if _, err := e.d.Runtime().StopContainer(Context(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 20}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("graceful stop took %s", d)
	}
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 0 {
		t.Errorf("graceful: state %v exit %d", st.State, st.ExitCode)
	}

	// Ignores TERM: killed after the timeout, not before.
	id = e.run(t, podID, pod, e.ctrConfig("stubborn", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"))
	time.Sleep(300 * time.Millisecond)
	start = time.Now()
	if _, err := e.d.Runtime().StopContainer(Context(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 2}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 2*time.Second || d > 8*time.Second {
		t.Errorf("stop with timeout 2s took %s", d)
	}
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 {
		t.Errorf("stubborn: state %v exit %d, want exited 137", st.State, st.ExitCode)
	}

	// Two stops at once: the short one does not wait for the long one.
	id = e.run(t, podID, pod, e.ctrConfig("twice", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"))
	time.Sleep(300 * time.Millisecond)
	longDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := e.d.Runtime().StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 60})
		longDone <- err
	}()
	time.Sleep(300 * time.Millisecond)
	start = time.Now()
	if _, err := e.d.Runtime().StopContainer(Context(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("second stop blocked for %s", d)
	}
	select {
	case err := <-longDone:
		if err != nil {
			t.Errorf("first stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("first stop still waiting after the container exited")
	}
	// Stopping again, and stopping what does not exist, succeed.
	for _, cid := range []string{id, strings.Repeat("ab", 32)} {
		if _, err := e.d.Runtime().StopContainer(Context(t), &runtimeapi.StopContainerRequest{ContainerId: cid, Timeout: 1}); err != nil {
			t.Errorf("stop %s: %v", cid, err)
		}
	}
}

// capMask turns capability names into /proc/<pid>/status's hex mask.
func capMask(names []string) uint64 {
	nums := map[string]uint{"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5,
		"SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11,
		"NET_ADMIN": 12, "NET_RAW": 13, "SYS_CHROOT": 18, "SYS_ADMIN": 21, "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31}
	var m uint64
	for _, n := range names {
		m |= 1 << nums[n]
	}
	return m
}

// The default capability set inside a container is exactly
// default_capabilities; RuntimeDefault seccomp is in force.
func TestContainerSecurityDefaults(t *testing.T) {
	e := startCtrDaemon(t, nil)
	podID, pod := e.pod(t, "ctr-sec", nil)
	cfg := e.ctrConfig("caps", "sh", "-c", "grep -E '^(CapEff|CapPrm|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status")
	cfg.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	st, lines := e.runToExit(t, podID, pod, cfg)
	if st.ExitCode != 0 {
		t.Fatalf("exit %d: %q", st.ExitCode, lines)
	}
	want := capMask([]string{"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL"})
	fields := map[string]string{}
	for _, l := range lines {
		k, v, _ := strings.Cut(strings.TrimPrefix(l, "stdout "), ":")
		fields[k] = strings.TrimSpace(v)
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
		got, err := strconv.ParseUint(fields[k], 16, 64)
		if err != nil || got != want {
			t.Errorf("%s = %q, want %016x (default_capabilities exactly)", k, fields[k], want)
		}
	}
	if fields["Seccomp"] != "2" {
		t.Errorf("Seccomp: %q, want 2 (filter)", fields["Seccomp"])
	}

	// Without a profile the CRI means unconfined.
	cfg = e.ctrConfig("noseccomp", "grep", "^Seccomp:", "/proc/self/status")
	_, lines = e.runToExit(t, podID, pod, cfg)
	if len(lines) != 1 || !strings.HasSuffix(lines[0], "\t0") {
		t.Errorf("unconfined: %q", lines)
	}

	// A syscall outside the default profile fails with EPERM: unshare
	// needs CAP_SYS_ADMIN's rules.
	cfg = e.ctrConfig("blocked", "unshare", "-U", "true")
	cfg.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{}
	st, lines = e.runToExit(t, podID, pod, cfg)
	if st.ExitCode == 0 {
		t.Errorf("unshare succeeded under RuntimeDefault: %q", lines)
	}
}

// A read-only rootfs refuses writes; run_as_user 1000 runs as uid 1000
// with no effective capabilities.
func TestContainerReadOnlyAndUser(t *testing.T) {
	e := startCtrDaemon(t, nil)
	podID, pod := e.pod(t, "ctr-ro", nil)
	cfg := e.ctrConfig("ro", "sh", "-c", "touch /newfile && echo written")
	cfg.Linux.SecurityContext.ReadonlyRootfs = true
	st, lines := e.runToExit(t, podID, pod, cfg)
	if st.ExitCode == 0 || slices.Contains(lines, "stdout written") || !strings.Contains(strings.Join(lines, "\n"), "Read-only file system") {
		t.Errorf("read-only rootfs: exit %d, log %q", st.ExitCode, lines)
	}
	// /tmp of a read-only rootfs is still the image's: writes fail too,
	// but the pod's files and /dev/shm are writable mounts.
	cfg = e.ctrConfig("ro-shm", "sh", "-c", "echo x > /dev/shm/f && echo ok")
	cfg.Linux.SecurityContext.ReadonlyRootfs = true
	if st, lines := e.runToExit(t, podID, pod, cfg); st.ExitCode != 0 || !slices.Contains(lines, "stdout ok") {
		t.Errorf("/dev/shm in a read-only container: exit %d %q", st.ExitCode, lines)
	}

	cfg = e.ctrConfig("user", "sh", "-c", "id -u; id -g; id -G; grep CapEff /proc/self/status")
	cfg.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
	st, lines = e.runToExit(t, podID, pod, cfg)
	if st.ExitCode != 0 || len(lines) < 4 || lines[0] != "stdout 1000" || lines[1] != "stdout 1000" || lines[2] != "stdout 1000 50000" || !strings.HasSuffix(lines[3], "0000000000000000") {
		t.Errorf("run_as_user 1000: exit %d, log %q", st.ExitCode, lines)
	}
	if u := st.GetUser().GetLinux(); u.GetUid() != 1000 || u.GetGid() != 1000 || !slices.Equal(u.GetSupplementalGroups(), []int64{1000, 50000}) {
		t.Errorf("status user %v", u)
	}

	cfg = e.ctrConfig("username", "id", "-un")
	cfg.Linux.SecurityContext.RunAsUsername = "nobody"
	if st, lines := e.runToExit(t, podID, pod, cfg); st.ExitCode != 0 || !slices.Equal(lines, []string{"stdout nobody"}) {
		t.Errorf("run_as_username nobody: exit %d %q", st.ExitCode, lines)
	}
}

// makeShared makes dir a shared mount point of its own.
func makeShared(t *testing.T, dir string) {
	t.Helper()
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("", dir, "", syscall.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("umount", "-R", "-l", dir).Run()
	})
}

// A hostPath mount with bidirectional (rshared) propagation: a mount made
// in the container shows on the host, and one made on the host after the
// container started shows in it.
func TestContainerMountPropagation(t *testing.T) {
	e := startCtrDaemon(t, nil)
	podID, pod := e.pod(t, "ctr-prop", func(p *runtimeapi.PodSandboxConfig) {
		p.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}
	})
	shared := filepath.Join(e.d.Dir, "shared")
	os.MkdirAll(shared, 0o755)
	makeShared(t, shared)
	os.MkdirAll(filepath.Join(shared, "fromhost"), 0o755)

	cfg := e.ctrConfig("prop", "sh", "-c",
		"mkdir -p /mnt/s/inner && mount -t tmpfs tmpfs /mnt/s/inner && echo hi > /mnt/s/inner/hello && echo mounted; "+
			"while [ ! -e /mnt/s/fromhost/marker ]; do sleep 0.1; done; echo saw-host-mount; sleep 1000")
	cfg.Linux.SecurityContext.Privileged = true
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/mnt/s", HostPath: shared, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}}
	id := e.run(t, podID, pod, cfg)

	if !waitFor(10*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(shared, "inner", "hello"))
		return err == nil && string(b) == "hi\n"
	}) {
		t.Fatal("mount made in the container did not propagate to the host")
	}
	t.Cleanup(func() { syscall.Unmount(filepath.Join(shared, "inner"), syscall.MNT_DETACH) })

	hostTmp := filepath.Join(shared, "fromhost")
	if err := syscall.Mount("tmpfs", hostTmp, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(hostTmp, syscall.MNT_DETACH) })
	os.WriteFile(filepath.Join(hostTmp, "marker"), nil, 0o644)
	st := e.status(t, id)
	if !waitFor(10*time.Second, func() bool {
		return slices.Contains(logLines(t, st.LogPath), "stdout saw-host-mount")
	}) {
		t.Fatalf("mount made on the host did not propagate into the container: %q", logLines(t, st.LogPath))
	}
	if len(st.Mounts) != 1 || st.Mounts[0].Propagation != runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL || st.Mounts[0].ContainerPath != "/mnt/s" {
		t.Errorf("status mounts %v", st.Mounts)
	}

	// On a private host mount, bidirectional propagation is refused.
	private := filepath.Join(e.d.Dir, "private")
	os.MkdirAll(private, 0o755)
	syscall.Mount(private, private, "", syscall.MS_BIND, "")
	syscall.Mount("", private, "", syscall.MS_PRIVATE, "")
	t.Cleanup(func() { syscall.Unmount(private, syscall.MNT_DETACH) })
	cfg = e.ctrConfig("prop-private", "true")
	cfg.Linux.SecurityContext.Privileged = true
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/mnt/p", HostPath: private, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}}
	_, err := e.d.Runtime().CreateContainer(Context(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "config.mounts[0].propagation") {
		t.Errorf("bidirectional on a private mount: %v", err)
	}
}

// crio killed with SIGKILL while a container runs: the container keeps
// running, the restarted daemon reports it running, and catches its exit.
func TestContainerSurvivesDaemonKill(t *testing.T) {
	e := startCtrDaemon(t, nil)
	podID, pod := e.pod(t, "ctr-restart", nil)
	trigger := filepath.Join(e.d.Dir, "trigger")
	os.MkdirAll(trigger, 0o755)
	cfg := e.ctrConfig("survivor", "sh", "-c", "echo up; while [ ! -e /trigger/go ]; do sleep 0.1; done; echo done; exit 7")
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/trigger", HostPath: trigger}}
	id := e.run(t, podID, pod, cfg)
	st := e.status(t, id)
	if !waitFor(10*time.Second, func() bool { return slices.Contains(logLines(t, st.LogPath), "stdout up") }) {
		t.Fatal("container did not start")
	}

	e.d.Kill()
	// While crio is down the container runs on.
	time.Sleep(500 * time.Millisecond)
	if st2 := readProcState(t, e.d.Dir, id); !st2 {
		t.Fatal("container died with the daemon")
	}
	d2 := StartDaemon(t, Options{Dir: e.d.Dir, Env: []string{"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(e.d.Dir, "registries.conf")}})
	e.d = d2
	t.Cleanup(func() { removeAllContainersAndPods(d2) })
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("after restart: state %v", st.State)
	}
	os.WriteFile(filepath.Join(trigger, "go"), nil, 0o644)
	start := time.Now()
	st = e.waitExited(t, id, 10*time.Second)
	if st.ExitCode != 7 || st.Reason != "Error" {
		t.Errorf("exit %d reason %q, want 7 Error", st.ExitCode, st.Reason)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("exit caught after %s", d)
	}
	if !slices.Contains(logLines(t, st.LogPath), "stdout done") {
		t.Errorf("log %q", logLines(t, st.LogPath))
	}

	// An exit that happens while crio is down is caught at start-up.
	os.Remove(filepath.Join(trigger, "go"))
	cfg2 := e.ctrConfig("survivor2", cfg.Command...)
	cfg2.Mounts = cfg.Mounts
	id = e.run(t, podID, pod, cfg2)
	st = e.status(t, id)
	if !waitFor(10*time.Second, func() bool { return slices.Contains(logLines(t, st.LogPath), "stdout up") }) {
		t.Fatal("second container did not start")
	}
	e.d.Kill()
	os.WriteFile(filepath.Join(trigger, "go"), nil, 0o644)
	time.Sleep(time.Second)
	d3 := StartDaemon(t, Options{Dir: e.d.Dir, Env: []string{"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(e.d.Dir, "registries.conf")}})
	e.d = d3
	t.Cleanup(func() { removeAllContainersAndPods(d3) })
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 7 {
		t.Errorf("exit while down: state %v code %d", st.State, st.ExitCode)
	}
}

// readProcState reports whether a process of container id runs (its
// conmon names the id on its command line).
func readProcState(t *testing.T, dir, id string) bool {
	t.Helper()
	out, err := exec.Command("runc", "--root", filepath.Join(dir, "runc"), "state", id).Output()
	return err == nil && strings.Contains(string(out), `"running"`)
}

// Bad requests are refused with the right codes, naming the field.
func TestContainerBadRequests(t *testing.T) {
	e := startCtrDaemon(t, nil)
	podID, pod := e.pod(t, "ctr-bad", nil)
	rt := e.d.Runtime()
	for _, tc := range []struct {
		name   string
		podID  string
		mutate func(*runtimeapi.ContainerConfig)
		code   codes.Code
		field  string
	}{
		{"unknown pod", strings.Repeat("0", 64), nil, codes.NotFound, "pod sandbox"},
		{"unknown image", "", func(c *runtimeapi.ContainerConfig) { c.Image.Image = e.reg.Host + "/it/absent:1" }, codes.NotFound, "not present"},
		{"log path escapes", "", func(c *runtimeapi.ContainerConfig) { c.LogPath = "../../etc/x.log" }, codes.InvalidArgument, "config.log_path"},
		{"absolute log path", "", func(c *runtimeapi.ContainerConfig) { c.LogPath = "/etc/x.log" }, codes.InvalidArgument, "config.log_path"},
		{"NUL in args", "", func(c *runtimeapi.ContainerConfig) { c.Args = []string{"a\x00b"} }, codes.InvalidArgument, "config.args[0]"},
		{"env key with =", "", func(c *runtimeapi.ContainerConfig) {
			c.Envs = []*runtimeapi.KeyValue{{Key: "A=B", Value: []byte("1")}}
		}, codes.InvalidArgument, "config.envs[0].key"},
		{"relative mount", "", func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "etc", HostPath: "/tmp"}}
		}, codes.InvalidArgument, "config.mounts[0].container_path"},
		{"privileged in unprivileged pod", "", func(c *runtimeapi.ContainerConfig) { c.Linux.SecurityContext.Privileged = true }, codes.InvalidArgument, "privileged"},
		{"missing localhost seccomp", "", func(c *runtimeapi.ContainerConfig) {
			c.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/nonexistent/profile.json"}
		}, codes.NotFound, "/nonexistent/profile.json"},
		{"bad name", "", func(c *runtimeapi.ContainerConfig) { c.Metadata.Name = "../x" }, codes.InvalidArgument, "config.metadata.name"},
		{"run_as_group alone", "", func(c *runtimeapi.ContainerConfig) {
			c.Linux.SecurityContext.RunAsGroup = &runtimeapi.Int64Value{Value: 5}
		}, codes.InvalidArgument, "run_as_group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.ctrConfig("bad", "true")
			if tc.mutate != nil {
				tc.mutate(cfg)
			}
			pid := podID
			if tc.podID != "" {
				pid = tc.podID
			}
			_, err := rt.CreateContainer(Context(t), &runtimeapi.CreateContainerRequest{PodSandboxId: pid, Config: cfg, SandboxConfig: pod})
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("got %v, want %v naming %q", err, tc.code, tc.field)
			}
		})
	}
	unknown := strings.Repeat("cd", 32)
	if _, err := rt.ContainerStatus(Context(t), &runtimeapi.ContainerStatusRequest{ContainerId: unknown}); status.Code(err) != codes.NotFound {
		t.Errorf("status of unknown id: %v", err)
	}
	if _, err := rt.StartContainer(Context(t), &runtimeapi.StartContainerRequest{ContainerId: unknown}); status.Code(err) != codes.NotFound {
		t.Errorf("start of unknown id: %v", err)
	}
	if _, err := rt.RemoveContainer(Context(t), &runtimeapi.RemoveContainerRequest{ContainerId: unknown}); err != nil {
		t.Errorf("remove of unknown id: %v", err)
	}
	if _, err := rt.ReopenContainerLog(Context(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: unknown}); status.Code(err) != codes.NotFound {
		t.Errorf("reopen log of unknown id: %v", err)
	}
	// Nothing was left by the refused requests.
	if list, _ := rt.ListContainers(Context(t), &runtimeapi.ListContainersRequest{}); len(list.GetContainers()) != 0 {
		t.Errorf("refused creates left containers: %v", list.Containers)
	}
}

// ListContainers filters; CreateContainer is idempotent for a retry;
// ReopenContainerLog follows a rotation.
func TestContainerListIdempotenceAndReopen(t *testing.T) {
	e := startCtrDaemon(t, nil)
	podA, cfgA := e.pod(t, "ctr-list-a", nil)
	podB, cfgB := e.pod(t, "ctr-list-b", nil)
	cfg := e.ctrConfig("looper", "sh", "-c", "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done")
	cfg.Labels = map[string]string{"app": "looper"}
	running := e.run(t, podA, cfgA, cfg)
	again := e.create(t, podA, cfgA, cfg)
	if again != running {
		t.Errorf("retry of the same CreateContainer gave %s, want %s", again, running)
	}
	changed := e.ctrConfig("x", "true")
	changed.Metadata = cfg.Metadata
	if _, err := e.d.Runtime().CreateContainer(Context(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podA, Config: changed}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("same name, other config: %v", err)
	}
	created := e.create(t, podB, cfgB, e.ctrConfig("idle", "true"))
	exited, _ := e.runToExit(t, podB, cfgB, e.ctrConfig("done", "true"))

	list := func(f *runtimeapi.ContainerFilter) []string {
		resp, err := e.d.Runtime().ListContainers(Context(t), &runtimeapi.ListContainersRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range resp.Containers {
			ids = append(ids, c.Id)
		}
		slices.Sort(ids)
		return ids
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	for _, tc := range []struct {
		f    *runtimeapi.ContainerFilter
		want []string
	}{
		{nil, sorted(running, created, exited.Id)},
		{&runtimeapi.ContainerFilter{PodSandboxId: podB}, sorted(created, exited.Id)},
		{&runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}, []string{running}},
		{&runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_CREATED}}, []string{created}},
		{&runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_EXITED}}, []string{exited.Id}},
		{&runtimeapi.ContainerFilter{LabelSelector: map[string]string{"app": "looper"}}, []string{running}},
		{&runtimeapi.ContainerFilter{Id: running[:12]}, []string{running}},
	} {
		if got := list(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("filter %v: %v, want %v", tc.f, got, tc.want)
		}
	}

	st := e.status(t, running)
	if !waitFor(5*time.Second, func() bool { return len(logLines(t, st.LogPath)) > 2 }) {
		t.Fatal("no output")
	}
	if err := os.Rename(st.LogPath, st.LogPath+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Runtime().ReopenContainerLog(Context(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: running}); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool {
		b, err := os.ReadFile(st.LogPath)
		return err == nil && strings.Contains(string(b), "stdout F line")
	}) {
		t.Fatal("log not reopened")
	}
	if _, err := e.d.Runtime().ReopenContainerLog(Context(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: exited.Id}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("reopen of an exited container: %v", err)
	}
	// Removing keeps the log.
	if _, err := e.d.Runtime().RemoveContainer(Context(t), &runtimeapi.RemoveContainerRequest{ContainerId: running}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(st.LogPath); err != nil {
		t.Errorf("log removed with the container: %v", err)
	}
	if _, err := e.d.Runtime().ContainerStatus(Context(t), &runtimeapi.ContainerStatusRequest{ContainerId: running}); status.Code(err) != codes.NotFound {
		t.Errorf("status after remove: %v", err)
	}
}

// ctrFootprint counts what containers of one daemon leave on the host.
type ctrFootprint struct {
	Mounts, StorageCtrs, Records, Bundles, ExitFiles, Sockets, RuncState, Cgroups, Monitors int
}

func takeCtrFootprint(t *testing.T, d *Daemon, ids []string) ctrFootprint {
	t.Helper()
	var f ctrFootprint
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for l := range strings.SplitSeq(string(mi), "\n") {
		if fs := strings.Fields(l); len(fs) > 4 && strings.HasPrefix(fs[4], d.Dir+"/") && !strings.HasPrefix(fs[4], d.Dir+"/root/overlay") {
			f.Mounts++
		} else if len(fs) > 4 && strings.HasPrefix(fs[4], d.Dir+"/root/overlay/") && strings.HasSuffix(fs[4], "/merged") {
			f.Mounts++
		}
	}
	count := func(p string) int {
		es, _ := os.ReadDir(p)
		return len(es)
	}
	if es, err := os.ReadDir(filepath.Join(d.Dir, "root", "overlay-containers")); err == nil {
		for _, e := range es {
			if e.IsDir() {
				f.StorageCtrs++ // one directory per storage container
			}
		}
	}
	f.Records = len(recordIDs(d.Dir, "container"))
	f.Bundles = count(filepath.Join(d.Dir, "runroot", "crio-containers"))
	f.ExitFiles = count(filepath.Join(d.Dir, "run", "exits"))
	for _, id := range ids {
		if _, err := os.Lstat(filepath.Join(d.Dir, "run", id)); err == nil {
			f.Sockets++
		}
	}
	f.RuncState = count(filepath.Join(d.Dir, "runc"))
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, r := range roots {
		for _, id := range ids {
			m, _ := filepath.Glob(filepath.Join(r, "crio", "*", "crio-"+id))
			f.Cgroups += len(m)
		}
	}
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range cmdlines {
		b, _ := os.ReadFile(c)
		if strings.HasPrefix(string(b), "conmon\x00") || strings.Contains(string(b), "/conmon\x00") {
			for _, id := range ids {
				if strings.Contains(string(b), id) {
					f.Monitors++
				}
			}
		}
	}
	return f
}

// 100 containers created (half of them started) and removed leave no
// mount, storage container, record, bundle, exit file, socket link, runc
// state, cgroup or monitor behind.
func TestHundredContainersLeaveNothingBehind(t *testing.T) {
	e := startCtrDaemon(t, nil)
	before := takeCtrFootprint(t, e.d, nil)
	podID, pod := e.pod(t, "ctr-leak", nil)
	const n = 100
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cfg := e.ctrConfig(fmt.Sprintf("many%d", i), "sleep", "1000")
			resp, err := e.d.Runtime().CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
			if err != nil {
				errs <- err
				return
			}
			ids[i] = resp.ContainerId
			if i%2 == 0 {
				if _, err := e.d.Runtime().StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.ContainerId}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mid := takeCtrFootprint(t, e.d, ids)
	if mid.Records != n || mid.Bundles != n || mid.Monitors != n {
		t.Errorf("with %d containers: %+v", n, mid)
	}
	sem = make(chan struct{}, 8)
	errs = make(chan error, n)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if _, err := e.d.Runtime().RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	removePod(t, e.d, podID)
	waitFor(5*time.Second, func() bool { return takeCtrFootprint(t, e.d, ids).Monitors == 0 })
	after := takeCtrFootprint(t, e.d, ids)
	if after != before {
		t.Errorf("left behind: before %+v, after %+v", before, after)
	}
}

// PID namespace modes, the pod's hostname, DNS and hosts files, and an
// unknown runtime handler refused at RunPodSandbox.
func TestContainerNamespacesAndPodFiles(t *testing.T) {
	e := startCtrDaemon(t, map[string]string{
		"20-missing.conf": "[crio.runtime.runtimes.missing]\nruntime_path = \"/nonexistent/runc\"\n",
	})
	// Shared PID namespace (the pod default): PID 1 is the pod's init.
	podID, pod := e.pod(t, "ctr-ns", nil)
	_, lines := e.runToExit(t, podID, pod, e.ctrConfig("pidpod", "sh", "-c", "echo $$; hostname; cat /etc/resolv.conf; grep -c . /etc/hosts; echo HOSTNAME=$HOSTNAME"))
	joined := strings.Join(lines, "\n")
	if len(lines) == 0 || lines[0] == "stdout 1" {
		t.Errorf("shared PID namespace: the container's shell is PID 1: %q", lines)
	}
	for _, want := range []string{"stdout " + pod.Hostname, "stdout nameserver 10.199.0.10", "stdout search it.svc.cluster.local", "stdout HOSTNAME=" + pod.Hostname} {
		if !slices.Contains(lines, want) {
			t.Errorf("missing %q in %q", want, joined)
		}
	}

	// A container's own PID namespace, and another joining it (TARGET).
	podID, pod = e.pod(t, "ctr-ns-own", func(p *runtimeapi.PodSandboxConfig) {
		p.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}}
	})
	own := e.ctrConfig("pidown", "sleep", "1000")
	own.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}
	target := e.run(t, podID, pod, own)
	cfg := e.ctrConfig("pidtarget", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo")
	cfg.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: target}
	if _, lines := e.runToExit(t, podID, pod, cfg); !slices.Contains(lines, "stdout sleep 1000 ") {
		t.Errorf("TARGET pid namespace: PID 1 is %q, want the target's sleep", lines)
	}
	cfg = e.ctrConfig("pidself", "sh", "-c", "echo $$")
	cfg.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}
	if _, lines := e.runToExit(t, podID, pod, cfg); !slices.Equal(lines, []string{"stdout 1"}) {
		t.Errorf("own PID namespace: %q", lines)
	}

	// A handler that is not configured, and one whose binary is missing,
	// are refused when the pod is made.
	for _, h := range []string{"nope", "missing"} {
		_, err := e.d.Runtime().RunPodSandbox(Context(t), &runtimeapi.RunPodSandboxRequest{Config: podConfig("ctr-handler"), RuntimeHandler: h})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), h) {
			t.Errorf("runtime handler %q: %v", h, err)
		}
	}
	if !strings.Contains(e.d.Stderr.String(), "/nonexistent/runc") {
		t.Error("the unusable handler was not reported in the log")
	}
}

// A second runtime handler maps a RuntimeClass to another OCI binary (here
// a wrapper that records its calls and runs runc); the pod's handler is
// the one its containers run with.
func TestContainerRuntimeHandler(t *testing.T) {
	RequireRoot(t)
	tools := TempDir(t)
	wrapper := filepath.Join(tools, "wrapped-runc")
	calls := filepath.Join(tools, "calls")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %s\nexec runc \"$@\"\n", calls)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e := startCtrDaemon(t, map[string]string{
		"20-wrapped.conf": fmt.Sprintf("[crio.runtime.runtimes.wrapped]\nruntime_path = %q\nruntime_root = %q\n", wrapper, filepath.Join(tools, "state")),
	})
	cfg := podConfig("ctr-handler")
	cfg.LogDirectory = filepath.Join(e.d.Dir, "podlogs", cfg.Metadata.Name)
	resp, err := e.d.Runtime().RunPodSandbox(Context(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "wrapped"})
	if err != nil {
		t.Fatal(err)
	}
	st, lines := e.runToExit(t, resp.PodSandboxId, cfg, e.ctrConfig("wrapped", "echo", "via wrapper"))
	if st.ExitCode != 0 || !slices.Equal(lines, []string{"stdout via wrapper"}) {
		t.Fatalf("exit %d log %q", st.ExitCode, lines)
	}
	b, _ := os.ReadFile(calls)
	for _, verb := range []string{" create ", "start "} {
		if !strings.Contains(string(b), verb) {
			t.Errorf("the handler's binary was not used for %q: %q", verb, b)
		}
	}
	if !strings.Contains(string(b), "--root "+filepath.Join(tools, "state")) && !strings.Contains(string(b), "--root="+filepath.Join(tools, "state")) {
		t.Errorf("runtime_root not passed: %q", b)
	}
}
