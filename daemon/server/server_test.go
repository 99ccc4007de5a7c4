package server

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// dialCRI serves New(opts) on an in-memory listener and returns a client conn.
func dialCRI(t *testing.T, opts Options) *grpc.ClientConn {
	t.Helper()
	l := bufconn.Listen(1 << 20)
	s := New(opts)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestVersion(t *testing.T) {
	rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{Version: "1.2.3"}))
	v, err := rt.Version(context.Background(), &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "crio" || v.RuntimeVersion != "1.2.3" || v.RuntimeApiVersion != "v1" || v.Version != "0.1.0" {
		t.Errorf("Version = %v", v)
	}
}

func TestStatusWithoutNetwork(t *testing.T) {
	rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{}))
	st, err := rt.Status(context.Background(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	conds := map[string]*runtimeapi.RuntimeCondition{}
	for _, c := range st.GetStatus().GetConditions() {
		conds[c.Type] = c
	}
	if c := conds[runtimeapi.RuntimeReady]; c == nil || !c.Status {
		t.Errorf("RuntimeReady = %v, want true", c)
	}
	c := conds[runtimeapi.NetworkReady]
	if c == nil || c.Status || c.Reason != "NetworkPluginNotReady" || c.Message == "" {
		t.Errorf("NetworkReady = %v, want false with reason and message", c)
	}
}

type stubReadyNetwork struct{}

func (stubReadyNetwork) NetworkReady(context.Context) (bool, string, string) {
	return true, "ignored", "ignored"
}

func TestStatusWithNetwork(t *testing.T) {
	rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{Network: stubReadyNetwork{}}))
	st, err := rt.Status(context.Background(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Status.Conditions {
		if !c.Status || c.Reason != "" || c.Message != "" {
			t.Errorf("condition %v: want ready without reason", c)
		}
	}
}

func TestRuntimeConfigCgroupDriver(t *testing.T) {
	for manager, want := range map[string]runtimeapi.CgroupDriver{
		"cgroupfs": runtimeapi.CgroupDriver_CGROUPFS,
		"systemd":  runtimeapi.CgroupDriver_SYSTEMD,
		"":         runtimeapi.CgroupDriver_SYSTEMD,
	} {
		rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{CgroupManager: manager}))
		rc, err := rt.RuntimeConfig(context.Background(), &runtimeapi.RuntimeConfigRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if got := rc.GetLinux().GetCgroupDriver(); got != want {
			t.Errorf("cgroup_manager %q: driver %v, want %v", manager, got, want)
		}
	}
}

func TestOtherRPCsUnimplemented(t *testing.T) {
	cc := dialCRI(t, Options{})
	ctx := context.Background()
	_, err := runtimeapi.NewRuntimeServiceClient(cc).ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("ListContainers: %v, want Unimplemented", err)
	}
	_, err = runtimeapi.NewImageServiceClient(cc).ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("ListImages: %v, want Unimplemented", err)
	}
}

type stubImageService struct {
	runtimeapi.UnimplementedImageServiceServer
}

func (stubImageService) ListImages(context.Context, *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	return &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{{Id: "sha256:abc"}}}, nil
}

func (stubImageService) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	panic("boom")
}

func TestImageServicePassedIn(t *testing.T) {
	img := runtimeapi.NewImageServiceClient(dialCRI(t, Options{Image: stubImageService{}}))
	resp, err := img.ListImages(context.Background(), &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Images) != 1 || resp.Images[0].Id != "sha256:abc" {
		t.Errorf("ListImages = %v", resp)
	}
	// A panicking handler is an Internal error, not a dead daemon.
	_, err = img.ImageFsInfo(context.Background(), &runtimeapi.ImageFsInfoRequest{})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "boom") {
		t.Errorf("ImageFsInfo: %v, want Internal", err)
	}
	if _, err := img.ListImages(context.Background(), &runtimeapi.ListImagesRequest{}); err != nil {
		t.Errorf("server unusable after panic: %v", err)
	}
}

func TestMaxRecvMsgSize(t *testing.T) {
	rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{MaxRecvMsgSize: 64}))
	_, err := rt.Version(context.Background(), &runtimeapi.VersionRequest{Version: strings.Repeat("x", 200)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("oversized request: %v, want ResourceExhausted", err)
	}
}
