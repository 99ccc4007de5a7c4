package server

import (
	"context"
	"encoding/json"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/sandbox"
)

// SandboxService is what the pod RPCs need; *sandbox.Service implements it.
type SandboxService interface {
	Run(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (*sandbox.Sandbox, error)
	Stop(ctx context.Context, id string) error
	Remove(ctx context.Context, id string) error
	Get(id string) (*sandbox.Sandbox, error)
	List(f sandbox.Filter) []*sandbox.Sandbox
}

var _ SandboxService = (*sandbox.Service)(nil)

// PodSandboxes answers the pod sandbox RPCs. With no service configured
// every RPC is Unimplemented, like the fallback it shadows.
type PodSandboxes struct {
	svc SandboxService
}

// NewPodSandboxes returns the handler group; svc may be nil.
func NewPodSandboxes(svc SandboxService) *PodSandboxes { return &PodSandboxes{svc: svc} }

// maxIDLen bounds ids in requests; real ids are 64 hex characters.
const maxIDLen = 128

func (h *PodSandboxes) ready() error {
	if h == nil || h.svc == nil {
		return errNotServed
	}
	return nil
}

// checkID checks an id a request names: a handler answers a bad one
// before any service sees it.
func checkID(field, id string) error {
	if id == "" {
		return errdefs.Invalid(field, "empty")
	}
	if len(id) > maxIDLen {
		return errdefs.Invalid(field, "longer than %d characters", maxIDLen)
	}
	return nil
}

// RunPodSandbox creates the pod, or returns the one an identical earlier
// request created.
func (h *PodSandboxes) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	sb, err := h.svc.Run(ctx, req.GetConfig(), req.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: sb.ID}, nil
}

// StopPodSandbox stops the pod; an unknown id succeeds (the kubelet stops
// pods it has lost track of).
func (h *PodSandboxes) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("pod_sandbox_id", req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	if err := h.svc.Stop(ctx, req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// RemovePodSandbox removes the pod and all it owns; an unknown id succeeds.
func (h *PodSandboxes) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("pod_sandbox_id", req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	if err := h.svc.Remove(ctx, req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// PodSandboxStatus reports one pod; unknown ids are NotFound.
func (h *PodSandboxes) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("pod_sandbox_id", req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	sb, err := h.svc.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: podStatusToCRI(sb)}
	if req.GetVerbose() {
		info, err := json.Marshal(sb)
		if err != nil {
			return nil, fmt.Errorf("verbose info: %w", err)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// ListPodSandbox lists pods matching the filter.
func (h *PodSandboxes) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	f := req.GetFilter()
	filter := sandbox.Filter{ID: f.GetId(), Labels: f.GetLabelSelector()}
	if len(filter.ID) > maxIDLen {
		return &runtimeapi.ListPodSandboxResponse{}, nil // no pod has such an id
	}
	if st := f.GetState(); st != nil {
		switch st.State {
		case runtimeapi.PodSandboxState_SANDBOX_READY:
			filter.State = sandbox.StateReady
		case runtimeapi.PodSandboxState_SANDBOX_NOTREADY:
			filter.State = sandbox.StateNotReady
		default:
			return nil, errdefs.Invalid("filter.state", "%d is not a pod state", st.State)
		}
	}
	sbs := h.svc.List(filter)
	out := make([]*runtimeapi.PodSandbox, 0, len(sbs))
	for _, sb := range sbs {
		cfg := sb.Config
		out = append(out, &runtimeapi.PodSandbox{
			Id:             sb.ID,
			Metadata:       cfg.GetMetadata(),
			State:          podStateToCRI(sb),
			CreatedAt:      sb.CreatedAt,
			Labels:         cfg.GetLabels(),
			Annotations:    cfg.GetAnnotations(),
			RuntimeHandler: sb.RuntimeHandler,
		})
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

func podStateToCRI(sb *sandbox.Sandbox) runtimeapi.PodSandboxState {
	if sb.Ready() {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func podStatusToCRI(sb *sandbox.Sandbox) *runtimeapi.PodSandboxStatus {
	cfg := sb.Config
	st := &runtimeapi.PodSandboxStatus{
		Id:             sb.ID,
		Metadata:       cfg.GetMetadata(),
		State:          podStateToCRI(sb),
		CreatedAt:      sb.CreatedAt,
		Labels:         cfg.GetLabels(),
		Annotations:    cfg.GetAnnotations(),
		RuntimeHandler: sb.RuntimeHandler,
		Network:        &runtimeapi.PodSandboxNetworkStatus{},
	}
	if len(sb.IPs) > 0 {
		st.Network.Ip = sb.IPs[0]
		for _, ip := range sb.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	st.Linux = &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
		Network: ns.GetNetwork(), Pid: ns.GetPid(), Ipc: ns.GetIpc(),
	}}}
	return st
}
