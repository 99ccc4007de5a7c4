package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const mib = 1 << 20

// memoryCgroupOf reads the memory cgroup of pid from /proc/<pid>/cgroup
// and returns its directory (cgroup v1 memory hierarchy or v2).
func memoryCgroupOf(t *testing.T, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if slices.Contains(strings.Split(parts[1], ","), "memory") {
			return filepath.Join("/sys/fs/cgroup/memory", parts[2])
		}
	}
	for _, l := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return filepath.Join("/sys/fs/cgroup", p)
		}
	}
	t.Fatalf("no memory cgroup in %q", data)
	return ""
}

func readCgroupInt(t *testing.T, dir string, files ...string) int64 {
	t.Helper()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatalf("%s/%s: %q", dir, f, b)
		}
		return v
	}
	t.Fatalf("none of %v in %s", files, dir)
	return 0
}

// cAdvisor's view of GET /containers/<id> (container/crio/client.go).
type cadvisorInfo struct {
	Name        string            `json:"name"`
	Pid         int               `json:"pid"`
	Image       string            `json:"image"`
	CreatedTime int64             `json:"created_time"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	LogPath     string            `json:"log_path"`
	Root        string            `json:"root"`
	IP          string            `json:"ip_address"`
	IPs         []string          `json:"ip_addresses"`
	Sandbox     string            `json:"sandbox"`
}

// A container holding 40 MiB and a 5 MiB file in its writable layer shows
// plausible stats; its pod's network counters move when the host talks to
// it; an update of the memory limit reaches the cgroup and the status;
// the pod's update reaches the pod cgroup; cAdvisor's HTTP query answers.
func TestStatsAndResourceUpdates(t *testing.T) {
	e := startCtrDaemon(t, nil)
	rt := e.d.Runtime()
	podID, pod := e.pod(t, "stats", nil)
	// dd fills a 40 MiB buffer and blocks writing it into a pipe nobody
	// reads: the memory stays resident and anonymous.
	cfg := e.ctrConfig("hog", "sh", "-c",
		"head -c 5000000 /dev/urandom > /blob; dd if=/dev/zero bs=41943040 count=1 2>/dev/null | sleep 1000 & "+
			"while :; do r=$(awk '/^VmRSS/{print $2}' /proc/$(pidof dd)/status 2>/dev/null); [ \"${r:-0}\" -ge 40000 ] && break; sleep 0.1; done; echo ready; wait")
	cfg.Labels = map[string]string{"stats": "yes"}
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 256 * mib, CpuShares: 512}
	id := e.run(t, podID, pod, cfg)
	logPath := filepath.Join(pod.LogDirectory, "hog", "0.log")
	if !waitFor(60*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "ready")
	}) {
		t.Fatalf("container did not get ready: %s", e.status(t, id).GetMessage())
	}

	// The container's stats.
	resp, err := rt.ContainerStats(Context(t), &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	st := resp.Stats
	if st.Attributes.Id != id || st.Attributes.Labels["stats"] != "yes" || st.Attributes.Metadata.GetName() != cfg.Metadata.Name {
		t.Errorf("attributes %v", st.Attributes)
	}
	ws := st.Memory.GetWorkingSetBytes().GetValue()
	if ws < 40*mib || ws > 200*mib {
		t.Errorf("working set %d bytes, want 40..200 MiB", ws)
	}
	if st.Memory.GetUsageBytes().GetValue() < ws || st.Memory.GetRssBytes().GetValue() < 40*mib {
		t.Errorf("usage %d rss %d", st.Memory.GetUsageBytes().GetValue(), st.Memory.GetRssBytes().GetValue())
	}
	if av := st.Memory.GetAvailableBytes().GetValue(); av != 256*mib-ws {
		t.Errorf("available %d, want limit - working set = %d", av, 256*mib-ws)
	}
	if st.Memory.GetPageFaults().GetValue() == 0 || st.Memory.Timestamp == 0 {
		t.Errorf("page faults %v", st.Memory)
	}
	if cpu := st.Cpu.GetUsageCoreNanoSeconds().GetValue(); cpu == 0 || cpu > uint64(time.Minute)*64 {
		t.Errorf("cpu usage %d ns", cpu)
	}
	if wl := st.WritableLayer; wl.GetUsedBytes().GetValue() < 5000000 || wl.GetUsedBytes().GetValue() > 64*mib ||
		wl.GetInodesUsed().GetValue() < 2 || wl.GetFsId().GetMountpoint() == "" {
		t.Errorf("writable layer %v", wl)
	}
	time.Sleep(1100 * time.Millisecond)
	resp, err = rt.ContainerStats(Context(t), &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Stats.Cpu.UsageNanoCores == nil {
		t.Errorf("no usage_nano_cores from the second sample: %v", resp.Stats.Cpu)
	}

	// Filters.
	for _, f := range []*runtimeapi.ContainerStatsFilter{{Id: id}, {PodSandboxId: podID}, {LabelSelector: map[string]string{"stats": "yes"}}} {
		l, err := rt.ListContainerStats(Context(t), &runtimeapi.ListContainerStatsRequest{Filter: f})
		if err != nil || len(l.Stats) != 1 || l.Stats[0].Attributes.Id != id {
			t.Errorf("filter %v: %v %v", f, l, err)
		}
	}
	if l, err := rt.ListContainerStats(Context(t), &runtimeapi.ListContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"stats": "no"}}}); err != nil || len(l.Stats) != 0 {
		t.Errorf("non-matching filter: %v %v", l, err)
	}
	if _, err := rt.ContainerStats(Context(t), &runtimeapi.ContainerStatsRequest{ContainerId: strings.Repeat("f", 64)}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown container: %v", err)
	}

	// cAdvisor's query.
	code, body, err := e.d.HTTPGet("/containers/" + id)
	if err != nil || code != 200 {
		t.Fatalf("GET /containers: %d %v %s", code, err, body)
	}
	var info cadvisorInfo
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	podStatus, err := rt.PodSandboxStatus(Context(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	podIP := podStatus.Status.GetNetwork().GetIp()
	if info.Pid <= 0 || info.Name == "" || info.Image != e.image || info.Labels["stats"] != "yes" || info.Sandbox != podID ||
		info.LogPath != logPath || info.IP != podIP || !slices.Contains(info.IPs, podIP) || info.CreatedTime == 0 {
		t.Errorf("container info %s (pod ip %s)", body, podIP)
	}
	if fi, err := os.Stat(filepath.Join(info.Root, "blob")); err != nil || fi.Size() != 5000000 {
		t.Errorf("root %q does not hold the container's files: %v", info.Root, err)
	}
	if code, _, _ := e.d.HTTPGet("/containers/" + strings.Repeat("0", 64)); code != 404 {
		t.Errorf("unknown container: HTTP %d", code)
	}

	// UpdateContainerResources reaches the cgroup and the status.
	memDir := memoryCgroupOf(t, info.Pid)
	if got := readCgroupInt(t, memDir, "memory.limit_in_bytes", "memory.max"); got != 256*mib {
		t.Fatalf("memory limit before the update %d", got)
	}
	_, err = rt.UpdateContainerResources(Context(t), &runtimeapi.UpdateContainerResourcesRequest{
		ContainerId: id,
		Linux:       &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 512 * mib, CpuPeriod: 100000, CpuQuota: 50000},
	})
	if err != nil {
		t.Fatalf("UpdateContainerResources: %v", err)
	}
	if got := readCgroupInt(t, memDir, "memory.limit_in_bytes", "memory.max"); got != 512*mib {
		t.Errorf("memory limit after the update %d, want %d", got, 512*mib)
	}
	res := e.status(t, id).GetResources().GetLinux()
	if res.GetMemoryLimitInBytes() != 512*mib || res.GetCpuQuota() != 50000 || res.GetCpuPeriod() != 100000 || res.GetCpuShares() != 512 {
		t.Errorf("status resources after the update %v", res)
	}
	resp, _ = rt.ContainerStats(Context(t), &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if av := resp.Stats.Memory.GetAvailableBytes().GetValue(); av < 400*mib {
		t.Errorf("available %d after raising the limit", av)
	}
	for _, bad := range []*runtimeapi.LinuxContainerResources{{CpuShares: 1}, {CpuQuota: 10}, {CpusetCpus: "0;1"}, {MemoryLimitInBytes: -5}} {
		_, err := rt.UpdateContainerResources(Context(t), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: bad})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("update %v: %v, want InvalidArgument", bad, err)
		}
	}
	if _, err := rt.UpdateContainerResources(Context(t), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: strings.Repeat("e", 64), Linux: &runtimeapi.LinuxContainerResources{CpuShares: 2}}); status.Code(err) != codes.NotFound {
		t.Errorf("update of an unknown container: %v", err)
	}

	// UpdatePodSandboxResources reaches the pod cgroup (the container's
	// parent).
	podMem := filepath.Dir(memDir)
	_, err = rt.UpdatePodSandboxResources(Context(t), &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: podID,
		Resources:    &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 900 * mib, CpuShares: 1024},
		Overhead:     &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 100 * mib},
	})
	if err != nil {
		t.Fatalf("UpdatePodSandboxResources: %v", err)
	}
	if got := readCgroupInt(t, podMem, "memory.limit_in_bytes", "memory.max"); got != 1000*mib {
		t.Errorf("pod memory limit %d, want %d", got, 1000*mib)
	}

	// The pod: its cgroup, its network seen from inside its namespace.
	// Connection attempts from the host (refused: nothing listens) make
	// traffic both ways on the pod's eth0.
	for range 3 {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(podIP, "9"), time.Second); err == nil {
			c.Close()
		}
	}
	ps, err := rt.PodSandboxStats(Context(t), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	lin := ps.Stats.GetLinux()
	if lin.GetMemory().GetWorkingSetBytes().GetValue() < 40*mib || lin.GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 {
		t.Errorf("pod cgroup stats %v %v", lin.GetMemory(), lin.GetCpu())
	}
	if lin.GetProcess().GetProcessCount().GetValue() < 1 || len(lin.GetContainers()) != 1 || lin.Containers[0].Attributes.Id != id {
		t.Errorf("pod processes %v, containers %d", lin.GetProcess(), len(lin.GetContainers()))
	}
	nw := lin.GetNetwork().GetDefaultInterface()
	if nw.GetName() != "eth0" || nw.GetRxBytes().GetValue() == 0 || nw.GetTxBytes().GetValue() == 0 {
		t.Errorf("pod network %v", lin.GetNetwork())
	}
	l, err := rt.ListPodSandboxStats(Context(t), &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{LabelSelector: pod.Labels}})
	if err != nil || len(l.Stats) != 1 || l.Stats[0].Attributes.Id != podID || l.Stats[0].Linux.GetNetwork() == nil {
		t.Errorf("ListPodSandboxStats by label: %v %v", l, err)
	}
	if _, err := rt.PodSandboxStats(Context(t), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: strings.Repeat("d", 64)}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown pod: %v", err)
	}

	// Metrics: descriptors cover every metric, with as many labels.
	dr, err := rt.ListMetricDescriptors(Context(t), &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, d := range dr.Descriptors {
		keys[d.Name] = len(d.LabelKeys)
	}
	mr, err := rt.ListPodSandboxMetrics(Context(t), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var wsMetric, rxMetric uint64
	found := map[string]bool{}
	for _, pm := range mr.PodMetrics {
		if pm.PodSandboxId != podID {
			continue
		}
		all := pm.Metrics
		for _, cm := range pm.ContainerMetrics {
			all = append(all, cm.Metrics...)
		}
		for _, m := range all {
			found[m.Name] = true
			if n, ok := keys[m.Name]; !ok || n != len(m.LabelValues) {
				t.Errorf("metric %s: %d labels, descriptor %d (known %v)", m.Name, len(m.LabelValues), n, ok)
			}
			switch {
			case m.Name == "container_memory_working_set_bytes" && m.LabelValues[0] == id:
				wsMetric = m.Value.GetValue()
			case m.Name == "container_network_receive_bytes_total" && m.LabelValues[3] == "eth0":
				rxMetric = m.Value.GetValue()
			}
		}
	}
	if wsMetric < 40*mib || rxMetric == 0 {
		t.Errorf("metrics: working set %d, eth0 received %d", wsMetric, rxMetric)
	}
	// As critest checks: every descriptor has a value, but block I/O
	// counters, which need I/O the kernel accounts to a device.
	for name := range keys {
		optional := strings.HasPrefix(name, "container_blkio_") || strings.HasPrefix(name, "container_fs_reads") || strings.HasPrefix(name, "container_fs_writes")
		if !found[name] && !optional {
			t.Errorf("no value for metric %s", name)
		}
	}

	// No thread of the daemon stayed in the pod's network namespace.
	host, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", e.d.Cmd.Process.Pid))
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", e.d.Cmd.Process.Pid))
	for _, task := range tasks {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/task/%s/ns/net", e.d.Cmd.Process.Pid, task.Name()))
		if err == nil && ns != host {
			t.Errorf("daemon thread %s is in %s, not %s", task.Name(), ns, host)
		}
	}

	// Stopped: listed with its writable layer, no cgroup numbers; the
	// update is refused.
	if _, err := rt.StopContainer(Context(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	e.waitExited(t, id, 30*time.Second)
	resp, err = rt.ContainerStats(Context(t), &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if err != nil || resp.Stats.Cpu != nil || resp.Stats.WritableLayer == nil {
		t.Errorf("stats of a stopped container: %v %v", resp, err)
	}
	if _, err := rt.UpdateContainerResources(Context(t), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: &runtimeapi.LinuxContainerResources{CpuShares: 2}}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("update of a stopped container: %v", err)
	}
}
