package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		"sandbox-before-cgroup",  // record saved, nothing taken yet
		"sandbox-after-cgroup",   // cgroup made, not yet in the record
		"sandbox-before-cni-add", // network recorded, ADD not run
		"sandbox-after-cni-add",  // address leased, not yet in the record
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
	recs, _ := os.ReadDir(filepath.Join(dir, "root", "crio-sandboxes"))
	ids := map[string]bool{survivor: true}
	for _, r := range recs {
		if id := strings.TrimSuffix(r.Name(), ".json"); id != r.Name() && id != survivor {
			ids[id] = true
		}
	}
	if len(ids) != 2 {
		t.Fatalf("records after the crash: %v", recs)
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
