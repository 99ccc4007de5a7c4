package server

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/events"
	"github.com/crio-appliance/crio/daemon/sandbox"
)

// eventPods knows one pod, p1, until gone is set.
type eventPods struct{ gone bool }

func (p *eventPods) Get(id string) (*sandbox.Sandbox, error) {
	if p.gone || id != "p1" {
		return nil, sandbox.ErrNotFound
	}
	return &sandbox.Sandbox{ID: "p1", State: sandbox.StateReady, IPs: []string{"10.0.0.5"}, Config: &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "pod", Namespace: "ns", Uid: "uid-1"},
	}}, nil
}

// eventCtrs lists a second container of p1 besides the one in the event.
type eventCtrs struct{}

func (eventCtrs) List(container.Filter) []*container.Container {
	other := sampleContainer()
	other.ID, other.PodID, other.State = "c2", "p1", container.StateRunning
	stale := sampleContainer()
	stale.ID, stale.PodID, stale.State = "c1", "p1", container.StateExited // the event's own, as it is now
	return []*container.Container{other, stale}
}

func TestContainerEventsOff(t *testing.T) {
	rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{}))
	stream, err := rt.GetContainerEvents(context.Background(), &runtimeapi.GetEventsRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("events off: %v", err)
	}
}

func TestContainerEventsStream(t *testing.T) {
	b := events.New(events.Options{})
	pods := &eventPods{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{Events: b, Sandbox: podsOnly{p: pods}, Containers: ctrsOnly{}}))
	stream, err := rt.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for b.Subscribers() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	c := sampleContainer()
	c.ID, c.PodID, c.State = "c1", "p1", container.StateRunning
	b.Publish(events.Event{Kind: events.Started, ID: "c1", PodID: "p1", At: 42, Record: c})
	ev, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if ev.ContainerId != "c1" || ev.ContainerEventType != runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT || ev.CreatedAt != 42 {
		t.Errorf("event %v", ev)
	}
	if ev.PodSandboxStatus.GetMetadata().GetUid() != "uid-1" || ev.PodSandboxStatus.GetNetwork().GetIp() != "10.0.0.5" {
		t.Errorf("pod status %v", ev.PodSandboxStatus)
	}
	states := map[string]runtimeapi.ContainerState{}
	for _, s := range ev.ContainersStatuses {
		states[s.Id] = s.State
	}
	// c1 as it was at the event (running), not as listed now.
	if len(states) != 2 || states["c1"] != runtimeapi.ContainerState_CONTAINER_RUNNING || states["c2"] != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container statuses %v", states)
	}

	// Once the pod is gone, its last status seen on this stream is used;
	// a deleted container is not among the statuses.
	pods.gone = true
	b.Publish(events.Event{Kind: events.Deleted, ID: "c1", PodID: "p1", At: 43, Record: c})
	ev, err = stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if ev.PodSandboxStatus.GetMetadata().GetUid() != "uid-1" || len(ev.ContainersStatuses) != 1 || ev.ContainersStatuses[0].Id != "c2" {
		t.Errorf("after pod removal: %v", ev)
	}
	// A pod nobody saw still has metadata.
	b.Publish(events.Event{Kind: events.Stopped, ID: "c9", PodID: "p9", At: 44})
	if ev, err = stream.Recv(); err != nil || ev.PodSandboxStatus.GetMetadata() == nil || ev.PodSandboxStatus.Id != "p9" {
		t.Errorf("unknown pod: %v %v", ev, err)
	}

	// Closing the broadcaster (crio stopping) ends the stream.
	b.Close()
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("after close: %v", err)
	}
}

// A client that stops reading is dropped, and learns so.
func TestContainerEventsSlowClientDropped(t *testing.T) {
	b := events.New(events.Options{Buffer: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{Events: b, Sandbox: podsOnly{p: &eventPods{}}, Containers: ctrsOnly{}}))
	stream, err := rt.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for b.Subscribers() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	// Fill the buffer and the transport until the subscriber is dropped;
	// Publish never blocks meanwhile.
	for i := 0; b.Subscribers() > 0; i++ {
		if i > 1_000_000 {
			t.Fatal("subscriber never dropped")
		}
		b.Publish(events.Event{Kind: events.Created, ID: "c1", PodID: "p1"})
	}
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("dropped client: %v", err)
	}
}

// podsOnly and ctrsOnly satisfy the service interfaces with the event
// fakes; the embedded (nil) interfaces stand for the methods not used here.
type podsOnly struct {
	SandboxService
	p *eventPods
}

func (p podsOnly) Get(id string) (*sandbox.Sandbox, error) { return p.p.Get(id) }

type ctrsOnly struct{ ContainerService }

func (ctrsOnly) List(f container.Filter) []*container.Container { return eventCtrs{}.List(f) }
