package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/stats"
)

// StatsService is what the stats and metrics RPCs need; *stats.Service
// implements it.
type StatsService interface {
	ContainerStats(ctx context.Context, id string) (*runtimeapi.ContainerStats, error)
	ListContainerStats(ctx context.Context, f *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error)
	PodSandboxStats(ctx context.Context, id string) (*runtimeapi.PodSandboxStats, error)
	ListPodSandboxStats(ctx context.Context, f *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error)
	MetricDescriptors() []*runtimeapi.MetricDescriptor
	ListPodSandboxMetrics(ctx context.Context) ([]*runtimeapi.PodSandboxMetrics, error)
}

var _ StatsService = (*stats.Service)(nil)

// Stats answers the stats and metrics RPCs. With no service configured
// every RPC is Unimplemented, like the fallback it shadows.
type Stats struct {
	svc StatsService
}

// NewStats returns the handler group; svc may be nil.
func NewStats(svc StatsService) *Stats { return &Stats{svc: svc} }

func (h *Stats) ready() error {
	if h == nil || h.svc == nil {
		return errNotServed
	}
	return nil
}

// ContainerStats reports one container; unknown ids are NotFound.
func (h *Stats) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("container_id", req.GetContainerId()); err != nil {
		return nil, err
	}
	st, err := h.svc.ContainerStats(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: st}, nil
}

// ListContainerStats reports the containers matching the filter.
func (h *Stats) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	f := req.GetFilter()
	if len(f.GetId()) > maxIDLen || len(f.GetPodSandboxId()) > maxIDLen {
		return &runtimeapi.ListContainerStatsResponse{}, nil // nothing has such an id
	}
	st, err := h.svc.ListContainerStats(ctx, f)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: st}, nil
}

// PodSandboxStats reports one pod; unknown ids are NotFound.
func (h *Stats) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("pod_sandbox_id", req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	st, err := h.svc.PodSandboxStats(ctx, req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: st}, nil
}

// ListPodSandboxStats reports the pods matching the filter.
func (h *Stats) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	f := req.GetFilter()
	if len(f.GetId()) > maxIDLen {
		return &runtimeapi.ListPodSandboxStatsResponse{}, nil
	}
	st, err := h.svc.ListPodSandboxStats(ctx, f)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: st}, nil
}

// ListMetricDescriptors describes the metrics of ListPodSandboxMetrics.
func (h *Stats) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: h.svc.MetricDescriptors()}, nil
}

// ListPodSandboxMetrics reports the metrics of every ready pod.
func (h *Stats) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	m, err := h.svc.ListPodSandboxMetrics(ctx)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: m}, nil
}
