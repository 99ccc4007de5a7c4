package server

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/oci"
	"github.com/crio-appliance/crio/daemon/streaming"
)

// errStreams answers every call with one error, or a fixed result.
type errStreams struct{ err error }

func (e errStreams) ExecSync(context.Context, string, []string, int64) (*oci.ExecSyncResult, error) {
	if e.err != nil {
		return nil, e.err
	}
	return &oci.ExecSyncResult{Stdout: []byte("o"), Stderr: []byte("e"), ExitCode: 3}, nil
}
func (e errStreams) Exec(*runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return &runtimeapi.ExecResponse{Url: "u"}, e.err
}
func (e errStreams) Attach(*runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return &runtimeapi.AttachResponse{Url: "u"}, e.err
}
func (e errStreams) PortForward(*runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return &runtimeapi.PortForwardResponse{Url: "u"}, e.err
}

func TestStreamsUnimplementedWithoutService(t *testing.T) {
	h := NewStreams(nil)
	ctx := context.Background()
	if _, err := h.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: "c"}); grpcCode(err) != codes.Unimplemented {
		t.Errorf("ExecSync: %v", err)
	}
	if _, err := h.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: "p"}); grpcCode(err) != codes.Unimplemented {
		t.Errorf("PortForward: %v", err)
	}
}

func TestStreamsErrorCodes(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		err  error
		code codes.Code
	}{
		{nil, codes.OK},
		{fmt.Errorf("x: %w", container.ErrNotFound), codes.NotFound},
		{fmt.Errorf("x: %w", container.ErrFailedPrecondition), codes.FailedPrecondition},
		{&errdefs.InvalidArgumentError{Field: "cmd", Reason: "NUL"}, codes.InvalidArgument},
		{fmt.Errorf("exec: %w", oci.ErrBadExecArgs), codes.InvalidArgument},
		{fmt.Errorf("exec: %w: %w", oci.ErrExecTimeout, context.DeadlineExceeded), codes.DeadlineExceeded},
		{streaming.ErrTooManyStreams, codes.ResourceExhausted},
		{status.Error(codes.Aborted, "as is"), codes.Aborted},
	} {
		h := NewStreams(errStreams{c.err})
		resp, err := h.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: "c", Cmd: []string{"true"}})
		if grpcCode(err) != c.code {
			t.Errorf("ExecSync with %v: %v, want %s", c.err, err, c.code)
		}
		if err == nil && (string(resp.Stdout) != "o" || string(resp.Stderr) != "e" || resp.ExitCode != 3) {
			t.Errorf("ExecSync response %v", resp)
		}
		if _, err := h.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "c"}); grpcCode(err) != c.code {
			t.Errorf("Exec with %v: %v, want %s", c.err, err, c.code)
		}
		if _, err := h.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: "c"}); grpcCode(err) != c.code {
			t.Errorf("Attach with %v: %v, want %s", c.err, err, c.code)
		}
		if _, err := h.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: "p"}); grpcCode(err) != c.code {
			t.Errorf("PortForward with %v: %v, want %s", c.err, err, c.code)
		}
	}
	h := NewStreams(errStreams{})
	for _, id := range []string{"", strings.Repeat("a", 200)} {
		if _, err := h.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id}); grpcCode(err) != codes.InvalidArgument {
			t.Errorf("ExecSync id %.20q: %v", id, err)
		}
		if _, err := h.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: id}); grpcCode(err) != codes.InvalidArgument {
			t.Errorf("PortForward id %.20q: %v", id, err)
		}
	}
}
