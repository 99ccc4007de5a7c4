package server

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/sandbox"
)

// errSandboxes answers every call with one error, to check the mapping.
type errSandboxes struct{ err error }

func (e errSandboxes) Run(context.Context, *runtimeapi.PodSandboxConfig, string) (*sandbox.Sandbox, error) {
	return nil, e.err
}
func (e errSandboxes) Stop(context.Context, string) error   { return e.err }
func (e errSandboxes) Remove(context.Context, string) error { return e.err }
func (e errSandboxes) Get(string) (*sandbox.Sandbox, error) { return nil, e.err }
func (e errSandboxes) List(sandbox.Filter) []*sandbox.Sandbox {
	return []*sandbox.Sandbox{{ID: "abc", State: sandbox.StateReady, RuntimeHandler: "runc", IPs: []string{"10.0.0.2", "fd00::2"},
		Config: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "p"}, Labels: map[string]string{"a": "b"}}}}
}

func TestSandboxErrorCodes(t *testing.T) {
	for err, want := range map[error]codes.Code{
		&errdefs.InvalidArgumentError{Field: "config.hostname", Reason: "bad"}: codes.InvalidArgument,
		fmt.Errorf("x: %w", sandbox.ErrNotFound):                               codes.NotFound,
		fmt.Errorf("x: %w", sandbox.ErrAlreadyExists):                          codes.AlreadyExists,
		context.DeadlineExceeded:                                               codes.DeadlineExceeded,
		fmt.Errorf("CNI ADD failed"):                                           codes.Unknown,
	} {
		rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{Sandbox: errSandboxes{err}}))
		_, got := rt.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{})
		if status.Code(got) != want || !strings.Contains(got.Error(), err.Error()) {
			t.Errorf("%v: got %v, want %v", err, got, want)
		}
		_, got = rt.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "abc"})
		if status.Code(got) != want {
			t.Errorf("status %v: got %v, want %v", err, got, want)
		}
	}
}

func TestSandboxRequestChecks(t *testing.T) {
	rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{Sandbox: errSandboxes{}}))
	ctx := context.Background()
	if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("stop without id: %v", err)
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: strings.Repeat("a", 200)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("remove with a huge id: %v", err)
	}
	_, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: 7}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("list with a bad state: %v", err)
	}
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(list.Items) != 1 || list.Items[0].State != runtimeapi.PodSandboxState_SANDBOX_READY ||
		list.Items[0].Labels["a"] != "b" || list.Items[0].RuntimeHandler != "runc" {
		t.Errorf("list: %v %v", list, err)
	}
	// Without a sandbox service the RPCs are Unimplemented, as before.
	rt = runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{}))
	if _, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("no service: %v", err)
	}
}

func TestPodStatusToCRI(t *testing.T) {
	st := podStatusToCRI(&sandbox.Sandbox{ID: "abc", State: sandbox.StateNotReady, IPs: []string{"10.0.0.2", "fd00::2"},
		Config: &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_CONTAINER},
		}}}})
	if st.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || st.Network.Ip != "10.0.0.2" ||
		len(st.Network.AdditionalIps) != 1 || st.Network.AdditionalIps[0].Ip != "fd00::2" ||
		st.Linux.Namespaces.Options.Network != runtimeapi.NamespaceMode_NODE || st.Linux.Namespaces.Options.Pid != runtimeapi.NamespaceMode_CONTAINER {
		t.Errorf("status %v", st)
	}
}
