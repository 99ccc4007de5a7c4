package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/sandbox"
)

// ContainerResourceUpdater changes a container's limits;
// *container.Service implements it.
type ContainerResourceUpdater interface {
	UpdateResources(ctx context.Context, id string, r *runtimeapi.LinuxContainerResources) error
}

// PodResourceUpdater changes a pod's limits; *sandbox.Service implements
// it.
type PodResourceUpdater interface {
	UpdateResources(ctx context.Context, id string, overhead, r *runtimeapi.LinuxContainerResources) error
}

var (
	_ ContainerResourceUpdater = (*container.Service)(nil)
	_ PodResourceUpdater       = (*sandbox.Service)(nil)
)

// ResourceServices are the two services the resource RPCs reach.
type ResourceServices struct {
	Containers ContainerResourceUpdater
	Pods       PodResourceUpdater
}

// Resources answers UpdateContainerResources and UpdatePodSandboxResources.
// Without a service an RPC is Unimplemented.
type Resources struct {
	svc ResourceServices
}

// NewResources returns the handler group.
func NewResources(svc ResourceServices) *Resources { return &Resources{svc: svc} }

// UpdateContainerResources changes a created or running container's
// Linux resources.
func (h *Resources) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	if h == nil || h.svc.Containers == nil {
		return nil, errNotServed
	}
	if err := checkID("container_id", req.GetContainerId()); err != nil {
		return nil, err
	}
	if err := h.svc.Containers.UpdateResources(ctx, req.GetContainerId(), req.GetLinux()); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// UpdatePodSandboxResources applies a ready pod's new resources to its
// cgroup.
func (h *Resources) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	if h == nil || h.svc.Pods == nil {
		return nil, errNotServed
	}
	if err := checkID("pod_sandbox_id", req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	if err := h.svc.Pods.UpdateResources(ctx, req.GetPodSandboxId(), req.GetOverhead(), req.GetResources()); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
