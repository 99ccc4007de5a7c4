package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// testNet is a CNI network of one test's own: a bridge and a /24 under
// 10.199.0.0/16 that nothing else uses, no default route, no masquerade.
type testNet struct {
	Name    string
	Bridge  string
	Subnet  string // 10.199.X.0/24
	Prefix  string // "10.199.X."
	DataDir string // host-local allocations
}

var netSeq atomic.Int32

// newTestNet picks a subnet and bridge name unlikely to clash with another
// test process, and deletes the bridge at the end of the test.
func newTestNet(t testing.TB, dir string) *testNet {
	t.Helper()
	x := 10 + (os.Getpid()*7+int(netSeq.Add(1))*13)%240
	n := &testNet{
		Name:    fmt.Sprintf("crio-it-%d", x),
		Bridge:  fmt.Sprintf("crit%d-%d", os.Getpid()%10000, x),
		Subnet:  fmt.Sprintf("10.199.%d.0/24", x),
		Prefix:  fmt.Sprintf("10.199.%d.", x),
		DataDir: filepath.Join(dir, "ipam"),
	}
	if len(n.Bridge) > 15 {
		n.Bridge = n.Bridge[:15]
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", n.Bridge).Run() })
	return n
}

func (n *testNet) conflist() string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, n.Name, n.Bridge, n.Subnet, n.DataDir)
}

// install writes the network config into the daemon's network_dir.
func (n *testNet) install(t *testing.T, d *Daemon) {
	t.Helper()
	dir := filepath.Join(d.Dir, "cni", "net.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "10-test.conflist"), []byte(n.conflist()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startPodDaemon starts crio with the test's network installed.
func startPodDaemon(t testing.TB) (*Daemon, *testNet) {
	t.Helper()
	RequireRoot(t)
	dir := TempDir(t)
	n := newTestNet(t, dir)
	if err := os.MkdirAll(filepath.Join(dir, "cni", "net.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cni", "net.d", "10-test.conflist"), []byte(n.conflist()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := StartDaemon(t, Options{Dir: dir})
	// Runs before StartDaemon's cleanup kills the daemon: a failed test
	// must not leave pods (their init processes, veths, addresses) behind.
	t.Cleanup(func() { removeAllPods(d) })
	return d, n
}

// removeAllPods stops and removes every pod the daemon knows, if it still
// answers.
func removeAllPods(d *Daemon) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	select {
	case <-d.Exited():
		return
	default:
	}
	list, err := d.Runtime().ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return
	}
	for _, p := range list.Items {
		d.Runtime().StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id})
		d.Runtime().RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id})
	}
}

var podSeq atomic.Int32

// podConfig is a minimal pod config with unique metadata.
func podConfig(name string) *runtimeapi.PodSandboxConfig {
	i := podSeq.Add(1)
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: fmt.Sprintf("%s-%d", name, i), Namespace: "it", Uid: fmt.Sprintf("uid-%d-%d", os.Getpid(), i),
		},
		Hostname:  fmt.Sprintf("%s-%d", name, i),
		Labels:    map[string]string{"test": name},
		DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"10.199.0.10"}, Searches: []string{"it.svc.cluster.local"}, Options: []string{"ndots:5"}},
		Linux:     &runtimeapi.LinuxPodSandboxConfig{},
	}
}

func runPod(t *testing.T, d *Daemon, cfg *runtimeapi.PodSandboxConfig) string {
	t.Helper()
	resp, err := d.Runtime().RunPodSandbox(Context(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox %s: %v", cfg.GetMetadata().GetName(), err)
	}
	return resp.PodSandboxId
}

func removePod(t *testing.T, d *Daemon, id string) {
	t.Helper()
	ctx := Context(t)
	if _, err := d.Runtime().StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	if _, err := d.Runtime().RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
}

// podRecord is the part of the verbose status info tests look at.
type podRecord struct {
	NetNS, IPCNS, UTSNS string
	PIDNS               string `json:"pidns"`
	Init                *struct {
		PID int `json:"pid"`
	} `json:"init"`
	ResolvPath string `json:"resolv_path"`
	HostsPath  string `json:"hosts_path"`
	ShmPath    string `json:"shm_path"`
	LogDir     string `json:"log_dir"`
	Cgroup     *struct {
		Path string `json:"path"`
	} `json:"cgroup"`
}

func podStatus(t *testing.T, d *Daemon, id string) (*runtimeapi.PodSandboxStatus, *podRecord) {
	t.Helper()
	resp, err := d.Runtime().PodSandboxStatus(Context(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		t.Fatalf("PodSandboxStatus: %v", err)
	}
	var rec podRecord
	if err := json.Unmarshal([]byte(resp.Info["info"]), &rec); err != nil {
		t.Fatalf("verbose info: %v: %q", err, resp.Info["info"])
	}
	return resp.Status, &rec
}

// inNetns runs a command inside a pinned network namespace.
func inNetns(netns string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + netns, "--"}, args...)...)
}

func networkReady(t *testing.T, d *Daemon) (bool, string) {
	t.Helper()
	st, err := d.Runtime().Status(Context(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.GetStatus().GetConditions() {
		if c.Type == runtimeapi.NetworkReady {
			return c.Status, c.Reason + ": " + c.Message
		}
	}
	t.Fatal("no NetworkReady condition")
	return false, ""
}

func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// ctxTimeout is a context for slow steps (many pods).
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// sameFile reports whether two paths name the same inode (namespace files).
func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// procAlive reports whether pid runs and is not a zombie.
func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}
