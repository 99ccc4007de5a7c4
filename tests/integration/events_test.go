package integration

import (
	"context"
	"slices"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventLog collects a GetContainerEvents stream in the background.
type eventLog struct {
	ch      chan *runtimeapi.ContainerEventResponse
	errc    chan error
	pending map[string][]*runtimeapi.ContainerEventResponse // read, not yet asked for
}

func watchEvents(t *testing.T, d *Daemon) *eventLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := d.Runtime().GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	l := &eventLog{
		ch: make(chan *runtimeapi.ContainerEventResponse, 1000), errc: make(chan error, 1),
		pending: map[string][]*runtimeapi.ContainerEventResponse{},
	}
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				l.errc <- err
				return
			}
			l.ch <- ev
		}
	}()
	return l
}

// next returns the next event about id (keeping others for later), or
// fails.
func (l *eventLog) next(t *testing.T, id string) *runtimeapi.ContainerEventResponse {
	t.Helper()
	if q := l.pending[id]; len(q) > 0 {
		l.pending[id] = q[1:]
		return q[0]
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-l.ch:
			if ev.ContainerId == id {
				return ev
			}
			l.pending[ev.ContainerId] = append(l.pending[ev.ContainerId], ev)
		case err := <-l.errc:
			t.Fatalf("event stream ended: %v", err)
		case <-timeout:
			t.Fatalf("no event for %.12s", id)
		}
	}
}

func statusOf(ev *runtimeapi.ContainerEventResponse, id string) *runtimeapi.ContainerStatus {
	for _, s := range ev.ContainersStatuses {
		if s.Id == id {
			return s
		}
	}
	return nil
}

// With enable_pod_events on, a container's created, started, stopped and
// deleted events arrive in that order, each with the pod's status and the
// container's state at the time; the pod's own events come under its id.
// A container that exits at once still reports started before stopped.
func TestContainerEventsInOrder(t *testing.T) {
	e := startCtrDaemon(t, map[string]string{"20-events.conf": "[crio.runtime]\nenable_pod_events = true\n"})
	events := watchEvents(t, e.d)
	podID, pod := e.pod(t, "events", nil)
	for _, want := range []runtimeapi.ContainerEventType{
		runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
	} {
		if ev := events.next(t, podID); ev.ContainerEventType != want || ev.PodSandboxStatus.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Fatalf("pod event %v, want %v", ev, want)
		}
	}

	id := e.create(t, podID, pod, e.ctrConfig("sleeper", "sleep", "1000"))
	e.start(t, id)
	if _, err := e.d.Runtime().StopContainer(Context(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Runtime().RemoveContainer(Context(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		typ   runtimeapi.ContainerEventType
		state runtimeapi.ContainerState
	}{
		{runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerState_CONTAINER_CREATED},
		{runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, runtimeapi.ContainerState_CONTAINER_RUNNING},
		{runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, runtimeapi.ContainerState_CONTAINER_EXITED},
		{runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT, -1},
	}
	var last int64
	for _, step := range steps {
		ev := events.next(t, id)
		if ev.ContainerEventType != step.typ {
			t.Fatalf("event %v, want %v", ev.ContainerEventType, step.typ)
		}
		if ev.CreatedAt < last {
			t.Errorf("%v: time went backwards", step.typ)
		}
		last = ev.CreatedAt
		if ps := ev.PodSandboxStatus; ps.GetId() != podID || ps.GetMetadata().GetUid() != pod.Metadata.Uid {
			t.Errorf("%v: pod status %v", step.typ, ps)
		}
		st := statusOf(ev, id)
		switch {
		case step.state < 0 && st != nil:
			t.Errorf("deleted container still among the statuses")
		case step.state >= 0 && (st == nil || st.State != step.state):
			t.Errorf("%v: container status %v, want state %v", step.typ, st, step.state)
		}
	}

	// A process that ends at once: started still comes before stopped.
	quick := e.create(t, podID, pod, e.ctrConfig("quick", "true"))
	e.start(t, quick)
	var got []runtimeapi.ContainerEventType
	for range 3 {
		got = append(got, events.next(t, quick).ContainerEventType)
	}
	if want := []runtimeapi.ContainerEventType{
		runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
	}; !slices.Equal(got, want) {
		t.Errorf("quick container events %v, want %v", got, want)
	}

	// Removing the pod removes the container (deleted), then stops and
	// deletes the pod.
	removePod(t, e.d, podID)
	if ev := events.next(t, quick); ev.ContainerEventType != runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT || ev.PodSandboxStatus.GetMetadata().GetUid() != pod.Metadata.Uid {
		t.Errorf("container event at pod removal: %v", ev)
	}
	for _, want := range []runtimeapi.ContainerEventType{
		runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
	} {
		if ev := events.next(t, podID); ev.ContainerEventType != want || ev.PodSandboxStatus.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
			t.Errorf("pod event %v, want %v", ev, want)
		}
	}

	// A graceful stop ends the stream instead of waiting for it.
	start := time.Now()
	if code := e.d.Stop(); code != 0 {
		t.Errorf("crio exited %d", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %s with an event stream open", d)
	}
	select {
	case <-events.errc:
	case <-time.After(5 * time.Second):
		t.Error("event stream still open after the daemon stopped")
	}
}
