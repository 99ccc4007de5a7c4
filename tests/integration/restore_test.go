package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/internal/testutil"
)

// trapTerm runs until SIGTERM and then exits 42, whatever PID it has (a
// PID 1 would ignore an unhandled SIGTERM).
var trapTerm = []string{"sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.1; done"}

// ctrPids reads the container's and its monitor's PIDs from the verbose
// status.
func (e *ctrEnv) ctrPids(t *testing.T, id string) (pid, monitor int) {
	t.Helper()
	resp, err := e.d.Runtime().ContainerStatus(Context(t), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatalf("ContainerStatus: %v", err)
	}
	var info struct {
		Pid        int `json:"pid"`
		MonitorPid int `json:"monitorPid"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		t.Fatalf("verbose info: %v", err)
	}
	return info.Pid, info.MonitorPid
}

// restart starts a new daemon on the old one's state, and keeps the test's
// clean-up pointed at it.
func (e *ctrEnv) restart(t *testing.T) {
	t.Helper()
	d := StartDaemon(t, Options{Dir: e.d.Dir, Env: []string{"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(e.d.Dir, "registries.conf")}})
	e.d = d
	t.Cleanup(func() { removeAllContainersAndPods(d) })
}

// leakFootprint is what pods and containers of one daemon leave on the
// host, both views together.
type leakFootprint struct {
	Pods footprint
	Ctrs ctrFootprint
}

// warmUp runs and removes one pod with a container, so that what the
// first one creates for good (the bridge, the shared pod init root,
// cgroup parents) is in the footprint taken before the test's pods.
func (e *ctrEnv) warmUp(t *testing.T) {
	t.Helper()
	podID, pod := e.pod(t, "warmup", nil)
	e.runToExit(t, podID, pod, e.ctrConfig("warmup", "true"))
	removePod(t, e.d, podID)
}

func (e *ctrEnv) footprint(t *testing.T, pods map[string]bool, ctrs []string) leakFootprint {
	t.Helper()
	return leakFootprint{takeFootprint(t, e.d, e.n, pods), takeCtrFootprint(t, e.d, ctrs)}
}

func (e *ctrEnv) listStates(t *testing.T) (map[string]runtimeapi.PodSandboxState, map[string]runtimeapi.ContainerState) {
	t.Helper()
	pl, err := e.d.Runtime().ListPodSandbox(Context(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := e.d.Runtime().ListContainers(Context(t), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	pods := map[string]runtimeapi.PodSandboxState{}
	for _, p := range pl.Items {
		pods[p.Id] = p.State
	}
	ctrs := map[string]runtimeapi.ContainerState{}
	for _, c := range cl.Containers {
		ctrs[c.Id] = c.State
	}
	return pods, ctrs
}

// runPods starts n pods, each with one container running trapTerm.
func (e *ctrEnv) runPods(t *testing.T, name string, n int) (podIDs, ctrIDs []string, cfgs []*runtimeapi.PodSandboxConfig) {
	t.Helper()
	podIDs, ctrIDs, cfgs = make([]string, n), make([]string, n), make([]*runtimeapi.PodSandboxConfig, n)
	for i := range n {
		podIDs[i], cfgs[i] = e.pod(t, fmt.Sprintf("%s%d", name, i), nil)
		ctrIDs[i] = e.run(t, podIDs[i], cfgs[i], e.ctrConfig(name, trapTerm...))
	}
	return podIDs, ctrIDs, cfgs
}

// A daemon's records of pods ("sandbox") or containers ("container"): the
// synced files under root and the volatile ones under runroot.
func recordDirs(dir, kind string) (synced, volatile string) {
	return filepath.Join(dir, "root", "crio-"+kind+"s"), filepath.Join(dir, "runroot", "crio-"+kind+"-records")
}

// recordIDs lists the ids of a daemon's records of kind, synced or
// volatile.
func recordIDs(dir, kind string) map[string]bool {
	ids := map[string]bool{}
	synced, volatile := recordDirs(dir, kind)
	for _, d := range []string{synced, volatile} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && !strings.HasPrefix(id, ".") {
				ids[id] = true
			}
		}
	}
	return ids
}

// latestRecordPath is the file that holds a record's latest write, of its
// synced and volatile files.
func latestRecordPath(t *testing.T, dir, kind, id string) string {
	t.Helper()
	synced, volatile := recordDirs(dir, kind)
	return testutil.LatestRecord(t, filepath.Join(synced, id+".json"), filepath.Join(volatile, id+".json"))
}

func set(ids []string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// crio killed with SIGKILL while 10 pods run a container each: after a
// restart all are listed running with the same addresses (no second CNI
// allocation), a new container joins the pod's pinned namespaces, a
// container stopped afterwards reports its exit code, a graceful restart
// keeps it all, and removing everything leaves nothing behind.
func TestTenPodsSurviveDaemonKill(t *testing.T) {
	e := startCtrDaemon(t, nil)
	e.warmUp(t)
	before := e.footprint(t, nil, nil)
	podIDs, ctrIDs, cfgs := e.runPods(t, "survive", 10)
	ips := map[string]string{}
	for _, id := range podIDs {
		st, _ := podStatus(t, e.d, id)
		ips[id] = st.GetNetwork().GetIp()
	}
	during := e.footprint(t, set(podIDs), ctrIDs)
	if during.Pods.IPAM-before.Pods.IPAM != 10 || during.Ctrs.Monitors != 10 || during.Pods.InitProcs != 10 {
		t.Fatalf("with 10 pods: %+v", during)
	}
	oldPid, _ := e.ctrPids(t, ctrIDs[0])

	e.d.Kill()
	time.Sleep(300 * time.Millisecond)
	for _, id := range ctrIDs {
		if !readProcState(t, e.d.Dir, id) {
			t.Fatalf("container %.12s died with the daemon", id)
		}
	}
	// One start the daemon died before recording: the runtime ran it.
	rec := latestRecordPath(t, e.d.Dir, "container", ctrIDs[1])
	testutil.SetRecordField(t, rec, "state", "created")
	e.restart(t)

	pods, ctrs := e.listStates(t)
	for i := range podIDs {
		if pods[podIDs[i]] != runtimeapi.PodSandboxState_SANDBOX_READY || ctrs[ctrIDs[i]] != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("after restart: pod %v, container %v", pods[podIDs[i]], ctrs[ctrIDs[i]])
		}
		if st, _ := podStatus(t, e.d, podIDs[i]); st.GetNetwork().GetIp() != ips[podIDs[i]] {
			t.Errorf("pod address %q, was %q", st.GetNetwork().GetIp(), ips[podIDs[i]])
		}
	}
	if len(pods) != 10 || len(ctrs) != 10 {
		t.Errorf("listed %d pods, %d containers", len(pods), len(ctrs))
	}
	if got := e.footprint(t, set(podIDs), ctrIDs); got != during {
		t.Errorf("restart changed the footprint (a second CNI allocation?):\nbefore %+v\nafter  %+v", during, got)
	}

	// A container created now joins the restored pod's namespaces.
	joiner := e.run(t, podIDs[0], cfgs[0], e.ctrConfig("joiner", "sleep", "1000"))
	newPid, _ := e.ctrPids(t, joiner)
	for _, ns := range []string{"net", "ipc", "uts", "pid"} {
		a, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", oldPid, ns))
		b, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", newPid, ns))
		if a == "" || a != b {
			t.Errorf("%s namespace: old container %q, new %q", ns, a, b)
		}
	}
	if _, err := e.d.Runtime().RemoveContainer(Context(t), &runtimeapi.RemoveContainerRequest{ContainerId: joiner}); err != nil {
		t.Fatal(err)
	}

	// Its exit is caught by the new daemon.
	if _, err := e.d.Runtime().StopContainer(Context(t), &runtimeapi.StopContainerRequest{ContainerId: ctrIDs[0], Timeout: 10}); err != nil {
		t.Fatal(err)
	}
	if st := e.status(t, ctrIDs[0]); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 42 || st.Reason != "Error" {
		t.Errorf("stopped after restart: state %v, exit %d, reason %q", st.State, st.ExitCode, st.Reason)
	}

	// A graceful restart keeps all of it.
	if code := e.d.Stop(); code != 0 {
		t.Fatalf("crio exited %d", code)
	}
	e.restart(t)
	pods, ctrs = e.listStates(t)
	for i := range podIDs {
		want := runtimeapi.ContainerState_CONTAINER_RUNNING
		if i == 0 {
			want = runtimeapi.ContainerState_CONTAINER_EXITED
		}
		if pods[podIDs[i]] != runtimeapi.PodSandboxState_SANDBOX_READY || ctrs[ctrIDs[i]] != want {
			t.Errorf("after graceful restart: pod %v, container %v", pods[podIDs[i]], ctrs[ctrIDs[i]])
		}
	}
	if st := e.status(t, ctrIDs[0]); st.ExitCode != 42 {
		t.Errorf("exit code after graceful restart: %d", st.ExitCode)
	}

	var wg sync.WaitGroup
	for _, id := range podIDs {
		wg.Go(func() { removePod(t, e.d, id) })
	}
	wg.Wait()
	waitFor(5*time.Second, func() bool { return e.footprint(t, set(podIDs), ctrIDs).Ctrs.Monitors == 0 })
	if after := e.footprint(t, set(podIDs), ctrIDs); after != before {
		t.Errorf("left behind:\nbefore %+v\nafter  %+v\n%v", before, after, podCgroupDirs(podIDs))
	}
}

// simulateReboot does to a stopped daemon's pods what a reboot does: every
// process of theirs dies, every mount goes, the tmpfs directories
// (runroot, exits, the version file, namespaces, runc's state) are
// emptied and the cgroups vanish. What lives on disk stays: records,
// storage, logs, host-local's address files, the CNI result cache.
func (e *ctrEnv) simulateReboot(t *testing.T, podIDs, ctrIDs []string) {
	t.Helper()
	select {
	case <-e.d.Exited():
	default:
		t.Fatal("simulateReboot: the daemon still runs")
	}
	var pids []int
	cgdirs := podCgroupDirs(podIDs)
	for _, dir := range cgdirs {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for f := range strings.FieldsSeq(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range cmdlines {
		b, _ := os.ReadFile(c)
		for _, id := range ctrIDs {
			if strings.Contains(string(b), "conmon") && strings.Contains(string(b), id) {
				pid, _ := strconv.Atoi(strings.Split(c, "/")[2])
				pids = append(pids, pid)
			}
		}
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if !waitFor(10*time.Second, func() bool {
		for _, pid := range pids {
			if procAlive(pid) {
				return false
			}
		}
		return true
	}) {
		t.Fatal("processes survived SIGKILL")
	}
	unmountUnder(e.d.Dir)
	for _, d := range []string{"run", "runroot", "ns", "runc"} {
		if err := os.RemoveAll(filepath.Join(e.d.Dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(cgdirs))) // children first
	for _, dir := range cgdirs {
		if err := syscall.Rmdir(dir); err != nil && !os.IsNotExist(err) {
			t.Fatalf("rmdir %s: %v", dir, err)
		}
	}
}

// podCgroupDirs lists the pods' cgroup directories and everything below
// them, in every hierarchy.
func podCgroupDirs(podIDs []string) []string {
	var out []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, r := range roots {
		for _, id := range podIDs {
			filepath.WalkDir(filepath.Join(r, "crio", "pod-"+id), func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					out = append(out, p)
				}
				return nil
			})
		}
	}
	return out
}

// After a reboot (the version file gone, every process and mount with
// it): with internal_wipe off the pods are listed not ready and their
// containers exited with a reason, their addresses already free; by
// default (internal_wipe on) pods and containers are removed at start,
// also after a crash of the machine, which loses their volatile record
// writes (the run root goes). A clean stop makes the records durable, so
// a reboot into internal_wipe off, after a stop with it on, still finds
// every pod. Either way nothing is left once they are gone, and the
// daemon runs new pods.
func TestRebootCleansUpStalePodsAndContainers(t *testing.T) {
	e := startCtrDaemon(t, nil)
	e.warmUp(t)
	before := e.footprint(t, nil, nil)
	// The shared pod init root under runroot goes with the reboot and comes
	// back with the next pod that needs it.
	before.Pods.RunDirs = 0
	// keptAfterReboot checks the pods and containers internal_wipe off
	// keeps, then removes them and wants nothing left.
	keptAfterReboot := func(podIDs, ctrIDs []string) {
		t.Helper()
		pods, ctrs := e.listStates(t)
		for _, id := range podIDs {
			if st, ok := pods[id]; !ok || st != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
				t.Errorf("pod after reboot: %v (listed %v)", st, ok)
			}
		}
		for _, id := range ctrIDs {
			if st, ok := ctrs[id]; !ok || st != runtimeapi.ContainerState_CONTAINER_EXITED {
				t.Errorf("container after reboot: %v (listed %v)", st, ok)
				continue
			}
			if st := e.status(t, id); st.Reason != "ContainerStatusUnknown" || st.Message == "" || st.FinishedAt == 0 {
				t.Errorf("container after reboot: reason %q message %q finished %d", st.Reason, st.Message, st.FinishedAt)
			}
		}
		if got := e.footprint(t, set(podIDs), ctrIDs); got.Pods.IPAM != before.Pods.IPAM || got.Pods.CNICache != before.Pods.CNICache {
			t.Errorf("addresses not released at start: before %+v, after %+v", before.Pods, got.Pods)
		}
		for _, id := range podIDs {
			removePod(t, e.d, id)
		}
		if after := e.footprint(t, set(podIDs), ctrIDs); after != before {
			t.Errorf("left behind:\nbefore %+v\nafter  %+v", before, after)
		}
	}
	keep := filepath.Join(e.d.ConfigDir, "30-keep.conf")
	setKeep := func(on bool) {
		t.Helper()
		var err error
		if on {
			err = os.WriteFile(keep, []byte("[crio]\ninternal_wipe = false\n"), 0o644)
		} else {
			err = os.Remove(keep)
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	// internal_wipe = false: kept for the kubelet, reported dead, also
	// after a crash of the machine.
	setKeep(true)
	e.d.Stop()
	e.restart(t)
	podIDs, ctrIDs, cfgs := e.runPods(t, "reboot", 3)
	ctrIDs = append(ctrIDs, e.create(t, podIDs[1], cfgs[1], e.ctrConfig("never-started", "true")))
	e.d.Kill()
	e.simulateReboot(t, podIDs, ctrIDs)
	e.restart(t)
	keptAfterReboot(podIDs, ctrIDs)

	// The default: removed at start, after a crash of the machine too.
	setKeep(false)
	e.d.Stop()
	e.restart(t)
	podIDs, ctrIDs, cfgs = e.runPods(t, "wipe", 3)
	ctrIDs = append(ctrIDs, e.create(t, podIDs[1], cfgs[1], e.ctrConfig("never-started", "true")))
	e.d.Kill()
	e.simulateReboot(t, podIDs, ctrIDs)
	e.restart(t)
	if pods, ctrs := e.listStates(t); len(pods) != 0 || len(ctrs) != 0 {
		t.Errorf("after reboot: pods %v, containers %v", pods, ctrs)
	}
	if after := e.footprint(t, set(podIDs), ctrIDs); after != before {
		t.Errorf("left behind:\nbefore %+v\nafter  %+v", before, after)
	}

	// A clean stop with the default, then a reboot into internal_wipe =
	// false: the volatile writes were made durable at the stop.
	podIDs, ctrIDs, cfgs = e.runPods(t, "stopped", 2)
	ctrIDs = append(ctrIDs, e.create(t, podIDs[1], cfgs[1], e.ctrConfig("never-started", "true")))
	if code := e.d.Stop(); code != 0 {
		t.Fatalf("crio exited with %d at SIGTERM", code)
	}
	setKeep(true)
	e.simulateReboot(t, podIDs, ctrIDs)
	e.restart(t)
	keptAfterReboot(podIDs, ctrIDs)
	setKeep(false)

	// And the node works: a new pod runs a container to its end.
	podID, pod := e.pod(t, "after-reboot", nil)
	if st, _ := e.runToExit(t, podID, pod, e.ctrConfig("hello", "echo", "hi")); st.ExitCode != 0 {
		t.Errorf("container after reboot: %v", st)
	}
}
