// Package integration runs the real crio binary as root and talks to it the
// way the kubelet does: CRI gRPC and the HTTP API on its unix socket.
//
// The helpers here are shared by every integration test: StartDaemon gives a
// daemon with its own root, runroot, socket, exits dir and CNI dir under one
// temporary directory, so tests can run side by side. Set CRIO_BINARY to use
// a prebuilt binary (make test-integration passes bin/crio); otherwise the
// binary is built once per test process.
package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/internal/testutil"
)

// BuildTags are the tags every crio build uses.
const BuildTags = "containers_image_openpgp,exclude_graphdriver_btrfs"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// Binary returns the path of the crio binary under test: $CRIO_BINARY, or a
// build of ./daemon/cmd/crio made once per process.
func Binary() (string, error) {
	buildOnce.Do(func() {
		if p := os.Getenv("CRIO_BINARY"); p != "" {
			binPath, buildErr = filepath.Abs(p)
			return
		}
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, err = os.MkdirTemp("", "crio-bin-"); err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(buildDir, "crio")
		cmd := exec.Command("go", "build", "-tags", BuildTags, "-o", binPath, "./daemon/cmd/crio")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build crio: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// CleanupBinary removes a binary that Binary built. Call it from TestMain.
func CleanupBinary() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the crio module")
	}
	return filepath.Dir(gomod), nil
}

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("integration tests run crio as root")
	}
}

// TempDir returns a fresh directory with a short path (unix socket paths
// must fit in 108 bytes, which t.TempDir() of a long test name can exceed),
// removed at the end of the test after unmounting anything left under it.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "crio-it-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killUnder(dir)
		unmountUnder(dir)
		os.RemoveAll(dir)
	})
	return dir
}

// killUnder kills every process that a test's daemon left behind in dir:
// those whose root is below it (pod inits and containers) and those
// whose command line names it (conmon, runc). A test that fails part way
// would otherwise leave its pods running after it. It waits up to 5 s for
// them to go, so that their mounts and cgroups can be removed.
func killUnder(dir string) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	var killed []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		root, _ := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.HasPrefix(root, dir+"/") || bytes.Contains(cmdline, []byte(dir+"/")) {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed = append(killed, pid)
			}
		}
	}
	for deadline := time.Now().Add(5 * time.Second); len(killed) > 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		killed = slices.DeleteFunc(killed, func(pid int) bool {
			// Gone, or a zombie its parent has yet to reap.
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			i := bytes.LastIndexByte(stat, ')')
			return err != nil || i < 0 || bytes.HasPrefix(stat[i+1:], []byte(" Z"))
		})
	}
}

// unmountUnder detaches every mount below dir, deepest first, so that
// RemoveAll never walks into a live overlay or a pinned namespace.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
}

// Buffer is an io.Writer safe for a child process's output and readers.
type Buffer struct {
	testutil.SyncBuffer
}

// WaitFor polls until the buffer contains s or timeout passes.
func (b *Buffer) WaitFor(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(b.String(), s) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Options shape one daemon.
type Options struct {
	// DropIns are written to the drop-in directory, name to content
	// ("50-debug.conf": "[crio.runtime]\nlog_level = \"debug\"\n").
	DropIns map[string]string
	// Args are extra global flags, placed before any command.
	Args []string
	// Env is added to the daemon's environment.
	Env []string
	// Wrap is a command line that runs crio: the crio binary and its
	// arguments are appended to it. It must exec crio in the same process
	// (unshare without --fork, sh -c '... exec "$@"'), so that the signals
	// and the exit status tests see are crio's own.
	Wrap []string
	// Socket overrides the socket path (e.g. to share one between daemons).
	Socket string
	// Dir reuses a directory (e.g. to restart on the same state); "" makes one.
	Dir string
	// NoWait returns right after starting the process, without waiting for
	// the socket: for daemons expected to fail.
	NoWait bool
	// StartTimeout bounds the wait for the socket; 0 means 60s.
	StartTimeout time.Duration
}

// Daemon is a crio process under test.
type Daemon struct {
	Dir        string // everything of this daemon lives below it
	Socket     string
	ConfigPath string // the main crio.conf (-c)
	ConfigDir  string // the drop-in directory (-d)
	Stdout     *Buffer
	Stderr     *Buffer
	Cmd        *exec.Cmd

	t        testing.TB
	exited   chan struct{}
	exitErr  error
	connOnce sync.Once
	conn     *grpc.ClientConn
	connErr  error
}

// MainConfig is the crio.conf StartDaemon writes: every path under dir.
// Tests may rewrite it (and send SIGHUP).
func MainConfig(dir, socket string) string {
	return fmt.Sprintf(`# written by tests/integration
[crio]
root = %[1]q
runroot = %[2]q
log_dir = %[3]q
version_file = %[4]q
version_file_persist = %[5]q
clean_shutdown_file = %[6]q

[crio.api]
listen = %[7]q

[crio.runtime]
log_level = "info"
cgroup_manager = "cgroupfs"
container_exits_dir = %[8]q
container_attach_socket_dir = %[9]q
namespaces_dir = %[10]q

[crio.network]
network_dir = %[11]q
plugin_dirs = ["/usr/lib/cni", "/opt/cni/bin"]
`,
		filepath.Join(dir, "root"),
		filepath.Join(dir, "runroot"),
		filepath.Join(dir, "log", "pods"),
		filepath.Join(dir, "run", "version"),
		filepath.Join(dir, "lib", "version"),
		filepath.Join(dir, "lib", "clean.shutdown"),
		socket,
		filepath.Join(dir, "run", "exits"),
		filepath.Join(dir, "run"),
		filepath.Join(dir, "ns"),
		filepath.Join(dir, "cni", "net.d")+"/",
	)
}

// StartDaemon writes a configuration, starts crio with -c and -d and, unless
// opts.NoWait, waits until it answers Version on its socket. The daemon is
// killed at the end of the test if still running.
func StartDaemon(t testing.TB, opts Options) *Daemon {
	t.Helper()
	RequireRoot(t)
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := opts.Dir
	if dir == "" {
		dir = TempDir(t)
	}
	d := &Daemon{
		Dir:        dir,
		Socket:     opts.Socket,
		ConfigPath: filepath.Join(dir, "crio.conf"),
		ConfigDir:  filepath.Join(dir, "crio.conf.d"),
		Stdout:     &Buffer{},
		Stderr:     &Buffer{},
		t:          t,
		exited:     make(chan struct{}),
	}
	if d.Socket == "" {
		d.Socket = filepath.Join(dir, "crio.sock")
	}
	if err := os.MkdirAll(d.ConfigDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.ConfigPath); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(d.ConfigPath, []byte(MainConfig(dir, d.Socket)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range opts.DropIns {
		if err := os.WriteFile(filepath.Join(d.ConfigDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	args := append([]string{"-c", d.ConfigPath, "-d", d.ConfigDir}, opts.Args...)
	if len(opts.Wrap) > 0 {
		args = slices.Concat(opts.Wrap[1:], []string{bin}, args)
		bin = opts.Wrap[0]
	}
	d.Cmd = exec.Command(bin, args...)
	d.Cmd.Stdout = d.Stdout
	d.Cmd.Stderr = d.Stderr
	d.Cmd.Env = append(os.Environ(), opts.Env...)
	if err := d.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.exitErr = d.Cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		if d.conn != nil {
			d.conn.Close()
		}
		d.Kill()
		if t.Failed() {
			t.Logf("crio stderr:\n%s", d.Stderr)
		}
	})
	if opts.NoWait {
		return d
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	if err := d.WaitReady(timeout); err != nil {
		t.Fatalf("crio did not start: %v\nstderr:\n%s", err, d.Stderr)
	}
	return d
}

// WaitReady waits until the daemon answers Version, or exits, or timeout.
func (d *Daemon) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-d.exited:
			return fmt.Errorf("crio exited: %v", d.exitErr)
		default:
		}
		// Dial first: a stale socket file exists before the daemon listens,
		// and a gRPC connection refused there would back off for a second.
		if c, err := net.DialTimeout("unix", d.Socket, time.Second); err == nil {
			c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := d.Runtime().Version(ctx, &runtimeapi.VersionRequest{})
			cancel()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s after %s", d.Socket, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Exited is closed when the process has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// Wait waits for the process to exit and returns its exit code (-1 if it
// did not exit within timeout or died by a signal).
func (d *Daemon) Wait(timeout time.Duration) int {
	select {
	case <-d.exited:
	case <-time.After(timeout):
		return -1
	}
	if d.exitErr == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(d.exitErr, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig os.Signal) error {
	return d.Cmd.Process.Signal(sig)
}

// Stop sends SIGTERM and returns the exit code (-1 on timeout).
func (d *Daemon) Stop() int {
	select {
	case <-d.exited:
	default:
		d.Signal(syscall.SIGTERM)
	}
	return d.Wait(30 * time.Second)
}

// Kill ends the daemon at once, as a crash would.
func (d *Daemon) Kill() {
	select {
	case <-d.exited:
		return
	default:
	}
	d.Cmd.Process.Kill()
	<-d.exited
}

// Conn is a gRPC connection to the daemon's socket, shared by the clients.
func (d *Daemon) Conn() *grpc.ClientConn {
	d.connOnce.Do(func() {
		d.conn, d.connErr = grpc.NewClient("unix://"+d.Socket,
			grpc.WithTransportCredentials(insecure.NewCredentials()))
	})
	if d.connErr != nil {
		d.t.Fatal(d.connErr)
	}
	return d.conn
}

// Runtime is a CRI RuntimeService client.
func (d *Daemon) Runtime() runtimeapi.RuntimeServiceClient {
	return runtimeapi.NewRuntimeServiceClient(d.Conn())
}

// Image is a CRI ImageService client.
func (d *Daemon) Image() runtimeapi.ImageServiceClient {
	return runtimeapi.NewImageServiceClient(d.Conn())
}

// HTTPGet sends GET path over the socket, as cAdvisor and `crio status` do.
func (d *Daemon) HTTPGet(path string) (int, []byte, error) {
	return HTTPGet(d.Socket, path)
}

// HTTPGet sends GET path over the unix socket.
func HTTPGet(socket, path string) (int, []byte, error) {
	c := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", socket)
		}},
	}
	resp, err := c.Get("http://crio" + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// Context is a context for one RPC of a test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// RunCrio runs the crio binary once (a CLI command) and returns its exit
// code and output.
func RunCrio(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run crio: %v", err)
	}
	return code, out.String(), errb.String()
}
