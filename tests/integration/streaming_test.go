package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Exec, attach and port-forward through the real daemon, driven by
// crictl as a user would (SPDY and WebSocket), and ExecSync's limits
// through gRPC.

// crictlPath is the CRI client the conformance harness installs.
const crictlPath = "/opt/critools/crictl"

func requireCrictl(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(crictlPath); err != nil {
		t.Skipf("crictl not installed (%s: run the conformance harness's install-tools.sh)", crictlPath)
	}
}

// crictl is a crictl command against the daemon.
func (e *ctrEnv) crictl(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, crictlPath, append([]string{
		"--runtime-endpoint", "unix://" + e.d.Socket, "--image-endpoint", "unix://" + e.d.Socket, "--timeout", "30s",
	}, args...)...)
	// No /etc/crictl.yaml lookups that could point elsewhere.
	cmd.Env = append(os.Environ(), "CRI_CONFIG_FILE=/dev/null")
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runCrictl runs crictl to its end and returns stdout, stderr and the
// exit code.
func (e *ctrEnv) runCrictl(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.crictl(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("crictl %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// runningCtr runs a pod and a container in it.
func (e *ctrEnv) runningCtr(t *testing.T, name string, mutate func(*runtimeapi.ContainerConfig), args ...string) (podID, id string) {
	t.Helper()
	podID, pod := e.pod(t, name, nil)
	cfg := e.ctrConfig(name, args...)
	if mutate != nil {
		mutate(cfg)
	}
	return podID, e.run(t, podID, pod, cfg)
}

func TestExecSyncAndStreamingExec(t *testing.T) {
	requireCrictl(t)
	e := startCtrDaemon(t, nil)
	_, id := e.runningCtr(t, "exec", nil, "sleep", "100000")

	// Synchronous: output of both streams and the exit code.
	// crictl reports a non-zero exit code (and the stderr) in its error.
	out, errOut, code := e.runCrictl(t, "", "exec", "-s", id, "sh", "-c", "echo out; echo err >&2; exit 3")
	if code == 0 || !strings.Contains(errOut, "exited with 3: err") {
		t.Errorf("exec -s: stdout %q stderr %q code %d", out, errOut, code)
	}
	out, errOut, code = e.runCrictl(t, "", "exec", "-s", id, "sh", "-c", "echo out; echo err >&2")
	if !strings.HasPrefix(out, "out\n") || !strings.Contains(out+errOut, "err\n") || code != 0 {
		t.Errorf("exec -s: stdout %q stderr %q code %d", out, errOut, code)
	}
	if out, _, code := e.runCrictl(t, "", "exec", "-s", id, "id", "-u"); strings.TrimSpace(out) != "0" || code != 0 {
		t.Errorf("exec -s id: %q %d", out, code)
	}

	for _, transport := range []string{"spdy", "websocket"} {
		// Streaming, no terminal: stdin in, stdout and stderr out, exit
		// code back.
		out, errOut, code = e.runCrictl(t, "line one\n", "exec", "-r", transport, "-i", id, "sh", "-c", "read a; echo got $a; echo warn >&2; exit 4")
		if out != "got line one\n" || !strings.Contains(errOut, "warn") || !strings.Contains(errOut, "exit code 4") || code == 0 {
			t.Errorf("%s exec -i: stdout %q stderr %q code %d", transport, out, errOut, code)
		}
		// With a terminal, under script(1) so crictl has one to pass on:
		// the process sees a tty of script's size, and what is typed.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		line := fmt.Sprintf("%s --runtime-endpoint unix://%s --timeout 30s exec -r %s -it %s sh -c 'stty size; tty; read a; echo typed:$a; exit 5'",
			crictlPath, e.d.Socket, transport, id)
		cmd := exec.CommandContext(ctx, "script", "-qec", "stty cols 91 rows 37; "+line, "/dev/null")
		cmd.Env = append(os.Environ(), "CRI_CONFIG_FILE=/dev/null")
		cmd.Stdin = &slowReader{delay: time.Second, data: []byte("hello\n")}
		b, err := cmd.CombinedOutput()
		cancel()
		s := strings.ReplaceAll(string(b), "\r", "")
		if err == nil || !strings.Contains(s, "exit code 5") {
			t.Errorf("%s exec -it: %v, want exit code 5; output %q", transport, err, s)
		}
		if !strings.Contains(s, "37 91\n") || !strings.Contains(s, "/dev/pts/") || !strings.Contains(s, "typed:hello") {
			t.Errorf("%s exec -it output %q", transport, s)
		}
	}
}

// slowReader gives its data after a delay, then EOF: typed input that
// comes after the program started.
type slowReader struct {
	delay time.Duration
	data  []byte
	done  bool
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.done {
		time.Sleep(3 * time.Second) // keep the terminal open while the command runs
		return 0, io.EOF
	}
	time.Sleep(r.delay)
	r.done = true
	return copy(p, r.data), nil
}

// procsWith lists host pids whose command line is exactly args.
func procsWith(args ...string) []string {
	want := strings.Join(args, "\x00") + "\x00"
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if b, err := os.ReadFile(d + "/cmdline"); err == nil && string(b) == want {
			out = append(out, filepath.Base(d))
		}
	}
	return out
}

func TestExecSyncLimits(t *testing.T) {
	e := startCtrDaemon(t, nil)
	podID, id := e.runningCtr(t, "limits", nil, "sleep", "100000")
	rt := e.d.Runtime()
	big := grpc.MaxCallRecvMsgSize(64 << 20)

	// The timeout kills the process, and says so.
	start := time.Now()
	_, err := rt.ExecSync(Context(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "sleep 4747; echo never"}, Timeout: 1})
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("timeout: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a 1s timeout took %s", d)
	}
	if !waitFor(3*time.Second, func() bool { return len(procsWith("sleep", "4747")) == 0 }) {
		t.Errorf("the timed-out exec still runs: %v", procsWith("sleep", "4747"))
	}

	// Output is bounded, and the truncation is reported.
	resp, err := rt.ExecSync(Context(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "head -c 20000000 /dev/zero; echo done >&2"}, Timeout: 30}, big)
	if err != nil {
		t.Fatalf("large output: %v", err)
	}
	if len(resp.Stdout) != 8<<20-4<<10 || !strings.Contains(string(resp.Stderr), "stdout truncated") || !strings.HasPrefix(string(resp.Stderr), "done\n") {
		t.Errorf("large output: stdout %d bytes, stderr %q", len(resp.Stdout), resp.Stderr)
	}

	// Many execs, of every kind, leave no descriptor, thread or helper
	// process behind in the daemon.
	fdsBefore, threadsBefore := daemonFDs(e.d), daemonThreads(e.d)
	for i := range 40 {
		r, err := rt.ExecSync(Context(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo " + strconv.Itoa(i)}, Timeout: 10})
		if err != nil || string(r.Stdout) != strconv.Itoa(i)+"\n" {
			t.Fatalf("exec %d: %v %v", i, r, err)
		}
	}
	for range 5 {
		rt.ExecSync(Context(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sleep", "60"}, Timeout: 1})
	}
	time.Sleep(500 * time.Millisecond)
	if fds, threads := daemonFDs(e.d), daemonThreads(e.d); fds > fdsBefore+2 || threads > threadsBefore+3 {
		t.Errorf("after 45 execs: %d fds (before %d), %d threads (before %d)", fds, fdsBefore, threads, threadsBefore)
	}
	if n := runcExecs(e.d.Dir); n != 0 {
		t.Errorf("%d runc exec processes left", n)
	}

	// Hostile requests.
	for _, c := range []struct {
		req  *runtimeapi.ExecSyncRequest
		code codes.Code
	}{
		{&runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"echo", "a\x00b"}}, codes.InvalidArgument},
		{&runtimeapi.ExecSyncRequest{ContainerId: id}, codes.InvalidArgument},
		{&runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"true"}, Timeout: -1}, codes.InvalidArgument},
		{&runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{strings.Repeat("x", 2<<20)}}, codes.InvalidArgument},
		{&runtimeapi.ExecSyncRequest{ContainerId: strings.Repeat("f", 64), Cmd: []string{"true"}}, codes.NotFound},
		{&runtimeapi.ExecSyncRequest{ContainerId: "", Cmd: []string{"true"}}, codes.InvalidArgument},
	} {
		if _, err := rt.ExecSync(Context(t), c.req); status.Code(err) != c.code {
			t.Errorf("ExecSync(%.60q, %.40q): %v, want %s", c.req.ContainerId, c.req.Cmd, err, c.code)
		}
	}
	if _, err := rt.Exec(Context(t), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"a\x00"}, Stdout: true}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Exec with NUL: %v", err)
	}
	if _, err := rt.Exec(Context(t), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh"}, Tty: true, Stderr: true}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Exec with tty and stderr: %v", err)
	}
	unknown := strings.Repeat("e", 64)
	if _, err := rt.Exec(Context(t), &runtimeapi.ExecRequest{ContainerId: unknown, Cmd: []string{"sh"}, Stdout: true}); status.Code(err) != codes.NotFound {
		t.Errorf("Exec of an unknown container: %v", err)
	}
	if _, err := rt.Attach(Context(t), &runtimeapi.AttachRequest{ContainerId: unknown, Stdout: true}); status.Code(err) != codes.NotFound {
		t.Errorf("Attach to an unknown container: %v", err)
	}
	if _, err := rt.PortForward(Context(t), &runtimeapi.PortForwardRequest{PodSandboxId: unknown}); status.Code(err) != codes.NotFound {
		t.Errorf("PortForward to an unknown pod: %v", err)
	}
	if _, err := rt.PortForward(Context(t), &runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{70000}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("PortForward to port 70000: %v", err)
	}

	// A stopped container: FailedPrecondition, for every kind.
	if _, err := rt.StopContainer(Context(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	e.waitExited(t, id, 30*time.Second)
	if _, err := rt.ExecSync(Context(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"true"}}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ExecSync in a stopped container: %v", err)
	}
	if _, err := rt.Exec(Context(t), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Exec in a stopped container: %v", err)
	}
	if _, err := rt.Attach(Context(t), &runtimeapi.AttachRequest{ContainerId: id, Stdout: true}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Attach to a stopped container: %v", err)
	}
	// No exec helper (runc exec) is left.
	if n := runcExecs(e.d.Dir); n != 0 {
		t.Errorf("%d runc exec processes left", n)
	}
}

// runcExecs counts "runc ... exec" processes of this daemon's runc root.
func runcExecs(dir string) int {
	n := 0
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		s := string(b)
		if strings.Contains(s, "\x00exec\x00") && strings.Contains(s, filepath.Join(dir, "runc")) {
			n++
		}
	}
	return n
}

func TestAttach(t *testing.T) {
	requireCrictl(t)
	e := startCtrDaemon(t, nil)

	// Output only: a container printing ticks.
	_, id := e.runningCtr(t, "attach-out", nil, "sh", "-c", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done")
	for _, transport := range []string{"spdy", "websocket"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := e.crictl(ctx, "attach", "-r", transport, id)
		var out Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if !out.WaitFor("tick", 10*time.Second) {
			t.Errorf("%s attach: no output: %q", transport, out.String())
		}
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
	}

	// Input: a container reading its stdin (closed when the attached
	// client detaches: stdin_once), answering each line.
	_, id = e.runningCtr(t, "attach-in", func(c *runtimeapi.ContainerConfig) {
		c.Stdin, c.StdinOnce = true, true
	}, "sh", "-c", "while read l; do echo got:$l; done; echo bye")
	out, errOut, code := e.runCrictl(t, "hello\nworld\n", "attach", "-i", id)
	if code != 0 || !strings.Contains(out, "got:hello\ngot:world\n") {
		t.Errorf("attach -i: stdout %q stderr %q code %d", out, errOut, code)
	}
	st := e.waitExited(t, id, 20*time.Second)
	if st.ExitCode != 0 {
		t.Errorf("container exit code %d after stdin closed", st.ExitCode)
	}
	if lines := logLines(t, st.LogPath); strings.Join(lines, "|") != "stdout got:hello|stdout got:world|stdout bye" {
		t.Errorf("log %q", lines)
	}
}

// Attach to a container with a terminal, under script(1): the size
// crictl sends reaches the container's terminal through conmon's control
// FIFO, and typed input reaches the shell.
func TestAttachTerminal(t *testing.T) {
	requireCrictl(t)
	e := startCtrDaemon(t, nil)
	_, id := e.runningCtr(t, "attach-tty", func(c *runtimeapi.ContainerConfig) {
		c.Tty, c.Stdin = true, true
	}, "sh")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	line := fmt.Sprintf("%s --runtime-endpoint unix://%s --timeout 30s attach -it %s", crictlPath, e.d.Socket, id)
	cmd := exec.CommandContext(ctx, "script", "-qec", "stty cols 83 rows 29; "+line, "/dev/null")
	cmd.Env = append(os.Environ(), "CRI_CONFIG_FILE=/dev/null")
	cmd.Stdin = &slowReader{delay: 2 * time.Second, data: []byte("echo size=$(stty size); exit 7\n")}
	b, _ := cmd.CombinedOutput()
	s := strings.ReplaceAll(string(b), "\r", "")
	if !strings.Contains(s, "size=29 83") {
		t.Errorf("attach -it output %q", s)
	}
	if st := e.waitExited(t, id, 20*time.Second); st.ExitCode != 7 {
		t.Errorf("container exit code %d, want 7 (the typed exit)", st.ExitCode)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpdArgs serves a file with busybox httpd on port.
func httpdArgs(port int, content string) []string {
	return []string{"sh", "-c", fmt.Sprintf("mkdir -p /www && echo %s > /www/index.html && exec httpd -f -p %d -h /www", content, port)}
}

// portForwardGet runs crictl port-forward in the background and fetches
// the served file through it, count times.
func (e *ctrEnv) portForwardGet(t *testing.T, podID, transport string, podPort, count int) []string {
	t.Helper()
	local := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.crictl(ctx, "port-forward", "-r", transport, podID, fmt.Sprintf("%d:%d", local, podPort))
	var out Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if !out.WaitFor("Forwarding from", 20*time.Second) {
		t.Fatalf("port-forward did not start: %q", out.String())
	}
	var bodies []string
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range count {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", local))
		if err != nil {
			t.Fatalf("GET through port-forward: %v (crictl: %s)", err, out.String())
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bodies = append(bodies, string(b))
	}
	return bodies
}

func daemonFDs(d *Daemon) int {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.Cmd.Process.Pid))
	return len(entries)
}

func daemonThreads(d *Daemon) int {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", d.Cmd.Process.Pid))
	return len(entries)
}

func TestPortForward(t *testing.T) {
	requireCrictl(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	e := startCtrDaemon(t, nil)
	podID, _ := e.runningCtr(t, "pf", nil, httpdArgs(8080, "served-by-pod")...)

	// With curl, as a user would.
	local := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pf := e.crictl(ctx, "port-forward", podID, fmt.Sprintf("%d:8080", local))
	var pfOut Buffer
	pf.Stdout, pf.Stderr = &pfOut, &pfOut
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	if !pfOut.WaitFor("Forwarding from", 20*time.Second) {
		t.Fatalf("port-forward did not start: %q", pfOut.String())
	}
	var body []byte
	waitFor(10*time.Second, func() bool { // httpd may still be starting
		b, err := exec.Command("curl", "-sf", "--max-time", "5", fmt.Sprintf("http://127.0.0.1:%d/index.html", local)).Output()
		body = b
		return err == nil
	})
	pf.Process.Kill()
	pf.Wait()
	if string(body) != "served-by-pod\n" {
		t.Fatalf("curl through port-forward: %q (crictl: %s)", body, pfOut.String())
	}

	// Both transports; many connections leave no thread behind (each
	// dial enters the pod's namespace on a thread that then exits).
	before := daemonThreads(e.d)
	for _, transport := range []string{"spdy", "websocket"} {
		for i, b := range e.portForwardGet(t, podID, transport, 8080, 15) {
			if b != "served-by-pod\n" {
				t.Fatalf("%s GET %d: %q", transport, i, b)
			}
		}
	}
	time.Sleep(time.Second)
	if after := daemonThreads(e.d); after > before+5 {
		t.Errorf("daemon threads %d before 30 port-forwarded connections, %d after", before, after)
	}

	// A port nothing listens on: the connection fails, the daemon lives.
	local = freePort(t)
	pf = e.crictl(ctx, "port-forward", podID, fmt.Sprintf("%d:8081", local))
	pfOut = Buffer{}
	pf.Stdout, pf.Stderr = &pfOut, &pfOut
	pf.Start()
	if pfOut.WaitFor("Forwarding from", 20*time.Second) {
		if b, err := exec.Command("curl", "-sf", "--max-time", "5", fmt.Sprintf("http://127.0.0.1:%d/", local)).Output(); err == nil {
			t.Errorf("GET of a closed port succeeded: %q", b)
		}
	}
	pf.Process.Kill()
	pf.Wait()

	// A pod on the host's network: its port is the host's.
	hostPort := freePort(t)
	hostPod, hostCfg := e.pod(t, "pf-host", func(p *runtimeapi.PodSandboxConfig) {
		p.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
	})
	cfg := e.ctrConfig("pf-host", httpdArgs(hostPort, "served-on-host")...)
	e.run(t, hostPod, hostCfg, cfg)
	waitFor(10*time.Second, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(hostPort))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if b := e.portForwardGet(t, hostPod, "spdy", hostPort, 1); b[0] != "served-on-host\n" {
		t.Errorf("host network port-forward: %q", b[0])
	}
}

// writeCert makes a self-signed certificate for 127.0.0.1 and localhost.
func writeCert(t *testing.T, dir, name string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certPath, keyPath
}

func TestStreamingTLS(t *testing.T) {
	requireCrictl(t)
	dir := TempDir(t)
	srvCert, srvKey := writeCert(t, dir, "server")
	cliCert, cliKey := writeCert(t, dir, "client")
	e := startCtrDaemon(t, map[string]string{"30-tls.conf": fmt.Sprintf(
		"[crio.api]\nstream_enable_tls = true\nstream_tls_cert = %q\nstream_tls_key = %q\nstream_tls_ca = %q\n",
		srvCert, srvKey, cliCert)})
	_, id := e.runningCtr(t, "tls", nil, "sleep", "100000")
	resp, err := e.d.Runtime().Exec(Context(t), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
	if err != nil || !strings.HasPrefix(resp.Url, "https://127.0.0.1:") {
		t.Fatalf("Exec URL %v %v", resp, err)
	}
	out, errOut, code := e.runCrictl(t, "", "exec", "--tls-ca", srvCert, "--tls-cert", cliCert, "--tls-key", cliKey, id, "echo", "over-tls")
	if out != "over-tls\n" || code != 0 {
		t.Errorf("exec over TLS: %q %q %d", out, errOut, code)
	}
	// Without a client certificate the server refuses.
	if out, _, code := e.runCrictl(t, "", "exec", "--tls-ca", srvCert, id, "echo", "over-tls"); code == 0 || out != "" {
		t.Errorf("exec without a client certificate: %q %d", out, code)
	}
}
