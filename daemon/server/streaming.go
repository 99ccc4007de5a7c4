package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/oci"
	"github.com/crio-appliance/crio/daemon/streaming"
)

// StreamService is what ExecSync, Exec, Attach and PortForward need;
// *streaming.Service implements it.
type StreamService interface {
	ExecSync(ctx context.Context, id string, cmd []string, timeoutSeconds int64) (*oci.ExecSyncResult, error)
	Exec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	Attach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	PortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
}

var _ StreamService = (*streaming.Service)(nil)

// Streams answers ExecSync and hands out streaming URLs. With no service
// configured every RPC is Unimplemented, like the fallback it shadows.
type Streams struct {
	svc StreamService
}

// NewStreams returns the handler group; svc may be nil.
func NewStreams(svc StreamService) *Streams { return &Streams{svc: svc} }

func (h *Streams) ready() error {
	if h == nil || h.svc == nil {
		return errNotServed
	}
	return nil
}

// ExecSync runs a command in a container and returns its output.
func (h *Streams) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("container_id", req.GetContainerId()); err != nil {
		return nil, err
	}
	res, err := h.svc.ExecSync(ctx, req.GetContainerId(), req.GetCmd(), req.GetTimeout())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecSyncResponse{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}, nil
}

// Exec returns the URL of an exec stream.
func (h *Streams) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("container_id", req.GetContainerId()); err != nil {
		return nil, err
	}
	resp, err := h.svc.Exec(req)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Attach returns the URL of an attach stream.
func (h *Streams) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("container_id", req.GetContainerId()); err != nil {
		return nil, err
	}
	resp, err := h.svc.Attach(req)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// PortForward returns the URL of a port-forward stream.
func (h *Streams) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if err := h.ready(); err != nil {
		return nil, err
	}
	if err := checkID("pod_sandbox_id", req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	resp, err := h.svc.PortForward(req)
	if err != nil {
		return nil, err
	}
	return resp, nil
}
