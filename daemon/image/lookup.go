package image

import (
	"fmt"
	"slices"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage"
)

// findImage locates a stored image by full ID ("sha256:" optional), by name
// (tag or digest; short names expand as for a pull) or by a unique ID
// prefix, in that order. It returns an error wrapping ErrNotFound when
// nothing matches.
func (s *Service) findImage(input string) (*storage.Image, error) {
	name := trimInput(input)
	if name == "" {
		return nil, newError(ErrInvalidReference, nil, "no image name given")
	}
	if id, ok := asImageID(name); ok {
		img, err := s.store.Image(id)
		return img, storageLookupErr(err, name)
	}
	candidates, nameErr := localCandidates(s.baseSystemContext(), name)
	for _, named := range candidates {
		img, err := s.imageByName(named)
		if err == nil {
			return img, nil
		}
		if !imageGone(err) {
			return nil, fmt.Errorf("looking up image %s: %w", named, err)
		}
	}
	if idPrefixPattern.MatchString(name) {
		img, err := s.store.Image(name)
		if err == nil && img.ID != name && !slices.Contains(img.Names, name) {
			// store.Image matched an ID prefix.
			return img, nil
		}
		if err != nil && !imageGone(err) {
			return nil, fmt.Errorf("looking up image %s: %w", name, err)
		}
	}
	if nameErr != nil {
		return nil, nameErr
	}
	return nil, newError(ErrNotFound, nil, fmt.Sprintf("image %q is not present on this node", input))
}

// imageByName finds the image stored under named. A digest reference also
// matches an image pulled by tag whose manifest (or manifest list) has that
// digest, as long as it came from the same repository.
func (s *Service) imageByName(named reference.Named) (*storage.Image, error) {
	img, err := s.store.Image(named.String())
	if err == nil || !imageGone(err) {
		return img, err
	}
	digested, ok := named.(reference.Digested)
	if !ok {
		return nil, err
	}
	imgs, derr := s.store.ImagesByDigest(digested.Digest())
	if derr != nil {
		return nil, derr
	}
	for _, cand := range imgs {
		for _, n := range cand.Names {
			if repoOf(n) == named.Name() {
				return cand, nil
			}
		}
	}
	return nil, storage.ErrImageUnknown
}

func storageLookupErr(err error, input string) error {
	switch {
	case err == nil:
		return nil
	case imageGone(err):
		return newError(ErrNotFound, nil, fmt.Sprintf("image %q is not present on this node", input))
	default:
		return fmt.Errorf("looking up image %s: %w", input, err)
	}
}
