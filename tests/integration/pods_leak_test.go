package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// footprint counts what pods of one daemon and network leave on the host.
type footprint struct {
	Mounts, NSFiles, Cgroups, Veths, IPTables, IPAM, CNICache, Records, RunDirs, InitProcs int
}

func takeFootprint(t *testing.T, d *Daemon, n *testNet, ids map[string]bool) footprint {
	t.Helper()
	var f footprint
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(mi), "\n") {
		if fs := strings.Fields(l); len(fs) > 4 && strings.HasPrefix(fs[4], d.Dir+"/") {
			f.Mounts++
		}
	}
	for _, k := range []string{"netns", "ipcns", "utsns", "pidns"} {
		e, _ := os.ReadDir(filepath.Join(d.Dir, "ns", k))
		f.NSFiles += len(e)
	}
	// Pod cgroups of this daemon's pods, in every hierarchy.
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, r := range roots {
		for id := range ids {
			if _, err := os.Stat(filepath.Join(r, "crio", "pod-"+id)); err == nil {
				f.Cgroups++
			}
		}
	}
	// Veths attached to the test's bridge.
	out, _ := exec.Command("ip", "-o", "link", "show", "master", n.Bridge).Output()
	f.Veths = strings.Count(string(out), "\n")
	// iptables rules that name one of the pods or the test's subnet.
	for _, table := range []string{"nat", "filter"} {
		out, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			t.Fatalf("iptables-save: %v", err)
		}
		for l := range strings.SplitSeq(string(out), "\n") {
			hit := strings.Contains(l, n.Prefix)
			for id := range ids {
				hit = hit || strings.Contains(l, id)
			}
			if hit || strings.HasPrefix(l, ":CNI-DN-") || strings.HasPrefix(l, "-A CNI-DN-") {
				f.IPTables++
			}
		}
	}
	// host-local allocations: one file per address, named by the address.
	alloc, _ := os.ReadDir(filepath.Join(n.DataDir, n.Name))
	for _, e := range alloc {
		if strings.HasPrefix(e.Name(), n.Prefix) {
			f.IPAM++
		}
	}
	cache, _ := filepath.Glob(filepath.Join("/var/lib/cni/results", n.Name+"-*"))
	f.CNICache = len(cache)
	// The processes holding shared PID namespaces name their pod.
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range cmdlines {
		b, _ := os.ReadFile(c)
		if name, id, ok := strings.Cut(string(b), "\x00"); ok && name == "crio-pod-init" && ids[strings.TrimRight(id, "\x00")] {
			f.InitProcs++
		}
	}
	f.Records = len(recordIDs(d.Dir, "sandbox"))
	run, _ := os.ReadDir(filepath.Join(d.Dir, "runroot", "crio-sandboxes"))
	f.RunDirs = len(run)
	return f
}

// 50 pods, each with a host port, created and removed concurrently, leave
// no mount, namespace file, cgroup, veth, iptables rule, IPAM allocation,
// CNI cache entry, record or directory behind.
func TestFiftyPodsLeaveNothingBehind(t *testing.T) {
	d, n := startPodDaemon(t)
	// A first pod creates the shared, long-lived things (the bridge,
	// portmap's top-level chains, host-local's lock file).
	warm := runPod(t, d, podConfig("warmup"))
	removePod(t, d, warm)

	const pods = 50
	ids := map[string]bool{}
	before := takeFootprint(t, d, n, ids)

	var mu sync.Mutex
	errs := make(chan error, pods)
	basePort := int32(30000 + os.Getpid()%20000)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	start := time.Now()
	for i := range pods {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cfg := podConfig("leak")
			cfg.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: basePort + int32(i)}}
			cfg.Linux.Sysctls = map[string]string{"net.ipv4.ping_group_range": "0 2147483647"}
			resp, err := d.Runtime().RunPodSandbox(ctxTimeout(t, 2*time.Minute), &runtimeapi.RunPodSandboxRequest{Config: cfg})
			if err != nil {
				errs <- fmt.Errorf("pod %d: %w", i, err)
				return
			}
			mu.Lock()
			ids[resp.PodSandboxId] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d pods created in %s", len(ids), time.Since(start))

	during := takeFootprint(t, d, n, ids)
	t.Logf("footprint before %+v, with %d pods %+v", before, len(ids), during)
	// Each pod (sharing one PID namespace, the default): 4 namespace files,
	// 5 mounts (4 namespaces + shm), an init process, one veth, one
	// address, cgroups in every v1 hierarchy.
	if during.NSFiles-before.NSFiles != 4*len(ids) || during.Mounts-before.Mounts != 5*len(ids) ||
		during.InitProcs != len(ids) ||
		during.Veths-before.Veths != len(ids) || during.IPAM-before.IPAM != len(ids) ||
		during.Cgroups == 0 || during.IPTables <= before.IPTables || during.Records-before.Records != len(ids) {
		t.Errorf("with %d pods: before %+v, during %+v", len(ids), before, during)
	}
	list, err := d.Runtime().ListPodSandbox(Context(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(list.Items) != len(ids) {
		t.Errorf("ListPodSandbox: %d items, %v", len(list.GetItems()), err)
	}

	start = time.Now()
	for id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			removePod(t, d, id)
		})
	}
	wg.Wait()
	t.Logf("%d pods removed in %s", len(ids), time.Since(start))

	after := takeFootprint(t, d, n, ids)
	if after != before {
		t.Errorf("pods left something behind:\nbefore %+v\nafter  %+v", before, after)
	}
}
