package server

import (
	"context"
	"errors"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/image"
)

// ImageService is what the CRI image handlers need; *image.Service
// implements it.
type ImageService interface {
	Pull(ctx context.Context, name string, auth *image.AuthConfig) (id string, err error)
	List(ctx context.Context, filter string) ([]*image.Image, error)
	Status(ctx context.Context, name string, verbose bool) (*image.Image, error)
	Remove(ctx context.Context, name string) error
	FsInfo(ctx context.Context) (*image.FsInfo, error)
}

var _ ImageService = (*image.Service)(nil)

// imageServer adapts an ImageService to the CRI ImageService.
type imageServer struct {
	runtimeapi.UnimplementedImageServiceServer
	svc ImageService
}

// NewImageServer returns the CRI ImageService backed by svc.
func NewImageServer(svc ImageService) runtimeapi.ImageServiceServer {
	return &imageServer{svc: svc}
}

// errImageNameEmpty answers a request for no image at all.
var errImageNameEmpty = errdefs.Invalid("image.image", "empty; give an image name or ID")

// PullImage pulls and returns the image ID as image_ref.
func (s *imageServer) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	name := req.GetImage().GetImage()
	if name == "" {
		return nil, errdefs.Invalid("image.image", "empty; give an image name such as registry.k8s.io/pause:3.10")
	}
	id, err := s.svc.Pull(ctx, name, authFromCRI(req.GetAuth()))
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: id}, nil
}

// ListImages lists every image, or the one the filter names.
func (s *imageServer) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	imgs, err := s.svc.List(ctx, req.GetFilter().GetImage().GetImage())
	if err != nil {
		return nil, err
	}
	out := make([]*runtimeapi.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, imageToCRI(img))
	}
	return &runtimeapi.ListImagesResponse{Images: out}, nil
}

// ImageStatus answers an empty response for an unknown image, as the CRI
// requires (the kubelet asks before every pull).
func (s *imageServer) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	name := req.GetImage().GetImage()
	if name == "" {
		return nil, errImageNameEmpty
	}
	img, err := s.svc.Status(ctx, name, req.GetVerbose())
	if errors.Is(err, image.ErrNotFound) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ImageStatusResponse{Image: imageToCRI(img), Info: img.Info}, nil
}

// RemoveImage is idempotent: an image that is already gone is a success.
func (s *imageServer) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	name := req.GetImage().GetImage()
	if name == "" {
		return nil, errImageNameEmpty
	}
	err := s.svc.Remove(ctx, name)
	if err != nil && !errors.Is(err, image.ErrNotFound) {
		return nil, err
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the image and container stores' usage.
func (s *imageServer) ImageFsInfo(ctx context.Context, _ *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	info, err := s.svc.FsInfo(ctx)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ImageFsInfoResponse{
		ImageFilesystems:     []*runtimeapi.FilesystemUsage{fsUsageToCRI(info.Images)},
		ContainerFilesystems: []*runtimeapi.FilesystemUsage{fsUsageToCRI(info.Containers)},
	}, nil
}

func authFromCRI(a *runtimeapi.AuthConfig) *image.AuthConfig {
	if a == nil {
		return nil
	}
	return &image.AuthConfig{
		Username:      a.GetUsername(),
		Password:      a.GetPassword(),
		Auth:          a.GetAuth(),
		ServerAddress: a.GetServerAddress(),
		IdentityToken: a.GetIdentityToken(),
		RegistryToken: a.GetRegistryToken(),
	}
}

func imageToCRI(img *image.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id:          img.ID,
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Size:        img.Size,
		Username:    img.Username,
		Spec:        &runtimeapi.ImageSpec{Image: img.ID},
		Pinned:      img.Pinned,
	}
	if img.UID != nil {
		out.Uid = &runtimeapi.Int64Value{Value: *img.UID}
	}
	return out
}

func fsUsageToCRI(u image.FsUsage) *runtimeapi.FilesystemUsage {
	ts := u.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	return &runtimeapi.FilesystemUsage{
		Timestamp:  ts.UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: u.Mountpoint},
		UsedBytes:  &runtimeapi.UInt64Value{Value: u.UsedBytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: u.InodesUsed},
	}
}
