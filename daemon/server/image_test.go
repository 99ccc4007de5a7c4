package server

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/image"
)

// fakeImages is an in-memory ImageService.
type fakeImages struct {
	images   map[string]*image.Image
	pullErr  error
	gotAuth  *image.AuthConfig
	removed  []string
	removeEr error
}

func (f *fakeImages) Pull(_ context.Context, name string, auth *image.AuthConfig) (string, error) {
	f.gotAuth = auth
	if f.pullErr != nil {
		return "", f.pullErr
	}
	return "id-" + name, nil
}

func (f *fakeImages) List(_ context.Context, filter string) ([]*image.Image, error) {
	var out []*image.Image
	for n, img := range f.images {
		if filter == "" || filter == n {
			out = append(out, img)
		}
	}
	return out, nil
}

func (f *fakeImages) Status(_ context.Context, name string, verbose bool) (*image.Image, error) {
	img, ok := f.images[name]
	if !ok {
		return nil, &image.Error{Kind: image.ErrNotFound, Msg: "no " + name}
	}
	if verbose {
		c := *img
		c.Info = map[string]string{"info": "{}"}
		return &c, nil
	}
	return img, nil
}

func (f *fakeImages) Remove(_ context.Context, name string) error {
	if f.removeEr != nil {
		return f.removeEr
	}
	if _, ok := f.images[name]; !ok {
		return fmt.Errorf("wrapped: %w", &image.Error{Kind: image.ErrNotFound, Msg: "no " + name})
	}
	f.removed = append(f.removed, name)
	return nil
}

func (f *fakeImages) FsInfo(context.Context) (*image.FsInfo, error) {
	now := time.Unix(100, 0)
	return &image.FsInfo{
		Images:     image.FsUsage{Mountpoint: "/var/lib/containers/storage", UsedBytes: 10, InodesUsed: 2, Timestamp: now},
		Containers: image.FsUsage{Mountpoint: "/var/lib/containers/storage", UsedBytes: 5, InodesUsed: 1, Timestamp: now},
	}, nil
}

func spec(name string) *runtimeapi.ImageSpec { return &runtimeapi.ImageSpec{Image: name} }

func TestImageServerStatusAndList(t *testing.T) {
	uid := int64(1002)
	f := &fakeImages{images: map[string]*image.Image{
		"busybox": {ID: "abc", RepoTags: []string{"docker.io/library/busybox:latest"}, Size: 42, UID: &uid, Pinned: true},
	}}
	s := NewImageServer(f)
	ctx := context.Background()

	resp, err := s.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec("busybox"), Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	img := resp.GetImage()
	if img.GetId() != "abc" || img.GetSize() != 42 || img.GetUid().GetValue() != 1002 || !img.GetPinned() ||
		img.GetSpec().GetImage() != "abc" || resp.GetInfo()["info"] != "{}" {
		t.Fatalf("status = %v", resp)
	}
	resp, err = s.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec("nope")})
	if err != nil || resp.GetImage() != nil {
		t.Fatalf("unknown image: %v, %v; want empty response", resp, err)
	}
	if _, err := s.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{}); grpcCode(err) != codes.InvalidArgument {
		t.Fatalf("empty spec: %v", err)
	}

	list, err := s.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.GetImages()) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
	list, err = s.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: spec("other")}})
	if err != nil || len(list.GetImages()) != 0 {
		t.Fatalf("filtered list = %v, %v", list, err)
	}
}

func TestImageServerPull(t *testing.T) {
	f := &fakeImages{}
	s := NewImageServer(f)
	ctx := context.Background()
	resp, err := s.PullImage(ctx, &runtimeapi.PullImageRequest{
		Image: spec("quay.io/a/b:1"),
		Auth:  &runtimeapi.AuthConfig{Username: "u", Password: "p", RegistryToken: "t"},
	})
	if err != nil || resp.GetImageRef() != "id-quay.io/a/b:1" {
		t.Fatalf("pull = %v, %v", resp, err)
	}
	if f.gotAuth == nil || f.gotAuth.Username != "u" || f.gotAuth.Password != "p" || f.gotAuth.RegistryToken != "t" {
		t.Fatalf("auth not passed: %+v", f.gotAuth)
	}
	if _, err := s.PullImage(ctx, &runtimeapi.PullImageRequest{}); grpcCode(err) != codes.InvalidArgument {
		t.Fatalf("empty pull: %v", err)
	}
	if _, err := s.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec("x")}); err != nil || f.gotAuth != nil {
		t.Fatalf("no auth must reach the service as nil: %+v %v", f.gotAuth, err)
	}
}

func TestImageServerErrorCodes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{&image.Error{Kind: image.ErrNotFound, Msg: "m"}, codes.NotFound},
		{&image.Error{Kind: image.ErrUnauthenticated, Msg: "m"}, codes.Unauthenticated},
		{&image.Error{Kind: image.ErrInvalidReference, Msg: "m"}, codes.InvalidArgument},
		{&image.Error{Kind: image.ErrDenied, Msg: "m"}, codes.PermissionDenied},
		// A registry's trouble is never Unavailable (that reads as "crio is down").
		{&image.Error{Kind: image.ErrUnreachable, Msg: "m"}, codes.FailedPrecondition},
		{&image.Error{Kind: image.ErrRegistryTLS, Msg: "m"}, codes.FailedPrecondition},
		{&image.Error{Kind: image.ErrRegistryFailed, Msg: "m"}, codes.Unknown},
		{&image.Error{Kind: image.ErrPullStalled, Msg: "m"}, codes.DeadlineExceeded},
		{fmt.Errorf("pulling: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("pulling: %w", context.Canceled), codes.Canceled},
		{errors.New("disk on fire"), codes.Unknown},
	} {
		s := NewImageServer(&fakeImages{pullErr: tc.err})
		_, err := s.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec("x")})
		if grpcCode(err) != tc.code {
			t.Errorf("Pull error %v -> %v, want %v", tc.err, grpcCode(err), tc.code)
		}
	}
}

func TestImageServerRemove(t *testing.T) {
	ctx := context.Background()
	f := &fakeImages{images: map[string]*image.Image{"a": {ID: "a"}}}
	s := NewImageServer(f)
	if _, err := s.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: spec("a")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: spec("gone")}); err != nil {
		t.Fatalf("removing an unknown image must succeed: %v", err)
	}
	f.removeEr = &image.Error{Kind: image.ErrInUse, Msg: "used by c1"}
	if _, err := s.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: spec("a")}); grpcCode(err) != codes.FailedPrecondition {
		t.Fatalf("in use: %v", err)
	}
}

func TestImageServerFsInfo(t *testing.T) {
	s := NewImageServer(&fakeImages{})
	resp, err := s.ImageFsInfo(context.Background(), &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetImageFilesystems()) != 1 || resp.GetImageFilesystems()[0].GetUsedBytes().GetValue() != 10 ||
		resp.GetImageFilesystems()[0].GetInodesUsed().GetValue() != 2 ||
		resp.GetImageFilesystems()[0].GetFsId().GetMountpoint() != "/var/lib/containers/storage" ||
		resp.GetContainerFilesystems()[0].GetUsedBytes().GetValue() != 5 ||
		resp.GetImageFilesystems()[0].GetTimestamp() != time.Unix(100, 0).UnixNano() {
		t.Fatalf("fsinfo = %v", resp)
	}
}
