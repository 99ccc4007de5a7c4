package image

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
)

// details is the immutable part of an image's status: an ID always names
// the same content, so it is read once and cached (ListImages runs every
// few seconds from the kubelet).
type details struct {
	config         *imgspecv1.Image
	size           int64
	manifestDigest string
	layers         []types.BlobInfo
}

type detailsCache struct {
	mu sync.Mutex
	m  map[string]*details
}

func (c *detailsCache) get(id string) *details {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *detailsCache) put(id string, d *details) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*details{}
	}
	c.m[id] = d
}

func (c *detailsCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

// imageDetails reads the config, layers and size of a stored image.
func (s *Service) imageDetails(ctx context.Context, id string) (*details, error) {
	if d := s.details.get(id); d != nil {
		return d, nil
	}
	ref, err := istorage.Transport.NewStoreReference(s.store, nil, id)
	if err != nil {
		return nil, fmt.Errorf("referencing image %s: %w", id, err)
	}
	img, err := ref.NewImage(ctx, s.baseSystemContext())
	if err != nil {
		return nil, fmt.Errorf("opening image %s: %w", id, err)
	}
	defer img.Close()
	cfg, err := img.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading config of image %s: %w", id, err)
	}
	size, err := s.store.ImageSize(id)
	if err != nil {
		return nil, fmt.Errorf("computing size of image %s: %w", id, err)
	}
	d := &details{config: cfg, size: size, layers: img.LayerInfos()}
	if simg, err := s.store.Image(id); err == nil {
		d.manifestDigest = simg.Digest.String()
	}
	s.details.put(id, d)
	return d, nil
}

// Config returns the OCI config of a stored image (entrypoint, env, user,
// volumes...), for the container service. The result is the caller's own
// copy.
func (s *Service) Config(ctx context.Context, id string) (*imgspecv1.Image, error) {
	d, err := s.imageDetails(ctx, id)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(d.config)
	if err != nil {
		return nil, fmt.Errorf("copying config of image %s: %w", id, err)
	}
	var cfg imgspecv1.Image
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("copying config of image %s: %w", id, err)
	}
	return &cfg, nil
}
