package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/image"
	"github.com/crio-appliance/crio/daemon/spec"
)

// ImageVolume is a CRI mount of an image (a Kubernetes image volume): the
// image gets a storage container of its own whose root is bound read-only
// into the container. A storage container, rather than a read-only mount
// of the image's top layer, because its mount is counted apart from every
// other user of the image and is released (forcibly, idempotently) like
// the rootfs, also after a crash or a reboot; and because storage then
// refuses to remove an image that a volume still shows.
type ImageVolume struct {
	Index     int    `json:"index"` // in config.mounts
	StorageID string `json:"storage_id"`
	ImageID   string `json:"image_id"`
	// Source is the host path bound into the container: the mount point,
	// or the sub path inside it.
	Source string `json:"source,omitempty"`
}

// imageVolumeID derives the storage container's id, so that a retry of the
// same creation finds the same one.
func imageVolumeID(ctrID string, index int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/image-volume/%d", ctrID, index))
	return hex.EncodeToString(sum[:])
}

// checkImageSubPath accepts a relative path inside the image.
func checkImageSubPath(p, field string) (string, error) {
	if p == "" {
		return "", nil
	}
	if len(p) > 4096 || strings.ContainsAny(p, "\x00\n") || strings.HasPrefix(p, "/") {
		return "", errdefs.Invalid(field, "must be a relative path inside the image")
	}
	for c := range strings.SplitSeq(p, "/") {
		if c == ".." {
			return "", errdefs.Invalid(field, "must not contain .. components")
		}
	}
	return path.Clean(p), nil
}

// mountImageVolumes makes the image volumes of cfg and returns their
// sources for the spec, by index in config.mounts. Each one is recorded
// before its storage exists, so release undoes it after any failure.
func (s *Service) mountImageVolumes(ctx context.Context, c *Container, cfg *runtimeapi.ContainerConfig) (map[int]spec.ImageMount, error) {
	out := map[int]spec.ImageMount{}
	for i, m := range cfg.GetMounts() {
		if m.GetImage().GetImage() == "" && m.GetImageSubPath() == "" {
			continue
		}
		field := fmt.Sprintf("config.mounts[%d]", i)
		if m.GetImage().GetImage() == "" {
			return nil, errdefs.Invalid(field+".image_sub_path", "set without an image")
		}
		if !m.GetReadonly() {
			return nil, errdefs.Invalid(field+".readonly", "an image volume is read-only; set readonly")
		}
		if m.GetHostPath() != "" {
			return nil, errdefs.Invalid(field+".host_path", "an image volume has no host path")
		}
		sub, err := checkImageSubPath(m.GetImageSubPath(), field+".image_sub_path")
		if err != nil {
			return nil, err
		}
		img, err := s.opts.Images.Status(ctx, m.GetImage().GetImage(), false)
		if err != nil {
			if errors.Is(err, image.ErrNotFound) {
				return nil, notFound("image %q of %s is not present on this node (pull it first)", errdefs.Clip(m.GetImage().GetImage()), field)
			}
			if errors.Is(err, image.ErrInvalidReference) {
				return nil, errdefs.Invalid(field+".image.image", "%v", err)
			}
			return nil, fmt.Errorf("%s: image %s: %w", field, errdefs.Clip(m.GetImage().GetImage()), err)
		}
		v := ImageVolume{Index: i, StorageID: imageVolumeID(c.ID, i), ImageID: img.ID}
		c.ImageVolumes = append(c.ImageVolumes, v)
		if err := s.store.Save(c); err != nil {
			return nil, err
		}
		if _, err := s.opts.Storage.CreateContainer(v.StorageID, nil, img.ID, "", "", nil); err != nil {
			return nil, fmt.Errorf("%s: image volume storage: %w", field, err)
		}
		root, err := s.opts.Storage.Mount(v.StorageID, "")
		if err != nil {
			return nil, fmt.Errorf("%s: mount image volume: %w", field, err)
		}
		src := root
		if sub != "" {
			// Resolved inside the image: a symlink there cannot lead out.
			if src, err = securejoin.SecureJoin(root, sub); err != nil {
				return nil, fmt.Errorf("%s.image_sub_path: %w", field, err)
			}
			if _, err := os.Stat(src); err != nil {
				return nil, errdefs.Invalid(field+".image_sub_path", "%q does not exist in image %s", errdefs.Clip(sub), img.ID)
			}
		}
		c.ImageVolumes[len(c.ImageVolumes)-1].Source = src
		out[i] = spec.ImageMount{Source: src, ImageRef: img.ID}
	}
	return out, nil
}

// releaseImageVolumes removes the image volumes' storage; each one leaves
// the record once gone, so a retry does only what is left.
func (s *Service) releaseImageVolumes(c *Container) error {
	var errs []error
	var left []ImageVolume
	for _, v := range c.ImageVolumes {
		var err error
		if _, uerr := s.opts.Storage.Unmount(v.StorageID, true); uerr != nil && !storageGone(uerr) {
			err = fmt.Errorf("unmount image volume: %w", uerr)
		} else if derr := s.opts.Storage.DeleteContainer(v.StorageID); derr != nil && !storageGone(derr) {
			err = fmt.Errorf("delete image volume storage: %w", derr)
		}
		if err != nil {
			errs = append(errs, err)
			left = append(left, v)
		}
	}
	c.ImageVolumes = left
	return errors.Join(errs...)
}
