package image

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.podman.io/storage"
)

// Remove deletes the image name refers to, whichever of its names (or its
// ID) is used: critest's "removing image by one tag should remove all
// tags" makes this the CRI behaviour. An unknown image is ErrNotFound; an
// image that backs a container is ErrInUse.
func (s *Service) Remove(ctx context.Context, name string) error {
	img, err := s.findImage(name)
	if err != nil {
		return err
	}
	return s.deleteImage(img)
}

// Untag removes one name from an image and deletes the image only when it
// was its last name. It serves tools that manage tags (the CRI always
// removes whole images). name must be a tag or digest reference, not an ID.
func (s *Service) Untag(ctx context.Context, name string) error {
	name = trimInput(name)
	if _, ok := asImageID(name); ok {
		return newError(ErrInvalidReference, nil, fmt.Sprintf("%q is an image ID; untag needs a name", name))
	}
	candidates, err := localCandidates(s.baseSystemContext(), name)
	if err != nil {
		return err
	}
	for _, named := range candidates {
		img, err := s.imageByName(named)
		if errors.Is(err, storage.ErrImageUnknown) {
			continue
		}
		if err != nil {
			return fmt.Errorf("looking up image %s: %w", named, err)
		}
		stored := named.String()
		if len(img.Names) <= 1 {
			return s.deleteImage(img)
		}
		if !slices.Contains(img.Names, stored) {
			// Matched by manifest digest, not by a stored name: nothing to
			// untag short of deleting the image, which Untag must not do.
			return newError(ErrNotFound, nil, fmt.Sprintf("image %s has no name %q; its names are %s",
				img.ID, stored, strings.Join(img.Names, ", ")))
		}
		if err := s.store.RemoveNames(img.ID, []string{stored}); err != nil {
			return fmt.Errorf("removing name %s from image %s: %w", stored, img.ID, err)
		}
		return nil
	}
	return newError(ErrNotFound, nil, fmt.Sprintf("image %q is not present on this node", name))
}

func (s *Service) deleteImage(img *storage.Image) error {
	_, err := s.store.DeleteImage(img.ID, true)
	switch {
	case err == nil:
		s.details.drop(img.ID)
		return nil
	case errors.Is(err, storage.ErrImageUsedByContainer):
		return newError(ErrInUse, nil, fmt.Sprintf(
			"image %s is used by container(s) %s; remove those containers first",
			img.ID, strings.Join(s.containersUsing(img.ID), ", ")))
	case imageGone(err):
		return newError(ErrNotFound, nil, fmt.Sprintf("image %s is not present on this node", img.ID))
	default:
		return fmt.Errorf("deleting image %s: %w", img.ID, err)
	}
}

// containersUsing lists the containers built on image id, for the in-use
// message.
func (s *Service) containersUsing(id string) []string {
	ctrs, err := s.store.Containers()
	if err != nil {
		return []string{"(unknown)"}
	}
	var out []string
	for _, c := range ctrs {
		if c.ImageID == id {
			label := c.ID
			if len(c.Names) > 0 {
				label = c.Names[0] + " (" + c.ID[:min(12, len(c.ID))] + ")"
			}
			out = append(out, label)
		}
	}
	return out
}

// imageGone says whether err means the image no longer exists. A delete
// that races another delete of the same image sees ErrNotAnImage (the ID
// resolves to nothing that is an image any more) rather than
// ErrImageUnknown; both mean "not here", which CRI callers treat as done.
func imageGone(err error) bool {
	return errors.Is(err, storage.ErrImageUnknown) || errors.Is(err, storage.ErrNotAnImage)
}
