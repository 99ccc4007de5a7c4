package image

import (
	"context"
	"encoding/json"
	"fmt"

	"go.podman.io/storage"
)

// Status describes the stored image that name (ID, ID prefix, tag, digest
// or short name) refers to, or returns an error wrapping ErrNotFound.
// verbose adds Info["info"], a JSON document with config and layers.
func (s *Service) Status(ctx context.Context, name string, verbose bool) (*Image, error) {
	img, err := s.findImage(name)
	if err != nil {
		return nil, err
	}
	return s.describe(ctx, img, verbose)
}

// List returns every stored image, or with a filter the one image it names
// (CRI-O's reading of ImageFilter; none when it names nothing).
func (s *Service) List(ctx context.Context, filter string) ([]*Image, error) {
	if filter != "" {
		img, err := s.Status(ctx, filter, false)
		if isNotFoundErr(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []*Image{img}, nil
	}
	imgs, err := s.store.Images()
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	out := make([]*Image, 0, len(imgs))
	for i := range imgs {
		im, err := s.describe(ctx, &imgs[i], false)
		if err != nil {
			// One unreadable image must not hide the others from the
			// kubelet; it shows up in the log and in a status call.
			s.opts.Logger.Warn("skipping unreadable image in list", "id", imgs[i].ID, "error", err)
			continue
		}
		out = append(out, im)
	}
	return out, nil
}

// describe builds the CRI view of a stored image.
func (s *Service) describe(ctx context.Context, img *storage.Image, verbose bool) (*Image, error) {
	d, err := s.imageDetails(ctx, img.ID)
	if err != nil {
		return nil, err
	}
	tags, digests := namesOf(img)
	out := &Image{
		ID:          img.ID,
		RepoTags:    tags,
		RepoDigests: digests,
		Size:        uint64(max(d.size, 0)),
		Pinned:      s.pins.pinned(img.Names),
	}
	out.UID, out.Username = parseUser(d.config.Config.User)
	if verbose {
		info, err := verboseInfo(img, d, out)
		if err != nil {
			return nil, err
		}
		out.Info = map[string]string{"info": info}
	}
	return out, nil
}

// verboseInfo is the "info" JSON of a verbose ImageStatus.
func verboseInfo(img *storage.Image, d *details, im *Image) (string, error) {
	type layer struct {
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
		MediaType string `json:"mediaType,omitempty"`
	}
	layers := make([]layer, 0, len(d.layers))
	for _, l := range d.layers {
		layers = append(layers, layer{Digest: l.Digest.String(), Size: l.Size, MediaType: l.MediaType})
	}
	doc := struct {
		ID             string   `json:"id"`
		Names          []string `json:"names"`
		ManifestDigest string   `json:"manifestDigest,omitempty"`
		Size           uint64   `json:"size"`
		Pinned         bool     `json:"pinned"`
		Config         any      `json:"imageSpec"`
		Layers         []layer  `json:"layers"`
		Labels         any      `json:"labels,omitempty"`
	}{
		ID:             img.ID,
		Names:          img.Names,
		ManifestDigest: d.manifestDigest,
		Size:           im.Size,
		Pinned:         im.Pinned,
		Config:         d.config,
		Layers:         layers,
		Labels:         d.config.Config.Labels,
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("encoding verbose status of %s: %w", img.ID, err)
	}
	return string(b), nil
}
