package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/errdefs"
)

// ContainerService is what the container RPCs need; *container.Service
// implements it.
type ContainerService interface {
	Create(ctx context.Context, podID string, cfg *runtimeapi.ContainerConfig) (*container.Container, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout time.Duration) error
	Remove(ctx context.Context, id string) error
	Get(id string) (*container.Container, error)
	List(f container.Filter) []*container.Container
	ReopenLog(ctx context.Context, id string) error
}

var _ ContainerService = (*container.Service)(nil)

// Containers answers the container RPCs. With no service configured every
// RPC is Unimplemented, like the fallback it shadows.
type Containers struct {
	svc ContainerService
}

// NewContainers returns the handler group; svc may be nil.
func NewContainers(svc ContainerService) *Containers { return &Containers{svc: svc} }

func (h *Containers) ready() error {
	if h == nil || h.svc == nil {
		return errNotServed
	}
	return nil
}

// CreateContainer creates a container in a pod. The pod's configuration
// is taken from crio's own record, not from the request's sandbox_config.
func (h *Containers) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("pod_sandbox_id", req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	c, err := h.svc.Create(ctx, req.GetPodSandboxId(), req.GetConfig())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: c.ID}, nil
}

// StartContainer starts a created container.
func (h *Containers) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("container_id", req.GetContainerId()); err != nil {
		return nil, err
	}
	if err := h.svc.Start(ctx, req.GetContainerId()); err != nil {
		return nil, err
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// maxStopTimeout bounds a requested grace period (a day is already far
// beyond any kubelet setting).
const maxStopTimeout = 24 * 60 * 60

// StopContainer stops a container; an unknown or stopped one succeeds.
func (h *Containers) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("container_id", req.GetContainerId()); err != nil {
		return nil, err
	}
	t := min(max(req.GetTimeout(), 0), maxStopTimeout)
	if err := h.svc.Stop(ctx, req.GetContainerId(), time.Duration(t)*time.Second); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// RemoveContainer removes a container (stopping it first); an unknown id
// succeeds.
func (h *Containers) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("container_id", req.GetContainerId()); err != nil {
		return nil, err
	}
	if err := h.svc.Remove(ctx, req.GetContainerId()); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// ContainerStatus reports one container; unknown ids are NotFound.
func (h *Containers) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("container_id", req.GetContainerId()); err != nil {
		return nil, err
	}
	c, err := h.svc.Get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: containerStatusToCRI(c)}
	if req.GetVerbose() {
		resp.Info = map[string]string{"info": verboseContainerInfo(c)}
	}
	return resp, nil
}

// ListContainers lists containers matching the filter.
func (h *Containers) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	f := req.GetFilter()
	filter := container.Filter{ID: f.GetId(), PodID: f.GetPodSandboxId(), Labels: f.GetLabelSelector()}
	if len(filter.ID) > maxIDLen || len(filter.PodID) > maxIDLen {
		return &runtimeapi.ListContainersResponse{}, nil // nothing has such an id
	}
	if st := f.GetState(); st != nil {
		switch st.State {
		case runtimeapi.ContainerState_CONTAINER_CREATED:
			filter.State = container.StateCreated
		case runtimeapi.ContainerState_CONTAINER_RUNNING:
			filter.State = container.StateRunning
		case runtimeapi.ContainerState_CONTAINER_EXITED:
			filter.State = container.StateExited
		case runtimeapi.ContainerState_CONTAINER_UNKNOWN:
			return &runtimeapi.ListContainersResponse{}, nil // crio always knows
		default:
			return nil, errdefs.Invalid("filter.state", "%d is not a container state", st.State)
		}
	}
	cs := h.svc.List(filter)
	out := make([]*runtimeapi.Container, 0, len(cs))
	for _, c := range cs {
		out = append(out, &runtimeapi.Container{
			Id:           c.ID,
			PodSandboxId: c.PodID,
			Metadata:     c.Config.GetMetadata(),
			Image:        imageSpec(c),
			ImageRef:     c.ImageRef,
			ImageId:      c.ImageID,
			State:        containerStateToCRI(c.State),
			CreatedAt:    c.CreatedAt,
			Labels:       c.Config.GetLabels(),
			Annotations:  c.Config.GetAnnotations(),
		})
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

// ReopenContainerLog makes the container's monitor reopen its log file.
func (h *Containers) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("container_id", req.GetContainerId()); err != nil {
		return nil, err
	}
	if err := h.svc.ReopenLog(ctx, req.GetContainerId()); err != nil {
		return nil, err
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}

func containerStateToCRI(s container.State) runtimeapi.ContainerState {
	switch s {
	case container.StateCreating, container.StateCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case container.StateRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case container.StateExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

func imageSpec(c *container.Container) *runtimeapi.ImageSpec {
	return &runtimeapi.ImageSpec{
		Image:              c.ImageName,
		UserSpecifiedImage: c.UserSpecifiedImage,
		Annotations:        c.Config.GetImage().GetAnnotations(),
		RuntimeHandler:     c.Config.GetImage().GetRuntimeHandler(),
	}
}

func containerStatusToCRI(c *container.Container) *runtimeapi.ContainerStatus {
	st := &runtimeapi.ContainerStatus{
		Id:          c.ID,
		Metadata:    c.Config.GetMetadata(),
		State:       containerStateToCRI(c.State),
		CreatedAt:   c.CreatedAt,
		StartedAt:   c.StartedAt,
		FinishedAt:  c.FinishedAt,
		ExitCode:    c.ExitCode,
		Image:       imageSpec(c),
		ImageRef:    c.ImageRef,
		ImageId:     c.ImageID,
		Reason:      c.Reason,
		Message:     c.Message,
		Labels:      c.Config.GetLabels(),
		Annotations: c.Config.GetAnnotations(),
		LogPath:     c.LogPath,
		StopSignal:  c.Config.GetStopSignal(),
		User: &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
			Uid: c.UID, Gid: c.GID, SupplementalGroups: c.SupplementalGroups,
		}},
	}
	if r := c.Config.GetLinux().GetResources(); r != nil {
		st.Resources = &runtimeapi.ContainerResources{Linux: r}
	}
	for _, m := range c.Mounts {
		mnt := &runtimeapi.Mount{
			ContainerPath: m.ContainerPath, HostPath: m.HostPath, Readonly: m.Readonly,
			RecursiveReadOnly: m.RecursiveReadOnly,
			SelinuxRelabel:    m.SelinuxRelabel, Propagation: runtimeapi.MountPropagation(m.Propagation),
		}
		if m.Image != "" {
			// image_ref is what PullImage returned for the image (its id).
			mnt.Image = &runtimeapi.ImageSpec{Image: m.Image, ImageRef: m.ImageRef}
			mnt.ImageSubPath = m.ImageSubPath
		}
		st.Mounts = append(st.Mounts, mnt)
	}
	return st
}

// verboseContainerInfo is the "info" of a verbose ContainerStatus, in the
// shape crictl inspect shows: pid, sandbox and the OCI spec.
func verboseContainerInfo(c *container.Container) string {
	doc := map[string]any{
		"sandboxID":   c.PodID,
		"pid":         c.Pid,
		"monitorPid":  c.MonitorPid,
		"runtimeType": c.Runtime,
		"rootfs":      c.Rootfs,
		"bundle":      c.Bundle,
		"stopSignal":  c.StopSignal,
	}
	if data, err := os.ReadFile(filepath.Join(c.Bundle, "config.json")); err == nil {
		doc["runtimeSpec"] = json.RawMessage(data)
	}
	b, _ := json.Marshal(doc)
	return string(b)
}
