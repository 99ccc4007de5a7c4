package integration

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// crio SIGKILLs itself (the test-only CRIO_TEST_FAULT hook) at a point of
// RunPodSandbox; the next start and the kubelet's cleanup leave nothing:
// no IPAM lease, veth, namespace file, mount, pod cgroup in any hierarchy,
// iptables rule, record or pod init. A pod created before the crash keeps
// running. The hook makes the kill land in the window under test, every
// time.
func TestCrashDuringRunPodSandboxLeavesNothing(t *testing.T) {
	for _, point := range []string{
		"sandbox-before-cgroup",     // record saved, nothing taken yet
		"sandbox-after-cgroup",      // cgroup made, not yet in the record
		"sandbox-after-init-cgroup", // the pod init's cgroup made, not recorded
		"sandbox-after-init-start",  // the pod init running, not recorded
		"sandbox-after-local-files", // namespaces pinned, shm mounted, log directory made: named only by the write before them
		"sandbox-before-cni-add",    // network recorded, ADD not run
		"sandbox-after-cni-add",     // address leased, not yet in the record
	} {
		t.Run(point, func(t *testing.T) { crashAtPoint(t, point) })
	}
}

func crashAtPoint(t *testing.T, point string) {
	RequireRoot(t)
	dir := TempDir(t)
	n := newTestNet(t, dir)
	if err := os.MkdirAll(filepath.Join(dir, "cni", "net.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cni", "net.d", "10-test.conflist"), []byte(n.conflist()), 0o644); err != nil {
		t.Fatal(err)
	}
	// The first pod passes the point; the second dies at it.
	d := StartDaemon(t, Options{Dir: dir, Env: []string{"CRIO_TEST_FAULT=" + point + "@2"}})
	survivor := runPod(t, d, podConfig("survivor"))
	before := takeFootprint(t, d, n, map[string]bool{survivor: true})

	cfg := podConfig("crash")
	cfg.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: int32(40000 + os.Getpid()%20000)}}
	if _, err := d.Runtime().RunPodSandbox(ctxTimeout(t, time.Minute), &runtimeapi.RunPodSandboxRequest{Config: cfg}); err == nil {
		t.Fatalf("RunPodSandbox succeeded: the fault point %s was not reached", point)
	}
	if code := d.Wait(30 * time.Second); code == 0 {
		t.Fatalf("crio exited with 0, want a SIGKILL at %s", point)
	}
	// The half-made pod's id, from its record: the RPC never returned it.
	ids := recordIDs(dir, "sandbox")
	ids[survivor] = true
	if len(ids) != 2 {
		t.Fatalf("records after the crash: %v", ids)
	}
	crashed := takeFootprint(t, d, n, ids)
	t.Logf("%s: footprint with the survivor %+v, after the crash %+v", point, before, crashed)

	// Restart, then the kubelet's cleanup: every pod it does not want.
	d = StartDaemon(t, Options{Dir: dir})
	t.Cleanup(func() { removeAllPods(d) })
	list, err := d.Runtime().ListPodSandbox(Context(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		if p.Id == survivor {
			continue
		}
		if _, err := d.Runtime().StopPodSandbox(Context(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			t.Errorf("StopPodSandbox %s: %v", p.Id, err)
		}
		if _, err := d.Runtime().RemovePodSandbox(Context(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			t.Errorf("RemovePodSandbox %s: %v", p.Id, err)
		}
	}
	st, _ := podStatus(t, d, survivor)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.GetNetwork().GetIp() == "" {
		t.Errorf("the pod from before the crash: %v", st)
	}
	after := takeFootprint(t, d, n, ids)
	if after != before {
		t.Errorf("crash at %s left something behind:\nwith the survivor only %+v\nafter restart+cleanup %+v", point, before, after)
	}
}

// crio SIGKILLs itself in CreateContainer, after the storage container and
// after the runtime created the container (conmon and the container's
// process exist) but before either is recorded as done. The next start
// undoes the half-made container: no storage container, runc state,
// conmon or container process is left, and the pod can be removed
// cleanly. A container running before the crash keeps running.
func TestCrashDuringCreateContainerLeavesNothing(t *testing.T) {
	for _, point := range []string{"container-after-storage", "container-after-runtime-create"} {
		t.Run(point, func(t *testing.T) {
			e := startCtrDaemonEnv(t, nil, []string{"CRIO_TEST_FAULT=" + point + "@2"})
			podID, pod := e.pod(t, "ctrcrash", nil)
			keep := e.run(t, podID, pod, e.ctrConfig("keep", "sleep", "3600"))
			_, err := e.d.Runtime().CreateContainer(ctxTimeout(t, time.Minute), &runtimeapi.CreateContainerRequest{
				PodSandboxId: podID, Config: e.ctrConfig("crash", "sleep", "3600"), SandboxConfig: pod})
			if err == nil {
				t.Fatalf("CreateContainer succeeded: the fault point %s was not reached", point)
			}
			if code := e.d.Wait(30 * time.Second); code == 0 {
				t.Fatalf("crio exited with 0, want a SIGKILL at %s", point)
			}
			recs := recordIDs(e.d.Dir, "container")
			var crashed string
			for id := range recs {
				if id != keep {
					crashed = id
				}
			}
			if crashed == "" {
				t.Fatalf("no record of the half-made container: %v", recs)
			}

			// The crash left what the point says was taken.
			var taken []string
			if !storageHas(e.d.Dir, crashed) {
				t.Errorf("the crash at %s left no storage container", point)
			}
			if point == "container-after-runtime-create" {
				taken = append(taken, filepath.Join(e.d.Dir, "runc", crashed))
				if len(procsNaming(crashed)) == 0 {
					t.Errorf("no conmon for the container at %s", point)
				}
			}
			for _, p := range taken {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("the crash at %s did not leave %s: %v", point, p, err)
				}
			}

			e.d = StartDaemon(t, Options{Dir: e.d.Dir, Env: []string{"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(e.d.Dir, "registries.conf")}})
			t.Cleanup(func() { removeAllContainersAndPods(e.d) })
			if st := e.status(t, keep); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Errorf("the container from before the crash: %v", st.State)
			}
			list, err := e.d.Runtime().ListContainers(Context(t), &runtimeapi.ListContainersRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range list.Containers {
				if c.Id == crashed {
					t.Errorf("the half-made container is listed: %v", c)
				}
			}
			synced, volatile := recordDirs(e.d.Dir, "container")
			for _, p := range []string{
				filepath.Join(e.d.Dir, "runc", crashed), // runc state
				filepath.Join(synced, crashed+".json"),
				filepath.Join(volatile, crashed+".json"),
			} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("left behind: %s", p)
				}
			}
			if storageHas(e.d.Dir, crashed) {
				t.Error("the half-made container's storage container is left")
			}
			if procs := procsNaming(crashed); len(procs) != 0 {
				t.Errorf("processes of the half-made container left: %v", procs)
			}
			// The kubelet's cleanup of the pod succeeds and leaves nothing.
			if _, err := e.d.Runtime().StopPodSandbox(Context(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
				t.Errorf("StopPodSandbox: %v", err)
			}
			if _, err := e.d.Runtime().RemovePodSandbox(Context(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
				t.Errorf("RemovePodSandbox: %v", err)
			}
			if procs := procsNaming(keep); len(procs) != 0 {
				t.Errorf("processes of the removed pod's container left: %v", procs)
			}
		})
	}
}

// procsNaming lists the pids whose command line mentions s (conmon names
// its container id in its arguments).
func procsNaming(s string) []string {
	var out []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range cmdlines {
		b, _ := os.ReadFile(c)
		if strings.Contains(string(b), s) {
			out = append(out, strings.Split(c, "/")[2])
		}
	}
	return out
}

// storageHas reports whether containers/storage under dir/root knows a
// container with this id.
func storageHas(dir, id string) bool {
	b, _ := os.ReadFile(filepath.Join(dir, "root", "overlay-containers", "containers.json"))
	return strings.Contains(string(b), id)
}

// crio SIGKILLs itself half-way through StopPodSandbox (before CNI DEL) or
// RemovePodSandbox (right after it recorded the removal): the next start
// finishes the operation by itself, before the kubelet asks again. The
// stopped pod's address is free at once, the removed pod is gone, and the
// other pod keeps running.
func TestCrashDuringStopAndRemoveIsFinishedAtStart(t *testing.T) {
	for _, point := range []string{"sandbox-stop-before-cni-del", "sandbox-remove-after-intent"} {
		t.Run(point, func(t *testing.T) {
			RequireRoot(t)
			dir := TempDir(t)
			n := newTestNet(t, dir)
			if err := os.MkdirAll(filepath.Join(dir, "cni", "net.d"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "cni", "net.d", "10-test.conflist"), []byte(n.conflist()), 0o644); err != nil {
				t.Fatal(err)
			}
			d := StartDaemon(t, Options{Dir: dir, Env: []string{"CRIO_TEST_FAULT=" + point}})
			survivor := runPod(t, d, podConfig("survivor"))
			alone := takeFootprint(t, d, n, map[string]bool{survivor: true})
			// Without a shared PID namespace (no pod init that the stop
			// kills first), the half-stopped pod still looks alive at the
			// next start: only the recorded intent says to finish the stop.
			vcfg := podConfig("victim")
			vcfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}}
			victim := runPod(t, d, vcfg)
			ids := map[string]bool{survivor: true, victim: true}
			var err error
			if point == "sandbox-stop-before-cni-del" {
				_, err = d.Runtime().StopPodSandbox(ctxTimeout(t, time.Minute), &runtimeapi.StopPodSandboxRequest{PodSandboxId: victim})
			} else {
				_, err = d.Runtime().RemovePodSandbox(ctxTimeout(t, time.Minute), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: victim})
			}
			if err == nil {
				t.Fatalf("the operation succeeded: the fault point %s was not reached", point)
			}
			if code := d.Wait(30 * time.Second); code == 0 {
				t.Fatalf("crio exited with 0, want a SIGKILL at %s", point)
			}
			crashed := takeFootprint(t, d, n, ids)
			if crashed.IPAM-alone.IPAM != 1 {
				t.Fatalf("the crash at %s freed the address already: %+v", point, crashed)
			}

			// Restart; before any kubelet call the operation is finished.
			d = StartDaemon(t, Options{Dir: dir})
			t.Cleanup(func() { removeAllPods(d) })
			if st, _ := podStatus(t, d, survivor); st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
				t.Errorf("the other pod: %v", st.State)
			}
			now := takeFootprint(t, d, n, ids)
			if now.IPAM != alone.IPAM || now.Veths != alone.Veths {
				t.Errorf("after the restart the interrupted %s did not release the network: %+v, want %+v", point, now, alone)
			}
			_, err = d.Runtime().PodSandboxStatus(Context(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: victim})
			if point == "sandbox-remove-after-intent" {
				if status.Code(err) != codes.NotFound {
					t.Errorf("the interrupted removal was not finished: %v", err)
				}
				if now != alone {
					t.Errorf("the interrupted removal left something:\nwith the survivor only %+v\nafter restart %+v", alone, now)
				}
				return
			}
			st, _ := podStatus(t, d, victim)
			if st.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
				t.Errorf("the interrupted stop was not finished: %v", st.State)
			}
			removePod(t, d, victim)
			if after := takeFootprint(t, d, n, ids); after != alone {
				t.Errorf("left behind:\nwith the survivor only %+v\nafter %+v", alone, after)
			}
		})
	}
}

// The operator's scenario: a burst of 30 pods with a container each, at
// concurrency 6, and crio SIGKILLed in the middle of it at a point the
// hook names (the n-th time it is reached, so other pods are at every
// other stage), or in the middle of stopping 12 pods. After the restart and
// the kubelet's cleanup (stop and remove every pod but the one from
// before), nothing is left, and the pod from before still runs.
func TestCrashDuringPodBurstLeavesNothing(t *testing.T) {
	for _, tc := range []struct{ point, phase string }{
		{"sandbox-after-cni-add@10", "create"},
		{"container-after-runtime-create@8", "create"},
		{"sandbox-stop-before-cni-del@4", "stop"},
	} {
		t.Run(tc.point, func(t *testing.T) { crashBurst(t, tc.point, tc.phase) })
	}
}

func crashBurst(t *testing.T, point, phase string) {
	e := startCtrDaemonEnv(t, nil, []string{"CRIO_TEST_FAULT=" + point})
	n := e.n
	survivor, scfg := e.pod(t, "before", nil)
	keep := e.run(t, survivor, scfg, e.ctrConfig("before", "sleep", "3600"))
	before := takeFootprint(t, e.d, n, map[string]bool{survivor: true})
	beforeStorage := storageContainers(t, e.d)

	pods := 30
	if phase == "stop" {
		pods = 12
	}
	var mu sync.Mutex
	made := map[string]bool{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6)
	for i := range pods {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cfg := podConfig("burst")
			cfg.LogDirectory = filepath.Join(e.d.Dir, "podlogs", cfg.Metadata.Name)
			cfg.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: int32(41000 + (os.Getpid()%500)*40 + i)}}
			resp, err := e.d.Runtime().RunPodSandbox(ctxTimeout(t, time.Minute), &runtimeapi.RunPodSandboxRequest{Config: cfg})
			if err != nil {
				return // the crash
			}
			mu.Lock()
			made[resp.PodSandboxId] = true
			mu.Unlock()
			c, err := e.d.Runtime().CreateContainer(ctxTimeout(t, time.Minute), &runtimeapi.CreateContainerRequest{
				PodSandboxId: resp.PodSandboxId, Config: e.ctrConfig("burst", "sleep", "3600"), SandboxConfig: cfg})
			if err != nil {
				return
			}
			e.d.Runtime().StartContainer(ctxTimeout(t, time.Minute), &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId})
		})
	}
	wg.Wait()
	if phase == "stop" {
		if len(made) != pods {
			t.Fatalf("%d of %d pods made before the stops", len(made), pods)
		}
		for id := range made {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				e.d.Runtime().StopPodSandbox(ctxTimeout(t, time.Minute), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
			})
		}
		wg.Wait()
	}
	if code := e.d.Wait(30 * time.Second); code == 0 {
		t.Fatalf("crio did not die at %s", point)
	}
	ids := map[string]bool{survivor: true}
	for id := range made {
		ids[id] = true
	}
	maps.Copy(ids, recordIDs(e.d.Dir, "sandbox"))
	crashed := takeFootprint(t, e.d, n, ids)
	t.Logf("%s: %d pods made before the crash; footprint before %+v, after the crash %+v", point, len(made), before, crashed)

	e.d = StartDaemon(t, Options{Dir: e.d.Dir, Env: []string{"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(e.d.Dir, "registries.conf")}})
	t.Cleanup(func() { removeAllContainersAndPods(e.d) })
	list, err := e.d.Runtime().ListPodSandbox(Context(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		if p.Id == survivor {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := e.d.Runtime().StopPodSandbox(Context(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
				t.Errorf("StopPodSandbox %s: %v", p.Id, err)
			}
			if _, err := e.d.Runtime().RemovePodSandbox(Context(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
				t.Errorf("RemovePodSandbox %s: %v", p.Id, err)
			}
		})
	}
	wg.Wait()
	if st := e.status(t, keep); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("the container from before the crash: %v", st.State)
	}
	if st, _ := podStatus(t, e.d, survivor); st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("the pod from before the crash: %v", st.State)
	}
	after := takeFootprint(t, e.d, n, ids)
	if after != before {
		names := slices.Sorted(maps.Keys(recordIDs(e.d.Dir, "sandbox")))
		t.Errorf("crash at %s left something behind:\nbefore the burst %+v\nafter cleanup    %+v\npod records %v", point, before, after, names)
	}
	if got := storageContainers(t, e.d); got != beforeStorage {
		t.Errorf("storage containers: %d before the burst, %d after cleanup", beforeStorage, got)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.d.Dir, "runc")); len(ents) != 1 {
		t.Errorf("runc state directories: %d, want only the container from before", len(ents))
	}
	for id := range ids {
		if id != survivor && len(procsNaming(id)) != 0 {
			t.Errorf("processes of pod %s left", id)
		}
	}
}
