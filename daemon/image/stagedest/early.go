package stagedest

import (
	"context"
	"sync"
	"sync/atomic"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

// Early stacking. The layers of a pull finish unpacking at different
// times (registries answer the blob requests tens of milliseconds apart),
// and each stacking is a few fsync'd writes of the layer store's
// metadata. When the layer order is known while the blobs arrive, every
// layer is stacked as soon as it and all the layers below it are
// unpacked, and only what is left is stacked at PutManifest.
//
// A public ImageDestination does not learn the order before PutManifest;
// SourcePeek reads it from the manifest copy.Image fetched. The diff IDs
// are still checked against the config at PutManifest, before the image
// is committed: a pull that fails after some layers were stacked removes
// the layers it made (Close).

// SourcePeek wraps the source reference of a pull so that the destination
// can read the manifest being copied from the very source object
// copy.Image uses, which keeps the manifest it fetched: no second request.
// copy.Image gets that source itself, not a wrapper, so it keeps every
// capability of it (sigstore signatures among them).
type SourcePeek struct {
	types.ImageReference

	mu  sync.Mutex
	src types.ImageSource
}

// NewSourcePeek wraps ref, the source reference handed to copy.Image.
func NewSourcePeek(ref types.ImageReference) *SourcePeek {
	return &SourcePeek{ImageReference: ref}
}

func (p *SourcePeek) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	src, err := p.ImageReference.NewImageSource(ctx, sys)
	if err == nil {
		p.mu.Lock()
		p.src = src
		p.mu.Unlock()
	}
	return src, err
}

// layerOrder returns the layer blobs of the image being copied, bottom
// first, when the source's manifest is one OCI or Docker schema 2 image
// with no blob twice; nil otherwise. A manifest list gives nil: the
// instance's manifest would take another request, and registries count
// manifest requests against pull limits.
func (p *SourcePeek) layerOrder(ctx context.Context) []digest.Digest {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	src := p.src
	p.mu.Unlock()
	if src == nil {
		return nil
	}
	blob, mt, err := src.GetManifest(ctx, nil) // kept by the source: no request
	if err != nil {
		return nil
	}
	switch mt {
	case imgspecv1.MediaTypeImageManifest, manifest.DockerV2Schema2MediaType:
	default:
		return nil
	}
	m, err := manifest.FromBlob(blob, mt)
	if err != nil {
		return nil
	}
	seen := map[digest.Digest]bool{}
	var order []digest.Digest
	for _, l := range m.LayerInfos() {
		if l.EmptyLayer || seen[l.Digest] {
			return nil
		}
		seen[l.Digest] = true
		order = append(order, l.Digest)
	}
	return order
}

// earlyStack is a destination's early stacking state.
type earlyStack struct {
	orderOnce sync.Once
	order     []digest.Digest // nil: not known, nothing is stacked early

	// pending asks whoever holds mu to look again: PutBlob never waits
	// for another layer's stacking.
	pending atomic.Bool
	mu      sync.Mutex // held while stacking, early or at PutManifest
	next    int        // index in order of the lowest layer not stacked
	parent  string     // ID of the layer below next
	err     error      // of an early stacking; PutManifest reports it
}

// learnOrder reads the layer order once, at the first layer.
func (d *destination) learnOrder(ctx context.Context) {
	d.early.orderOnce.Do(func() {
		order := d.peek.layerOrder(ctx)
		d.early.mu.Lock()
		d.early.order = order
		d.early.mu.Unlock()
	})
}

// stackReady stacks, bottom up, every layer whose unpacking (or reuse by
// the inner destination) is done and whose lower layers are stacked. If
// another call is stacking, that one does it.
func (d *destination) stackReady() {
	d.early.pending.Store(true)
	for d.early.pending.Load() {
		if !d.early.mu.TryLock() {
			return // the holder sees pending once it unlocks
		}
		d.early.pending.Store(false)
		d.stackBottomUp()
		d.early.mu.Unlock()
	}
}

// stackBottomUp is stackReady's work; d.early.mu is held.
func (d *destination) stackBottomUp() {
	e := &d.early
	if e.order == nil || e.err != nil || d.passThrough.Load() {
		return
	}
	for e.next < len(e.order) {
		blob := e.order[e.next]
		p := plannedLayer{index: e.next, blob: blob}
		if s := d.take(blob); s != nil {
			p.staged, p.diffID = s, s.out.UncompressedDigest
		} else if d.isReused(blob) {
			if p.diffID = d.storedDiffID(blob); p.diffID == "" {
				return // PutManifest finds it through the config
			}
		} else {
			return // not there yet
		}
		id, err := d.stackLayer(&p, e.parent)
		if err != nil {
			e.err = err
			return
		}
		e.parent = id
		e.next++
	}
}

func (d *destination) isReused(blob digest.Digest) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reused[blob]
}

// TryReusingBlob notes the layer blobs the inner destination finds in the
// store, so that the layers above them can be stacked early.
func (d *destination) TryReusingBlob(ctx context.Context, info types.BlobInfo, cache types.BlobInfoCache, canSubstitute bool) (bool, types.BlobInfo, error) {
	ok, res, err := d.ImageDestination.TryReusingBlob(ctx, info, cache, canSubstitute)
	if ok && err == nil && info.Digest != "" {
		d.learnOrder(ctx)
		d.mu.Lock()
		if d.reused == nil {
			d.reused = make(map[digest.Digest]bool)
		}
		d.reused[info.Digest] = true
		d.mu.Unlock()
		d.stackReady()
	}
	return ok, res, err
}
