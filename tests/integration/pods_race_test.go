package integration

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemovePodSandbox racing CreateContainer and StartContainer of the same
// pod: Remove always succeeds, the loser gets NotFound or
// FailedPrecondition, and no container of the pod is left, in crio or in
// the runtime. The remove is started at a different moment of the
// container's creation in each round.
func TestRemovePodRacesCreateContainer(t *testing.T) {
	e := startCtrDaemon(t, nil)
	rt := e.d.Runtime()
	lost := func(err error) bool {
		c := status.Code(err)
		return c == codes.NotFound || c == codes.FailedPrecondition
	}
	outcomes := map[string]int{}
	for round := range 20 {
		podID, pod := e.pod(t, "race", nil)
		cfg := e.ctrConfig("race", "sleep", "3600")
		var wg sync.WaitGroup
		var createErr, startErr, removeErr error
		var ctrID string
		wg.Add(2)
		go func() {
			defer wg.Done()
			resp, err := rt.CreateContainer(Context(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
			if createErr = err; err != nil {
				return
			}
			ctrID = resp.ContainerId
			_, startErr = rt.StartContainer(Context(t), &runtimeapi.StartContainerRequest{ContainerId: ctrID})
		}()
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(round%10) * 15 * time.Millisecond)
			_, removeErr = rt.RemovePodSandbox(Context(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID})
		}()
		wg.Wait()
		if removeErr != nil {
			t.Errorf("round %d: RemovePodSandbox: %v", round, removeErr)
		}
		switch {
		case createErr != nil && !lost(createErr):
			t.Errorf("round %d: CreateContainer lost with %v, want NotFound or FailedPrecondition", round, createErr)
		case createErr != nil:
			outcomes["create lost"]++
		case startErr != nil && !lost(startErr):
			t.Errorf("round %d: StartContainer lost with %v, want NotFound or FailedPrecondition", round, startErr)
		case startErr != nil:
			outcomes["start lost"]++
		default:
			outcomes["both before remove"]++
		}
		// Nothing of the pod survives.
		list, err := rt.ListContainers(Context(t), &runtimeapi.ListContainersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list.Containers {
			if c.PodSandboxId == podID {
				t.Errorf("round %d: container %s of the removed pod survives (%v)", round, c.Id, c.State)
			}
		}
		if ctrID != "" {
			if _, err := rt.ContainerStatus(Context(t), &runtimeapi.ContainerStatusRequest{ContainerId: ctrID}); status.Code(err) != codes.NotFound {
				t.Errorf("round %d: status of the pod's container: %v", round, err)
			}
		}
		if _, err := rt.PodSandboxStatus(Context(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID}); status.Code(err) != codes.NotFound {
			t.Errorf("round %d: pod status after remove: %v", round, err)
		}
	}
	t.Logf("outcomes: %v", outcomes)
	// The runtime holds no container either (runc keeps one directory per
	// container under its root).
	if ents, err := os.ReadDir(filepath.Join(e.d.Dir, "runc")); err == nil && len(ents) != 0 {
		var names []string
		for _, d := range ents {
			names = append(names, d.Name())
		}
		t.Errorf("runc state left: %v", names)
	}
}
