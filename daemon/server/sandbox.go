package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

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

func (h *PodSandboxes) ready(rpc string) error {
	if h == nil || h.svc == nil {
		return status.Errorf(codes.Unimplemented, "method %s not implemented", rpc)
	}
	return nil
}

func checkPodID(rpc, id string) error {
	if id == "" {
		return status.Errorf(codes.InvalidArgument, "%s: pod_sandbox_id is empty", rpc)
	}
	if len(id) > maxIDLen {
		return status.Errorf(codes.InvalidArgument, "%s: pod_sandbox_id is longer than %d characters", rpc, maxIDLen)
	}
	return nil
}

// sandboxError maps the sandbox service's errors to gRPC codes.
func sandboxError(rpc string, err error) error {
	var inv *sandbox.InvalidError
	switch {
	case errors.As(err, &inv):
		return status.Errorf(codes.InvalidArgument, "%s: %v", rpc, err)
	case errors.Is(err, sandbox.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s: %v", rpc, err)
	case errors.Is(err, sandbox.ErrAlreadyExists):
		return status.Errorf(codes.AlreadyExists, "%s: %v", rpc, err)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s: %v", rpc, err)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: %v", rpc, err)
	}
	return status.Errorf(codes.Unknown, "%s: %v", rpc, err)
}

// RunPodSandbox creates the pod, or returns the one an identical earlier
// request created.
func (h *PodSandboxes) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	if err := h.ready("RunPodSandbox"); err != nil {
		return nil, err
	}
	sb, err := h.svc.Run(ctx, req.GetConfig(), req.GetRuntimeHandler())
	if err != nil {
		return nil, sandboxError("RunPodSandbox", err)
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: sb.ID}, nil
}

// StopPodSandbox stops the pod; an unknown id succeeds (the kubelet stops
// pods it has lost track of).
func (h *PodSandboxes) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	if err := h.ready("StopPodSandbox"); err != nil {
		return nil, err
	}
	if err := checkPodID("StopPodSandbox", req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	if err := h.svc.Stop(ctx, req.GetPodSandboxId()); err != nil {
		return nil, sandboxError("StopPodSandbox", err)
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// RemovePodSandbox removes the pod and all it owns; an unknown id succeeds.
func (h *PodSandboxes) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	if err := h.ready("RemovePodSandbox"); err != nil {
		return nil, err
	}
	if err := checkPodID("RemovePodSandbox", req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	if err := h.svc.Remove(ctx, req.GetPodSandboxId()); err != nil {
		return nil, sandboxError("RemovePodSandbox", err)
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// PodSandboxStatus reports one pod; unknown ids are NotFound.
func (h *PodSandboxes) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	if err := h.ready("PodSandboxStatus"); err != nil {
		return nil, err
	}
	if err := checkPodID("PodSandboxStatus", req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	sb, err := h.svc.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, sandboxError("PodSandboxStatus", err)
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: podStatusToCRI(sb)}
	if req.GetVerbose() {
		info, err := json.Marshal(sb)
		if err != nil {
			return nil, sandboxError("PodSandboxStatus", fmt.Errorf("verbose info: %w", err))
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// ListPodSandbox lists pods matching the filter.
func (h *PodSandboxes) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	if err := h.ready("ListPodSandbox"); err != nil {
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
			return nil, status.Errorf(codes.InvalidArgument, "ListPodSandbox: filter.state %d is not a pod state", st.State)
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
