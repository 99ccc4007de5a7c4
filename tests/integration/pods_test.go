package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A pod gets an IP on the test's network, its namespaces are pinned, its
// hostname/DNS/sysctls are in place, two pods reach each other, and Stop
// and Remove take it all away.
func TestPodNetworkAndNamespaces(t *testing.T) {
	d, n := startPodDaemon(t)
	if ok, why := networkReady(t, d); !ok {
		t.Fatalf("NetworkReady false: %s", why)
	}
	a := podConfig("net-a")
	a.Linux.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shmmni": "1234"}
	idA := runPod(t, d, a)
	idB := runPod(t, d, podConfig("net-b"))

	stA, recA := podStatus(t, d, idA)
	stB, recB := podStatus(t, d, idB)
	for _, st := range []*runtimeapi.PodSandboxStatus{stA, stB} {
		if st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("pod %s state %v", st.Id, st.State)
		}
		if ip := st.GetNetwork().GetIp(); !strings.HasPrefix(ip, n.Prefix) {
			t.Errorf("pod %s IP %q not in %s", st.Id, ip, n.Subnet)
		}
		if st.GetMetadata().GetNamespace() != "it" || st.Labels["test"] == "" || st.CreatedAt == 0 {
			t.Errorf("status fields: %v", st)
		}
	}
	for _, p := range []string{recA.NetNS, recA.IPCNS, recA.UTSNS} {
		if !strings.HasPrefix(p, filepath.Join(d.Dir, "ns")+"/") || !strings.HasSuffix(p, idA) {
			t.Errorf("namespace file %q not under namespaces_dir", p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("namespace file: %v", err)
		}
	}

	// Pods sharing one PID namespace (the default) have it pinned, held by
	// an init process that is PID 1 there and lives in the pod's other
	// namespaces.
	if recA.Init == nil || recA.PIDNS == "" {
		t.Fatalf("no pod init: %+v", recA)
	}
	initPID := recA.Init.PID
	if !sameFile(fmt.Sprintf("/proc/%d/ns/pid", initPID), recA.PIDNS) || !sameFile(fmt.Sprintf("/proc/%d/ns/net", initPID), recA.NetNS) {
		t.Error("pod init is not in the pinned PID namespace and the pod's network namespace")
	}
	if out, err := exec.Command("nsenter", "--pid="+recA.PIDNS, "--", "busybox", "sh", "-c", "echo $$").Output(); err != nil || strings.TrimSpace(string(out)) == "1" {
		t.Errorf("a process joining the pod's PID namespace: pid %q (%v); PID 1 should be taken by the init", out, err)
	}

	// A reaches B and B reaches A, from inside their network namespaces.
	for _, c := range []struct{ from, to string }{{recA.NetNS, stB.Network.Ip}, {recB.NetNS, stA.Network.Ip}} {
		if out, err := inNetns(c.from, "busybox", "ping", "-c", "1", "-W", "3", c.to).CombinedOutput(); err != nil {
			t.Errorf("ping %s from %s: %v\n%s", c.to, c.from, err, out)
		}
	}

	out, err := exec.Command("nsenter", "--uts="+recA.UTSNS, "--", "busybox", "hostname").Output()
	if err != nil || strings.TrimSpace(string(out)) != a.Hostname {
		t.Errorf("hostname in pod = %q (%v), want %q", out, err, a.Hostname)
	}
	if out, err := inNetns(recA.NetNS, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start").Output(); err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Errorf("net sysctl in pod = %q (%v)", out, err)
	}
	if out, err := exec.Command("nsenter", "--ipc="+recA.IPCNS, "--", "cat", "/proc/sys/kernel/shmmni").Output(); err != nil || strings.TrimSpace(string(out)) != "1234" {
		t.Errorf("ipc sysctl in pod = %q (%v)", out, err)
	}
	resolv, _ := os.ReadFile(recA.ResolvPath)
	if want := "search it.svc.cluster.local\nnameserver 10.199.0.10\noptions ndots:5\n"; !strings.HasSuffix(string(resolv), want) {
		t.Errorf("resolv.conf = %q", resolv)
	}
	hosts, _ := os.ReadFile(recA.HostsPath)
	if !strings.Contains(string(hosts), stA.Network.Ip+"\t"+a.Hostname+"\n") || !strings.Contains(string(hosts), "127.0.0.1\tlocalhost") {
		t.Errorf("hosts = %q", hosts)
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); !bytes.Contains(mounts, []byte(" "+recA.ShmPath+" ")) {
		t.Errorf("shm %s not mounted", recA.ShmPath)
	}
	if fi, err := os.Stat(recA.LogDir); err != nil || !fi.IsDir() {
		t.Errorf("log dir: %v", err)
	}
	for _, root := range []string{"/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified"} {
		if _, err := os.Stat(root); err != nil || recA.Cgroup == nil {
			continue
		}
		if root == "/sys/fs/cgroup/unified" {
			continue // a hybrid host's v2 mount carries no pod cgroups
		}
		if _, err := os.Stat(filepath.Join(root, recA.Cgroup.Path)); err != nil {
			t.Errorf("pod cgroup: %v", err)
		}
	}

	// List with filters.
	list, err := d.Runtime().ListPodSandbox(Context(t), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{"test": "net-a"},
	}})
	if err != nil || len(list.Items) != 1 || list.Items[0].Id != idA {
		t.Errorf("list by label: %v %v", list, err)
	}
	list, err = d.Runtime().ListPodSandbox(Context(t), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{Id: idB[:12]}})
	if err != nil || len(list.Items) != 1 || list.Items[0].Id != idB {
		t.Errorf("list by id prefix: %v %v", list, err)
	}

	// Stop: network gone, state NOTREADY, twice is fine.
	for range 2 {
		if _, err := d.Runtime().StopPodSandbox(Context(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: idA}); err != nil {
			t.Fatalf("StopPodSandbox: %v", err)
		}
	}
	stA, _ = podStatus(t, d, idA)
	if stA.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || stA.GetNetwork().GetIp() != "" {
		t.Errorf("after stop: %v", stA)
	}
	if procAlive(initPID) {
		t.Errorf("pod init %d still runs after stop", initPID)
	}
	list, err = d.Runtime().ListPodSandbox(Context(t), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
	}})
	if err != nil || len(list.Items) != 1 || list.Items[0].Id != idB {
		t.Errorf("list ready: %v %v", list, err)
	}
	// Remove: everything gone, twice is fine, then NotFound.
	for range 2 {
		if _, err := d.Runtime().RemovePodSandbox(Context(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: idA}); err != nil {
			t.Fatalf("RemovePodSandbox: %v", err)
		}
	}
	for _, p := range []string{recA.NetNS, recA.IPCNS, recA.UTSNS, recA.PIDNS, recA.ResolvPath, recA.LogDir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
	if _, err := d.Runtime().PodSandboxStatus(Context(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: idA}); status.Code(err) != codes.NotFound {
		t.Errorf("status of removed pod: %v, want NotFound", err)
	}
	// Unknown ids: stop and remove succeed.
	unknown := strings.Repeat("ab", 32)
	if _, err := d.Runtime().StopPodSandbox(Context(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("stop unknown: %v", err)
	}
	if _, err := d.Runtime().RemovePodSandbox(Context(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("remove unknown: %v", err)
	}
	removePod(t, d, idB)
}

// A hostNetwork pod has no network namespace of its own and no CNI
// attachment; host IPC skips the IPC namespace and the private shm.
func TestHostNetworkPod(t *testing.T) {
	d, _ := startPodDaemon(t)
	cfg := podConfig("hostnet")
	cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE,
	}}
	cfg.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 80}}
	id := runPod(t, d, cfg)
	st, rec := podStatus(t, d, id)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.GetNetwork().GetIp() != "" {
		t.Errorf("status: %v", st)
	}
	if ns := st.GetLinux().GetNamespaces().GetOptions(); ns.GetNetwork() != runtimeapi.NamespaceMode_NODE || ns.GetPid() != runtimeapi.NamespaceMode_NODE {
		t.Errorf("namespace options: %v", ns)
	}
	if rec.NetNS != "" || rec.IPCNS != "" || rec.UTSNS != "" || rec.ShmPath != "" || rec.PIDNS != "" || rec.Init != nil {
		t.Errorf("host pod has pinned namespaces or shm: %+v", rec)
	}
	entries, _ := os.ReadDir(filepath.Join(d.Dir, "ns", "netns"))
	if len(entries) != 0 {
		t.Errorf("netns files: %v", entries)
	}
	// A net sysctl cannot be set for a pod on the host network.
	bad := podConfig("hostnet-sysctl")
	bad.Linux.SecurityContext = cfg.Linux.SecurityContext
	bad.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
	_, err := d.Runtime().RunPodSandbox(Context(t), &runtimeapi.RunPodSandboxRequest{Config: bad})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "config.linux.sysctls") {
		t.Errorf("net sysctl on host network: %v", err)
	}
	removePod(t, d, id)
}

// A host port mapping is reachable on 127.0.0.1 through the portmap plugin.
func TestHostPortMapping(t *testing.T) {
	d, _ := startPodDaemon(t)
	hostPort := int32(20000 + os.Getpid()%20000)
	cfg := podConfig("portmap")
	cfg.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 8080, HostPort: hostPort}}
	id := runPod(t, d, cfg)
	defer removePod(t, d, id)
	_, rec := podStatus(t, d, id)

	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("hello from the pod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	httpd := inNetns(rec.NetNS, "busybox", "httpd", "-f", "-p", "8080", "-h", www)
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { httpd.Process.Kill(); httpd.Wait() }()

	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", hostPort)
	var body []byte
	var lastErr error
	ok := waitFor(10*time.Second, func() bool {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			lastErr = err
			return false
		}
		defer resp.Body.Close()
		body, lastErr = io.ReadAll(resp.Body)
		return lastErr == nil && resp.StatusCode == 200
	})
	if !ok || string(body) != "hello from the pod\n" {
		t.Fatalf("GET %s: %q, %v", url, body, lastErr)
	}
}

// NetworkReady is false until a valid config appears, then true without a
// restart.
func TestNetworkReadyFollowsConfigDir(t *testing.T) {
	d := StartDaemon(t, Options{})
	n := newTestNet(t, d.Dir)
	ready, why := networkReady(t, d)
	if ready || !strings.Contains(why, "NetworkPluginNotReady") {
		t.Fatalf("NetworkReady = %v (%s), want false", ready, why)
	}
	// RunPodSandbox fails cleanly while the network is not ready.
	if _, err := d.Runtime().RunPodSandbox(Context(t), &runtimeapi.RunPodSandboxRequest{Config: podConfig("early")}); err == nil {
		t.Error("RunPodSandbox succeeded without a network")
	}
	// An invalid config does not make it ready.
	dir := filepath.Join(d.Dir, "cni", "net.d")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "05-broken.conflist"), []byte(`{"name": "x", "plugins": [{"type": "no-such-plugin"}]}`), 0o644)
	if ready, _ := networkReady(t, d); ready {
		t.Error("ready with a config whose plugin does not exist")
	}
	n.install(t, d)
	if !waitFor(10*time.Second, func() bool { r, _ := networkReady(t, d); return r }) {
		_, why := networkReady(t, d)
		t.Fatalf("NetworkReady still false after a config appeared: %s", why)
	}
	id := runPod(t, d, podConfig("late"))
	removePod(t, d, id)
}

// A retried RunPodSandbox (same metadata and config) returns the same pod,
// also while the first is in flight; a different config under the same
// metadata is AlreadyExists.
func TestRunPodSandboxIdempotent(t *testing.T) {
	d, _ := startPodDaemon(t)
	cfg := podConfig("retry")
	ids := make([]string, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			resp, err := d.Runtime().RunPodSandbox(Context(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
			errs[i] = err
			if err == nil {
				ids[i] = resp.PodSandboxId
			}
		})
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("concurrent RunPodSandbox: ids %v errs %v", ids, errs)
		}
	}
	if again := runPod(t, d, cfg); again != ids[0] {
		t.Errorf("retry returned %s, want %s", again, ids[0])
	}
	changed := podConfig("retry")
	changed.Metadata = cfg.Metadata
	changed.Labels = map[string]string{"other": "labels"}
	_, err := d.Runtime().RunPodSandbox(Context(t), &runtimeapi.RunPodSandboxRequest{Config: changed})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("different config, same metadata: %v, want AlreadyExists", err)
	}
	list, _ := d.Runtime().ListPodSandbox(Context(t), &runtimeapi.ListPodSandboxRequest{})
	if len(list.GetItems()) != 1 {
		t.Errorf("%d pods listed, want 1", len(list.GetItems()))
	}
	removePod(t, d, ids[0])
	// After removal the same metadata makes a new pod.
	if id := runPod(t, d, cfg); id == ids[0] {
		t.Error("a removed pod's id came back")
	} else {
		removePod(t, d, id)
	}
}

// Bad configs are refused with InvalidArgument naming the field, and leave
// nothing behind.
func TestBadPodConfigsRefused(t *testing.T) {
	d, _ := startPodDaemon(t)
	cases := []struct {
		field string
		edit  func(*runtimeapi.PodSandboxConfig)
	}{
		{"config.metadata", func(c *runtimeapi.PodSandboxConfig) { c.Metadata = nil }},
		{"config.metadata.name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "" }},
		{"config.metadata.namespace", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "a;b=c" }},
		{"config.metadata.uid", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Uid = "" }},
		{"config.hostname", func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "evil\nhost" }},
		{"config.hostname", func(c *runtimeapi.PodSandboxConfig) { c.Hostname = strings.Repeat("h", 65) }},
		{"config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "relative/logs" }},
		{"config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/var/log/../../proc/x" }},
		{"config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/tmp/a\x00b" }},
		{"config.dns_config.servers[0]", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Servers = []string{"1.2.3.4\nnameserver 6.6.6.6"} }},
		{"config.dns_config.searches[1]", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Searches = []string{"ok", "bad search"} }},
		{"config.dns_config.options[0]", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Options = []string{"ndots:5\x00"} }},
		{"config.port_mappings[0].container_port", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 70000}}
		}},
		{"config.port_mappings[0].host_ip", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 8080, HostIp: "localhost"}}
		}},
		{"config.linux.sysctls[kernel.panic]", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"kernel.panic": "1"} }},
		{"config.linux.sysctls[net/../../x]", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"net/../../x": "1"} }},
		{"config.linux.sysctls[net.ipv4.ip_forward]", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1\n"}
		}},
		{"config.linux.cgroup_parent", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "/kubepods/../../etc" }},
		{"config.linux.security_context.namespace_options.network", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_TARGET}}
		}},
		{"config.labels", func(c *runtimeapi.PodSandboxConfig) { c.Labels = map[string]string{"": "x"} }},
		// The CRI: a pod-level group without a user MUST be refused.
		{"config.linux.security_context.run_as_group", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{RunAsGroup: &runtimeapi.Int64Value{Value: 1000}}
		}},
	}
	for _, tc := range cases {
		cfg := podConfig("bad")
		tc.edit(cfg)
		_, err := d.Runtime().RunPodSandbox(Context(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: got %v, want InvalidArgument naming the field", tc.field, err)
		}
	}
	_, err := d.Runtime().RunPodSandbox(Context(t), &runtimeapi.RunPodSandboxRequest{Config: podConfig("handler"), RuntimeHandler: "no-such-handler"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "runtime_handler") {
		t.Errorf("unknown handler: %v", err)
	}
	_, err = d.Runtime().PodSandboxStatus(Context(t), &runtimeapi.PodSandboxStatusRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("status without id: %v", err)
	}
	list, _ := d.Runtime().ListPodSandbox(Context(t), &runtimeapi.ListPodSandboxRequest{})
	if len(list.GetItems()) != 0 {
		t.Errorf("refused configs left pods: %v", list.Items)
	}
	if entries, _ := os.ReadDir(filepath.Join(d.Dir, "ns", "netns")); len(entries) != 0 {
		t.Errorf("refused configs left namespace files: %v", entries)
	}
}

// Pods survive a daemon restart: the records list the same pods, which
// can then be removed cleanly.
func TestPodsListedAfterRestart(t *testing.T) {
	d, _ := startPodDaemon(t)
	id := runPod(t, d, podConfig("restart"))
	_, rec := podStatus(t, d, id)
	if code := d.Stop(); code != 0 {
		t.Fatalf("crio exited %d", code)
	}
	d2 := StartDaemon(t, Options{Dir: d.Dir})
	st, _ := podStatus(t, d2, id)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.GetNetwork().GetIp() == "" {
		t.Errorf("after restart: %v", st)
	}
	// The pod's init survived the restart; the new daemon, not its
	// parent, still stops it.
	if rec.Init == nil || !procAlive(rec.Init.PID) {
		t.Fatalf("pod init did not survive the restart: %+v", rec.Init)
	}
	removePod(t, d2, id)
	if _, err := os.Stat(rec.NetNS); !os.IsNotExist(err) {
		t.Errorf("netns left: %v", err)
	}
	if procAlive(rec.Init.PID) {
		t.Errorf("pod init %d still runs after remove", rec.Init.PID)
	}
}
