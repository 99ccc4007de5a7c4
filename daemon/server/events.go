package server

import (
	"errors"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/events"
	"github.com/crio-appliance/crio/daemon/sandbox"
)

// EventSource hands out event subscriptions; *events.Broadcaster
// implements it.
type EventSource interface {
	Subscribe() (*events.Subscription, error)
}

var _ EventSource = (*events.Broadcaster)(nil)

// EventPods and EventContainers are what an event needs to report the pod
// around it.
type EventPods interface {
	Get(id string) (*sandbox.Sandbox, error)
}

type EventContainers interface {
	List(f container.Filter) []*container.Container
}

// ContainerEvents serves GetContainerEvents. Without a source (the
// default, crio.runtime.enable_pod_events = false) the RPC answers
// Unimplemented, so the kubelet's evented PLEG falls back to relisting.
type ContainerEvents struct {
	src  EventSource
	pods EventPods
	ctrs EventContainers
}

// NewContainerEvents returns the handler group; src nil means off.
func NewContainerEvents(src EventSource, pods EventPods, ctrs EventContainers) *ContainerEvents {
	if pods == nil || ctrs == nil {
		src = nil // nothing to report on
	}
	return &ContainerEvents{src: src, pods: pods, ctrs: ctrs}
}

// GetContainerEvents streams lifecycle events until the client goes, it
// falls behind (then it must reconnect and relist: the stream has a gap),
// or crio stops.
func (h *ContainerEvents) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	if h == nil || h.src == nil {
		return errEventsOff
	}
	sub, err := h.src.Subscribe()
	if err != nil {
		return err // ErrTooMany or ErrClosed, each with its kind
	}
	defer sub.Close()
	ctx := stream.Context()
	// The last status seen of each pod, for events that arrive after the
	// pod is gone (a container removed along with its pod).
	pods := map[string]*runtimeapi.PodSandboxStatus{}
	for {
		// A subscription that ended wins over buffered events: after a
		// drop they are followed by a gap the client must not miss.
		select {
		case <-sub.Done():
			return subscriptionEnd(sub.Err())
		default:
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sub.Done():
			return subscriptionEnd(sub.Err())
		case ev := <-sub.Events():
			if err := stream.Send(h.response(ev, pods)); err != nil {
				return err
			}
		}
	}
}

// errEventsOff says how to turn the events on.
var errEventsOff = fmt.Errorf("%w: container events are off (set crio.runtime.enable_pod_events = true)", errdefs.ErrUnimplemented)

// subscriptionEnd says what the client must do about the end of its
// subscription; the events package's errors carry the kinds.
func subscriptionEnd(err error) error {
	switch {
	case errors.Is(err, events.ErrDropped):
		return fmt.Errorf("events were not read fast enough and some were lost; reconnect and relist: %w", err)
	case errors.Is(err, events.ErrClosed):
		return fmt.Errorf("crio is stopping: %w", err)
	}
	return errdefs.WithKind(errdefs.ErrUnavailable, err)
}

var eventTypes = map[events.Kind]runtimeapi.ContainerEventType{
	events.Created: runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
	events.Started: runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
	events.Stopped: runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
	events.Deleted: runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
}

// response builds the CRI event: the pod's status and the statuses of its
// containers, the event's own container (or pod) as it was at the event,
// the others as they are now.
func (h *ContainerEvents) response(ev events.Event, pods map[string]*runtimeapi.PodSandboxStatus) *runtimeapi.ContainerEventResponse {
	resp := &runtimeapi.ContainerEventResponse{
		ContainerId:        ev.ID,
		ContainerEventType: eventTypes[ev.Kind],
		CreatedAt:          ev.At,
	}
	var pod *runtimeapi.PodSandboxStatus
	if sb, ok := ev.Record.(*sandbox.Sandbox); ok {
		pod = podStatusToCRI(sb)
	} else if sb, err := h.pods.Get(ev.PodID); err == nil {
		pod = podStatusToCRI(sb)
	} else if pod = pods[ev.PodID]; pod == nil {
		// Gone before this stream saw it: the kubelet still needs the id
		// and a non-nil metadata to key the event.
		pod = &runtimeapi.PodSandboxStatus{
			Id: ev.PodID, Metadata: &runtimeapi.PodSandboxMetadata{},
			State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY,
		}
	}
	if ev.Kind == events.Deleted && ev.ID == ev.PodID {
		delete(pods, ev.PodID)
	} else {
		pods[ev.PodID] = pod
	}
	resp.PodSandboxStatus = pod
	for _, c := range h.ctrs.List(container.Filter{PodID: ev.PodID}) {
		if c.ID != ev.ID && c.PodID == ev.PodID {
			resp.ContainersStatuses = append(resp.ContainersStatuses, containerStatusToCRI(c))
		}
	}
	if c, ok := ev.Record.(*container.Container); ok && ev.Kind != events.Deleted {
		resp.ContainersStatuses = append(resp.ContainersStatuses, containerStatusToCRI(c))
	}
	return resp
}
