package server

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/sandbox"
	"github.com/crio-appliance/crio/daemon/stats"
)

// errStats answers every call with one error.
type errStats struct{ err error }

func (e errStats) ContainerStats(context.Context, string) (*runtimeapi.ContainerStats, error) {
	return &runtimeapi.ContainerStats{}, e.err
}
func (e errStats) ListContainerStats(context.Context, *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	return nil, e.err
}
func (e errStats) PodSandboxStats(context.Context, string) (*runtimeapi.PodSandboxStats, error) {
	return &runtimeapi.PodSandboxStats{}, e.err
}
func (e errStats) ListPodSandboxStats(context.Context, *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	return nil, e.err
}
func (e errStats) MetricDescriptors() []*runtimeapi.MetricDescriptor { return nil }
func (e errStats) ListPodSandboxMetrics(context.Context) ([]*runtimeapi.PodSandboxMetrics, error) {
	return nil, e.err
}

func TestStatsRPCs(t *testing.T) {
	ctx := context.Background()
	var none *Stats
	if _, err := none.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: "x"}); grpcCode(err) != codes.Unimplemented {
		t.Errorf("no service: %v", err)
	}
	h := NewStats(errStats{fmt.Errorf("wrapped: %w", stats.ErrNotFound)})
	if _, err := h.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: "x"}); grpcCode(err) != codes.NotFound {
		t.Errorf("not found: %v", err)
	}
	if _, err := h.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: "x"}); grpcCode(err) != codes.NotFound {
		t.Errorf("pod not found: %v", err)
	}
	for _, id := range []string{"", strings.Repeat("a", 200)} {
		if _, err := h.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: id}); grpcCode(err) != codes.InvalidArgument {
			t.Errorf("id %q: %v", id, err)
		}
		if _, err := h.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: id}); grpcCode(err) != codes.InvalidArgument {
			t.Errorf("pod id %q: %v", id, err)
		}
	}
	// An over-long filter id matches nothing without asking the service.
	resp, err := h.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{PodSandboxId: strings.Repeat("a", 200)}})
	if err != nil || len(resp.Stats) != 0 {
		t.Errorf("long filter: %v %v", resp, err)
	}
	if _, err := NewStats(errStats{context.Canceled}).ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{}); grpcCode(err) != codes.Canceled {
		t.Errorf("canceled: %v", err)
	}
}

type fakeUpdaters struct{ ctrErr error }

func (f fakeUpdaters) UpdateResources(context.Context, string, *runtimeapi.LinuxContainerResources) error {
	return f.ctrErr
}

type fakePodUpdater struct{ err error }

func (f fakePodUpdater) UpdateResources(context.Context, string, *runtimeapi.LinuxContainerResources, *runtimeapi.LinuxContainerResources) error {
	return f.err
}

func TestResourceRPCs(t *testing.T) {
	ctx := context.Background()
	none := NewResources(ResourceServices{})
	if _, err := none.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: "x"}); grpcCode(err) != codes.Unimplemented {
		t.Errorf("no service: %v", err)
	}
	cases := []struct {
		ctr, pod error
		code     codes.Code
	}{
		{&errdefs.InvalidArgumentError{Field: "linux.cpu_shares", Reason: "bad"}, fmt.Errorf("x: %w", &errdefs.InvalidArgumentError{Field: "resources.cpu_shares"}), codes.InvalidArgument},
		{fmt.Errorf("%w: c", container.ErrNotFound), fmt.Errorf("%w: p", sandbox.ErrNotFound), codes.NotFound},
		{fmt.Errorf("%w: exited", container.ErrFailedPrecondition), fmt.Errorf("%w: stopped", sandbox.ErrNotReady), codes.FailedPrecondition},
		{fmt.Errorf("%w: no update", container.ErrUnimplemented), nil, codes.Unimplemented},
	}
	for _, c := range cases {
		h := NewResources(ResourceServices{Containers: fakeUpdaters{ctrErr: c.ctr}, Pods: fakePodUpdater{c.pod}})
		if _, err := h.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: "x"}); grpcCode(err) != c.code {
			t.Errorf("container %v: %v, want %s", c.ctr, err, c.code)
		}
		want := c.code
		if c.pod == nil {
			want = codes.OK
		}
		if _, err := h.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: "p"}); grpcCode(err) != want {
			t.Errorf("pod %v: %v, want %s", c.pod, err, want)
		}
	}
	h := NewResources(ResourceServices{Containers: fakeUpdaters{}, Pods: fakePodUpdater{}})
	if _, err := h.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{}); grpcCode(err) != codes.InvalidArgument {
		t.Errorf("empty id: %v", err)
	}
	if _, err := h.UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: strings.Repeat("p", 300)}); grpcCode(err) != codes.InvalidArgument {
		t.Errorf("long id: %v", err)
	}
}
