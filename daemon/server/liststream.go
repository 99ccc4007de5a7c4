package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Bounds of one message of a Stream* list RPC. The point of these RPCs
// (KEP-5825) is that a node with thousands of containers does not need one
// message above the client's receive limit (the kubelet's is 16 MiB), so a
// chunk stops at whichever bound it reaches first. An item larger than
// maxChunkBytes on its own is sent alone.
const (
	maxChunkItems = 128
	maxChunkBytes = 1 << 20
)

// chunks splits items into runs of at most maxChunkItems items and, unless
// one item alone is larger, maxChunkBytes of encoded size, in order; every
// item is in exactly one run.
func chunks[T proto.Message](items []T) [][]T {
	var out [][]T
	start, size := 0, 0
	for i, it := range items {
		n := proto.Size(it)
		if i > start && (i-start == maxChunkItems || size+n > maxChunkBytes) {
			out = append(out, items[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(items) {
		out = append(out, items[start:])
	}
	return out
}

// streamChunks sends items in chunks, each wrapped by wrap. An empty list
// sends no message: the client sees EOF at once, which the CRI reads as
// "no items".
func streamChunks[T proto.Message, R any](items []T, wrap func([]T) *R, stream grpc.ServerStreamingServer[R]) error {
	for _, c := range chunks(items) {
		if err := stream.Send(wrap(c)); err != nil {
			return err
		}
	}
	return nil
}

// lister is the part of the RuntimeService whose answers the Stream RPCs
// send again in chunks; *runtimeServer implements it.
type lister interface {
	ListPodSandbox(context.Context, *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error)
	ListContainers(context.Context, *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error)
	ListContainerStats(context.Context, *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error)
	ListPodSandboxStats(context.Context, *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error)
	ListPodSandboxMetrics(context.Context, *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error)
}

// ListStreams serves the RuntimeService's Stream* RPCs from the matching
// List handler, so the two can never disagree (filters, errors and codes
// included, an Unimplemented List making its Stream Unimplemented too).
type ListStreams struct {
	list lister
}

// StreamPodSandboxes streams what ListPodSandbox returns.
func (h *ListStreams) StreamPodSandboxes(req *runtimeapi.StreamPodSandboxesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
	resp, err := h.list.ListPodSandbox(stream.Context(), &runtimeapi.ListPodSandboxRequest{Filter: req.GetFilter()})
	if err != nil {
		return err
	}
	return streamChunks(resp.GetItems(), func(c []*runtimeapi.PodSandbox) *runtimeapi.StreamPodSandboxesResponse {
		return &runtimeapi.StreamPodSandboxesResponse{PodSandboxes: c}
	}, stream)
}

// StreamContainers streams what ListContainers returns.
func (h *ListStreams) StreamContainers(req *runtimeapi.StreamContainersRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainersResponse]) error {
	resp, err := h.list.ListContainers(stream.Context(), &runtimeapi.ListContainersRequest{Filter: req.GetFilter()})
	if err != nil {
		return err
	}
	return streamChunks(resp.GetContainers(), func(c []*runtimeapi.Container) *runtimeapi.StreamContainersResponse {
		return &runtimeapi.StreamContainersResponse{Containers: c}
	}, stream)
}

// StreamContainerStats streams what ListContainerStats returns.
func (h *ListStreams) StreamContainerStats(req *runtimeapi.StreamContainerStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamContainerStatsResponse]) error {
	resp, err := h.list.ListContainerStats(stream.Context(), &runtimeapi.ListContainerStatsRequest{Filter: req.GetFilter()})
	if err != nil {
		return err
	}
	return streamChunks(resp.GetStats(), func(c []*runtimeapi.ContainerStats) *runtimeapi.StreamContainerStatsResponse {
		return &runtimeapi.StreamContainerStatsResponse{ContainerStats: c}
	}, stream)
}

// StreamPodSandboxStats streams what ListPodSandboxStats returns.
func (h *ListStreams) StreamPodSandboxStats(req *runtimeapi.StreamPodSandboxStatsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxStatsResponse]) error {
	resp, err := h.list.ListPodSandboxStats(stream.Context(), &runtimeapi.ListPodSandboxStatsRequest{Filter: req.GetFilter()})
	if err != nil {
		return err
	}
	return streamChunks(resp.GetStats(), func(c []*runtimeapi.PodSandboxStats) *runtimeapi.StreamPodSandboxStatsResponse {
		return &runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: c}
	}, stream)
}

// StreamPodSandboxMetrics streams what ListPodSandboxMetrics returns.
func (h *ListStreams) StreamPodSandboxMetrics(_ *runtimeapi.StreamPodSandboxMetricsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	resp, err := h.list.ListPodSandboxMetrics(stream.Context(), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		return err
	}
	return streamChunks(resp.GetPodMetrics(), func(c []*runtimeapi.PodSandboxMetrics) *runtimeapi.StreamPodSandboxMetricsResponse {
		return &runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: c}
	}, stream)
}

// imageStreams adds StreamImages to an ImageService, from its ListImages.
type imageStreams struct {
	runtimeapi.ImageServiceServer
}

// StreamImages streams what ListImages returns.
func (s imageStreams) StreamImages(req *runtimeapi.StreamImagesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamImagesResponse]) error {
	resp, err := s.ListImages(stream.Context(), &runtimeapi.ListImagesRequest{Filter: req.GetFilter()})
	if err != nil {
		return err
	}
	return streamChunks(resp.GetImages(), func(c []*runtimeapi.Image) *runtimeapi.StreamImagesResponse {
		return &runtimeapi.StreamImagesResponse{Images: c}
	}, stream)
}
