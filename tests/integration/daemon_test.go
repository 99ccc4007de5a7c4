package integration

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestDaemonLifecycle is the daemon's whole life: start, CRI Version and
// Status, the HTTP API, a SIGHUP reload of log_level, and SIGTERM.
func TestDaemonLifecycle(t *testing.T) {
	t.Parallel()
	d := StartDaemon(t, Options{})
	ctx := Context(t)

	fi, err := os.Stat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want 0660", fi.Mode().Perm())
	}
	for _, p := range []string{"root", "runroot", "log/pods", "run/exits", "ns"} {
		if fi, err := os.Stat(filepath.Join(d.Dir, p)); err != nil || !fi.IsDir() {
			t.Errorf("directory %s not created: %v", p, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(d.Dir, "run", "version")); err != nil || len(strings.TrimSpace(string(b))) == 0 {
		t.Errorf("version file: %q %v", b, err)
	}

	v, err := d.Runtime().Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "crio" || v.RuntimeApiVersion != "v1" || v.RuntimeVersion == "" {
		t.Errorf("Version = %v", v)
	}

	st, err := d.Runtime().Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	conds := map[string]*runtimeapi.RuntimeCondition{}
	for _, c := range st.GetStatus().GetConditions() {
		conds[c.Type] = c
	}
	if c := conds[runtimeapi.RuntimeReady]; c == nil || !c.Status {
		t.Errorf("RuntimeReady = %v", c)
	}
	if c := conds[runtimeapi.NetworkReady]; c == nil || (!c.Status && c.Reason == "") {
		t.Errorf("NetworkReady = %v: want a condition, with a reason when false", c)
	}

	rc, err := d.Runtime().RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rc.GetLinux().GetCgroupDriver() != runtimeapi.CgroupDriver_CGROUPFS {
		t.Errorf("cgroup driver %v, want CGROUPFS", rc.GetLinux().GetCgroupDriver())
	}

	code, body, err := d.HTTPGet("/info")
	if err != nil || code != 200 {
		t.Fatalf("GET /info: %d %v", code, err)
	}
	var info map[string]any
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatalf("/info is not JSON: %v: %s", err, body)
	}
	if info["storage_root"] != filepath.Join(d.Dir, "root") || info["cgroup_driver"] != "cgroupfs" || info["storage_driver"] == "" {
		t.Errorf("/info = %s", body)
	}
	if _, ok := info["default_id_mappings"].(map[string]any); !ok {
		t.Errorf("/info lacks default_id_mappings: %s", body)
	}
	if code, _, err := d.HTTPGet("/config"); err != nil || code != 200 {
		t.Errorf("GET /config: %d %v", code, err)
	}
	if code, _, err := d.HTTPGet("/containers/0123456789abcdef"); err != nil || code != 404 {
		t.Errorf("GET /containers/<unknown>: %d %v, want 404", code, err)
	}
	if code, out, errOut := RunCrio(t, "status", "--socket", d.Socket); code != 0 || !strings.Contains(out, "storage root: "+filepath.Join(d.Dir, "root")) {
		t.Errorf("crio status: %d %q %q", code, out, errOut)
	}

	// SIGHUP applies a new log_level from the rewritten file.
	b, err := os.ReadFile(d.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(b), `log_level = "info"`, `log_level = "debug"`, 1)
	if err := os.WriteFile(d.ConfigPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !d.Stderr.WaitFor("log_level changed from info to debug", 10*time.Second) {
		t.Fatalf("no reload line in stderr:\n%s", d.Stderr)
	}
	// Debug logging is really on now: every RPC logs a debug line.
	if _, err := d.Runtime().Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
	if !d.Stderr.WaitFor("level=DEBUG", 10*time.Second) {
		t.Errorf("no debug line after reload:\n%s", d.Stderr)
	}

	// A broken file on reload keeps the daemon running on the old config.
	if err := os.WriteFile(filepath.Join(d.ConfigDir, "90-bad.conf"), []byte("[crio.runtime]\nlog_levl = \"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Signal(syscall.SIGHUP)
	if !d.Stderr.WaitFor("reload failed", 10*time.Second) {
		t.Errorf("bad reload not reported:\n%s", d.Stderr)
	}
	if _, err := d.Runtime().Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("daemon unusable after bad reload: %v", err)
	}

	if code := d.Stop(); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d\n%s", code, d.Stderr)
	}
	if _, err := os.Lstat(d.Socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after SIGTERM: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.Dir, "lib", "clean.shutdown")); err != nil {
		t.Errorf("clean shutdown marker missing: %v", err)
	}
}

// TestStaleSocketReplaced: a socket file left by a crash does not block the
// next start. SIGINT stops the daemon like SIGTERM.
func TestStaleSocketReplaced(t *testing.T) {
	t.Parallel()
	RequireRoot(t)
	dir := TempDir(t)
	sock := filepath.Join(dir, "crio.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()

	d := StartDaemon(t, Options{Dir: dir})
	if _, err := d.Runtime().Version(Context(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
	d.Signal(syscall.SIGINT)
	if code := d.Wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGINT = %d", code)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after SIGINT: %v", err)
	}
}

// TestRestartAfterKill: after a crash (SIGKILL) leaves its socket file, a
// restart on the same state works.
func TestRestartAfterKill(t *testing.T) {
	t.Parallel()
	d := StartDaemon(t, Options{})
	d.Kill()
	if _, err := os.Lstat(d.Socket); err != nil {
		t.Fatalf("SIGKILL should leave the socket file: %v", err)
	}
	d2 := StartDaemon(t, Options{Dir: d.Dir})
	if _, err := d2.Runtime().Version(Context(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
	if code := d2.Stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestSecondDaemonRefused: a second daemon on a live socket exits non-zero
// and leaves the first one serving.
func TestSecondDaemonRefused(t *testing.T) {
	t.Parallel()
	first := StartDaemon(t, Options{})
	second := StartDaemon(t, Options{Socket: first.Socket, NoWait: true})
	code := second.Wait(30 * time.Second)
	if code == 0 || code == -1 {
		t.Fatalf("second daemon exit code %d, want a failure", code)
	}
	if !strings.Contains(second.Stderr.String(), first.Socket) {
		t.Errorf("second daemon's error does not name the socket:\n%s", second.Stderr)
	}
	if _, err := first.Runtime().Version(Context(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("first daemon lost its socket: %v", err)
	}
	if _, err := os.Lstat(first.Socket); err != nil {
		t.Errorf("socket file gone: %v", err)
	}
}

// TestBadDropInRefusesStart: a typo in a drop-in stops the daemon before it
// serves, naming the file and line.
func TestBadDropInRefusesStart(t *testing.T) {
	t.Parallel()
	d := StartDaemon(t, Options{
		DropIns: map[string]string{"50-typo.conf": "[crio.runtime]\nlog_levl = \"x\"\n"},
		NoWait:  true,
	})
	code := d.Wait(30 * time.Second)
	if code == 0 || code == -1 {
		t.Fatalf("exit code %d, want a failure\n%s", code, d.Stderr)
	}
	stderr := d.Stderr.String()
	want := filepath.Join(d.ConfigDir, "50-typo.conf") + ":2:"
	if !strings.Contains(stderr, want) || !strings.Contains(stderr, "log_levl") {
		t.Errorf("stderr does not name %s and log_levl:\n%s", want, stderr)
	}
	if _, err := os.Lstat(d.Socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket created by a daemon that refused to start: %v", err)
	}
}

// TestConfigValidate: `crio config validate` checks without starting.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	RequireRoot(t)
	dir := TempDir(t)
	conf := filepath.Join(dir, "crio.conf")
	dropins := filepath.Join(dir, "crio.conf.d")
	os.MkdirAll(dropins, 0o755)
	if err := os.WriteFile(conf, []byte(MainConfig(dir, filepath.Join(dir, "crio.sock"))), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := RunCrio(t, "-c", conf, "-d", dropins, "config", "validate"); code != 0 {
		t.Fatalf("valid config: exit %d\n%s%s", code, out, errOut)
	}
	bad := filepath.Join(dropins, "50-x.conf")
	os.WriteFile(bad, []byte("[crio.runtime]\nlog_levl = \"x\"\n"), 0o644)
	code, _, errOut := RunCrio(t, "-c", conf, "-d", dropins, "config", "validate")
	if code != 1 || !strings.Contains(errOut, bad+":2:") || !strings.Contains(errOut, "log_levl") {
		t.Errorf("typo: exit %d, stderr:\n%s", code, errOut)
	}
	if _, err := os.Lstat(filepath.Join(dir, "crio.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("config validate created the socket")
	}
}

// TestFlagOverridesFile: a global flag beats the file (--log-level debug
// turns on the per-RPC debug line).
func TestFlagOverridesFile(t *testing.T) {
	t.Parallel()
	d := StartDaemon(t, Options{Args: []string{"--log-level", "debug"}})
	if _, err := d.Runtime().Version(Context(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
	if !d.Stderr.WaitFor("/runtime.v1.RuntimeService/Version", 10*time.Second) {
		t.Errorf("--log-level debug did not enable debug logging:\n%s", d.Stderr)
	}
	if code := d.Stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestVersionCommand: `crio version` reports a static binary.
func TestVersionCommand(t *testing.T) {
	t.Parallel()
	RequireRoot(t)
	code, out, _ := RunCrio(t, "version", "--json")
	var v map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("crio version --json: %d %q", code, out)
	}
	if v["linkmode"] != "static" {
		t.Errorf("linkmode = %v, want static", v["linkmode"])
	}
}

// TestSystemdCgroupManagerNeedsSystemd: this machine has no systemd as
// PID 1, so the systemd cgroup driver cannot be honoured: the daemon says so
// and does not serve (the kubelet would otherwise pick the systemd driver).
func TestSystemdCgroupManagerNeedsSystemd(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Fatal("this test needs a host without systemd as PID 1 (the CI machines have none)")
	}
	d := StartDaemon(t, Options{
		DropIns: map[string]string{"50-systemd.conf": "[crio.runtime]\ncgroup_manager = \"systemd\"\n"},
		NoWait:  true,
	})
	code := d.Wait(30 * time.Second)
	if code == 0 || code == -1 {
		t.Fatalf("exit code %d, want a failure\n%s", code, d.Stderr)
	}
	if stderr := d.Stderr.String(); !strings.Contains(stderr, "needs systemd as PID 1") {
		t.Errorf("stderr does not explain the refusal:\n%s", stderr)
	}
	if _, err := os.Lstat(d.Socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket created by a daemon that refused to start: %v", err)
	}
}
