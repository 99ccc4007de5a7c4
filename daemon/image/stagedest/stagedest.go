// Package stagedest is a containers-storage image destination that unpacks
// all the layers of a pull at once.
//
// containers/image's own storage destination keeps each layer blob in a
// file and applies it on top of its parent, one layer after another: a
// pull of an image with six layers spends most of its time waiting for
// the previous layer's unpacking. This destination instead unpacks every
// layer as it arrives, in parallel, each into a staging directory of the
// storage driver (Store.PrepareStagedLayer), and stacks each staged
// directory on its parent (Store.ApplyStagedLayer, a rename): as soon as
// the layers below it are stacked if the layer order is known early
// (early.go), else when the manifest arrives. The layers it makes are
// those containers/image would have made: the same layer (chain) IDs,
// diff IDs, compressed digests and tar-split; so containers/image's
// destination, which it wraps, then finds every layer present and writes
// the image record (config, manifest, names, digests) itself, exactly as
// it always does.
//
// Verification is unchanged: the blob digest is checked by copy.Image's
// stream, the diff ID of every layer is computed here and checked against
// the config before the image is committed (a failed pull removes the
// layers it stacked), and containers/image's commit checks it again.
package stagedest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
	"go.podman.io/storage/pkg/archive"
)

// errUnsupportedDriver is wrapped in the errors of a driver that cannot
// stage layers this way.
var errUnsupportedDriver = errors.New("storage driver cannot stage whole layers")

// Supported reports whether pulls into store should go through this
// destination: its driver is overlay, and storage.conf does not enable
// partial (zstd:chunked) pulls, which only containers/image's own
// destination can make. Callers use that one otherwise. (Overlay with
// composefs cannot stage whole layers either; the destination finds out
// at the first layer and passes every layer on.)
func Supported(store storage.Store) bool {
	driver, err := store.GraphDriver()
	if err != nil || driver.String() != "overlay" {
		return false
	}
	// containers/storage reads the option the same way.
	return strings.ToLower(store.PullOptions()["enable_partial_images"]) != "true"
}

// NewReference wraps ref, a containers-storage reference into store, so
// that copy.Image writes to it through this package's destination.
// tmpDir holds a layer's tar while it is copied from another layer (see
// copyLayer); "" means the system's temporary directory. peek, if not
// nil, is the source reference handed to the same copy.Image: it tells
// the layer order early (see SourcePeek).
func NewReference(ref types.ImageReference, store storage.Store, tmpDir string, peek *SourcePeek) types.ImageReference {
	return &reference{ImageReference: ref, store: store, tmpDir: tmpDir, peek: peek}
}

type reference struct {
	types.ImageReference
	store  storage.Store
	tmpDir string
	peek   *SourcePeek
}

func (r *reference) NewImageDestination(ctx context.Context, sys *types.SystemContext) (types.ImageDestination, error) {
	inner, err := r.ImageReference.NewImageDestination(ctx, sys)
	if err != nil {
		return nil, err
	}
	return &destination{
		ImageDestination: inner,
		store:            r.store,
		tmpDir:           r.tmpDir,
		peek:             r.peek,
		staged:           make(map[digest.Digest][]*stagedLayer),
	}, nil
}

// maxConfigSize bounds the copy of the image config kept to check diff
// IDs; containers/image refuses larger configs itself.
const maxConfigSize = 4 << 20

// destination sends configs, manifests, signatures and the commit to
// containers/image's storage destination, and takes layer blobs itself.
//
// It implements only the public ImageDestination interface, so copy.Image
// does not offer it partial (zstd:chunked) pulls or sigstore signatures.
type destination struct {
	types.ImageDestination
	store  storage.Store
	tmpDir string
	peek   *SourcePeek

	// passThrough is set when the driver turned out unable to stage:
	// every layer then goes to the inner destination.
	passThrough atomic.Bool

	mu     sync.Mutex
	staged map[digest.Digest][]*stagedLayer // unpacked blobs not yet stacked, by blob digest
	config []byte                           // nil if larger than maxConfigSize
	known  map[digest.Digest]knownBlob      // stacked blobs, told to the inner destination at PutManifest
	empty  map[digest.Digest][]byte         // blobs of empty layers, given to the inner destination at PutManifest
	reused map[digest.Digest]bool           // layer blobs the inner destination found in the store

	early earlyStack

	// What Close undoes: the layers this pull made, unless they are the
	// committed image's; and the holds it put on layers it relies on.
	made      []string
	held      []string
	chain     map[string]bool // the IDs of the manifest's layers, once stacked
	committed atomic.Bool
}

// stagedLayer is one unpacked layer blob waiting in a staging directory.
type stagedLayer struct {
	out   *graphdriver.DriverWithDifferOutput
	size  int64  // of the blob
	small []byte // the blob itself if at most maxEmptyLayerSize bytes, else nil
}

// maxEmptyLayerSize bounds the blobs kept whole while they are unpacked,
// in case the manifest turns out to list them as empty layers, which are
// handed to the inner destination rather than stacked. Docker's empty
// layers (a gzipped empty tar) are 32 bytes.
const maxEmptyLayerSize = 4 << 10

type knownBlob struct {
	diffID digest.Digest
	size   int64
}

// PutBlob unpacks a layer blob into a staging directory, or passes a
// config (and a blob of unknown digest, which copy.Image never sends) to
// the inner destination.
func (d *destination) PutBlob(ctx context.Context, stream io.Reader, info types.BlobInfo, cache types.BlobInfoCache, isConfig bool) (types.BlobInfo, error) {
	if isConfig {
		keep := &limitedBuffer{max: maxConfigSize}
		res, err := d.ImageDestination.PutBlob(ctx, io.TeeReader(stream, keep), info, cache, true)
		if err == nil {
			d.mu.Lock()
			d.config = keep.bytes()
			d.mu.Unlock()
		}
		return res, err
	}
	if info.Digest == "" || d.passThrough.Load() {
		return d.ImageDestination.PutBlob(ctx, stream, info, cache, false)
	}
	d.learnOrder(ctx)
	small := &limitedBuffer{max: maxEmptyLayerSize}
	differ := &layerDiffer{blob: io.TeeReader(stream, small)}
	out, err := d.store.PrepareStagedLayer(nil, differ)
	if errors.Is(err, errUnsupportedDriver) || errors.Is(err, storage.ErrNotSupported) {
		// Refused before the differ read anything.
		d.cleanupFailed(out)
		d.passThrough.Store(true)
		return d.ImageDestination.PutBlob(ctx, stream, info, cache, false)
	}
	if err != nil {
		d.cleanupFailed(out)
		return types.BlobInfo{}, fmt.Errorf("unpacking layer %s: %w", info.Digest, err)
	}
	if ctx.Err() != nil {
		_ = d.store.CleanupStagedLayer(out)
		return types.BlobInfo{}, ctx.Err()
	}
	// Recorded in the layer, so that later pulls find it by this digest.
	out.CompressedDigest = info.Digest
	d.mu.Lock()
	d.staged[info.Digest] = append(d.staged[info.Digest], &stagedLayer{out: out, size: differ.compressedSize, small: small.bytes()})
	d.mu.Unlock()
	d.stackReady()
	return types.BlobInfo{Digest: info.Digest, Size: differ.compressedSize}, nil
}

// cleanupFailed removes the staging directory of a failed
// PrepareStagedLayer, if it made one.
func (d *destination) cleanupFailed(out *graphdriver.DriverWithDifferOutput) {
	if out != nil && out.Target != "" {
		_ = d.store.CleanupStagedLayer(out)
	}
}

// PutManifest stacks the staged layers in the manifest's order, then lets
// the inner destination know them as layers already in the store.
func (d *destination) PutManifest(ctx context.Context, manifestBlob []byte, instanceDigest *digest.Digest) error {
	mt := manifest.GuessMIMEType(manifestBlob)
	if !manifest.MIMETypeIsMultiImage(mt) && !d.passThrough.Load() {
		if err := d.stackLayers(manifestBlob, mt); err != nil {
			return err
		}
		if err := d.tellInner(ctx); err != nil {
			return err
		}
	}
	return d.ImageDestination.PutManifest(ctx, manifestBlob, instanceDigest)
}

// Commit has the inner destination write the image record.
func (d *destination) Commit(ctx context.Context, unparsed types.UnparsedImage) error {
	err := d.ImageDestination.Commit(ctx, unparsed)
	if err == nil {
		d.committed.Store(true)
	}
	return err
}

// Close removes what was unpacked and not stacked, and the layers this
// pull stacked if it did not commit the image that uses them.
func (d *destination) Close() error {
	d.mu.Lock()
	var errs []error
	for _, list := range d.staged {
		for _, s := range list {
			if err := d.store.CleanupStagedLayer(s.out); err != nil {
				errs = append(errs, err)
			}
		}
	}
	d.staged = nil
	d.mu.Unlock()
	d.removeUnused()
	errs = append(errs, d.ImageDestination.Close())
	return errors.Join(errs...)
}

// stackLayers makes every layer of the manifest present in the store under
// the ID containers/image gives it, on its parent.
func (d *destination) stackLayers(manifestBlob []byte, mt string) error {
	d.early.mu.Lock() // waits for an early stacking in progress
	defer d.early.mu.Unlock()
	if d.early.err != nil {
		return fmt.Errorf("layer %d (%s): %w", d.early.next, d.early.order[d.early.next], d.early.err)
	}
	m, err := manifest.FromBlob(manifestBlob, mt)
	if err != nil {
		return fmt.Errorf("parsing manifest: %w", err)
	}
	layers := m.LayerInfos()
	d.mu.Lock()
	configBlob := d.config
	d.mu.Unlock()
	configDiffIDs, err := diffIDsFromConfig(mt, configBlob, len(layers))
	if err != nil {
		return err
	}
	if configDiffIDs != nil {
		// copy.Image hands the config to a destination of its own
		// package only. Without it, containers/image's commit reads
		// the diff IDs back through the reference, which fails for a
		// pull by the digest of a manifest list.
		if n, ok := d.ImageDestination.(originalConfigNoter); ok {
			if err := n.NoteOriginalOCIConfig(&imgspecv1.Image{RootFS: imgspecv1.RootFS{Type: "layers", DiffIDs: configDiffIDs}}, nil); err != nil {
				return err
			}
		}
	}
	// First every layer's diff ID, checked against the config, so that
	// an image whose config lies gets no layer stacked after the check
	// (and Close removes those stacked early). A layer stacked early is
	// found in the store by its blob digest.
	var plan []plannedLayer
	defer func() {
		for _, p := range plan {
			if p.staged != nil {
				d.give(p.blob, p.staged) // not stacked: Close removes it
			}
		}
	}()
	for i, l := range layers {
		if l.EmptyLayer {
			continue
		}
		p := plannedLayer{index: i, blob: l.Digest, staged: d.take(l.Digest)}
		switch {
		case p.staged != nil:
			p.diffID = p.staged.out.UncompressedDigest
		default:
			// Reused by the inner destination: the store knows it, by
			// this digest or (if it was substituted) by its diff ID.
			p.diffID = d.storedDiffID(l.Digest)
			if p.diffID == "" && configDiffIDs != nil {
				p.diffID = configDiffIDs[i]
			}
		}
		plan = append(plan, p)
		if p.diffID == "" {
			return fmt.Errorf("layer %d (%s): neither unpacked by this pull nor in the store", i, l.Digest)
		}
		if configDiffIDs != nil && configDiffIDs[i] != p.diffID {
			return fmt.Errorf("layer %d (%s): its contents have diff ID %s, but the image config says %s", i, l.Digest, p.diffID, configDiffIDs[i])
		}
	}
	// After the plan, so that a blob that is also a real layer of the
	// image goes to the stack first.
	if err := d.keepEmptyLayerBlobs(layers); err != nil {
		return err
	}
	parent := ""
	chain := make(map[string]bool, len(plan))
	for n := range plan {
		p := &plan[n]
		id, err := d.stackLayer(p, parent)
		if err != nil {
			return fmt.Errorf("layer %d (%s): %w", p.index, p.blob, err)
		}
		chain[id] = true
		parent = id
	}
	d.mu.Lock()
	d.chain = chain
	d.mu.Unlock()
	return nil
}

// keepEmptyLayerBlobs removes the unpackings of the manifest's empty
// layers (schema 1 throwaway entries), which name a blob but make no
// layer, and keeps their blobs for tellInner: containers/image's commit
// only wants to have seen them.
func (d *destination) keepEmptyLayerBlobs(layers []manifest.LayerInfo) error {
	for i, l := range layers {
		if !l.EmptyLayer {
			continue
		}
		s := d.take(l.Digest)
		if s == nil {
			continue // reused, or stacked for another entry: told either way
		}
		_ = d.store.CleanupStagedLayer(s.out)
		if s.small == nil {
			return fmt.Errorf("layer %d (%s): an empty (throwaway) layer of %d bytes; only blobs of up to %d bytes are kept for those", i, l.Digest, s.size, maxEmptyLayerSize)
		}
		d.mu.Lock()
		if d.empty == nil {
			d.empty = make(map[digest.Digest][]byte)
		}
		d.empty[l.Digest] = s.small
		d.mu.Unlock()
	}
	return nil
}

// plannedLayer is one non-empty layer of the manifest, before stacking.
type plannedLayer struct {
	index  int
	blob   digest.Digest
	diffID digest.Digest
	staged *stagedLayer // nil if reused, or once stacked
}

// stackLayer makes p present on parent and returns its ID. It takes
// p.staged, stacked or removed.
func (d *destination) stackLayer(p *plannedLayer, parent string) (string, error) {
	staged := p.staged
	p.staged = nil
	id := layerID(parent, p.diffID)
	d.hold(id) // before looking: a failing pull does not remove it now
	if staged != nil {
		d.remember(p.blob, knownBlob{diffID: p.diffID, size: staged.size})
	}
	if _, err := d.store.Layer(id); err == nil {
		if staged != nil {
			_ = d.store.CleanupStagedLayer(staged.out)
		}
		return id, nil
	}
	if staged == nil {
		made, err := d.copyLayer(id, parent, p.diffID, p.blob)
		if made {
			d.noteMade(id)
		}
		return id, err
	}
	_, err := d.store.ApplyStagedLayer(storage.ApplyStagedLayerOptions{
		ID:          id,
		ParentLayer: parent,
		DiffOutput:  staged.out,
		DiffOptions: &graphdriver.ApplyDiffWithDifferOpts{},
	})
	// The staging directory goes either way: empty once stacked.
	_ = d.store.CleanupStagedLayer(staged.out)
	switch {
	case err == nil:
		d.noteMade(id)
	case !errors.Is(err, storage.ErrDuplicateID): // duplicate: another pull stacked it meanwhile
		return "", fmt.Errorf("stacking the unpacked layer: %w", err)
	}
	return id, nil
}

// give puts a staged unpacking of blob back, for Close to remove.
func (d *destination) give(blob digest.Digest, s *stagedLayer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.staged != nil {
		d.staged[blob] = append(d.staged[blob], s)
		return
	}
	_ = d.store.CleanupStagedLayer(s.out)
}

// take removes and returns one staged unpacking of blob, or nil.
func (d *destination) take(blob digest.Digest) *stagedLayer {
	d.mu.Lock()
	defer d.mu.Unlock()
	list := d.staged[blob]
	if len(list) == 0 {
		return nil
	}
	s := list[0]
	if len(list) == 1 {
		delete(d.staged, blob)
	} else {
		d.staged[blob] = list[1:]
	}
	return s
}

func (d *destination) remember(blob digest.Digest, k knownBlob) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.known == nil {
		d.known = make(map[digest.Digest]knownBlob)
	}
	d.known[blob] = k
}

// storedDiffID is the diff ID of a layer in the store made from blob, or
// "" if there is none.
func (d *destination) storedDiffID(blob digest.Digest) digest.Digest {
	if layers, err := d.store.LayersByCompressedDigest(blob); err == nil && len(layers) > 0 {
		return layers[0].UncompressedDigest
	}
	if layers, err := d.store.LayersByUncompressedDigest(blob); err == nil && len(layers) > 0 {
		return blob
	}
	return ""
}

// copyLayer makes layer id on parent from another layer with the same
// diff ID: a layer this image has at another place in its stack than an
// image pulled before, or twice. containers/image does the same, and so
// the copy keeps the blob digest when its source has it. made says
// whether this call made the layer.
func (d *destination) copyLayer(id, parent string, diffID, blob digest.Digest) (made bool, err error) {
	layers, err := d.store.LayersByUncompressedDigest(diffID)
	if err != nil || len(layers) == 0 {
		return false, fmt.Errorf("no layer with diff ID %s in the store to copy: %w", diffID, err)
	}
	uncompressed := archive.Uncompressed
	diff, err := d.store.Diff("", layers[0].ID, &storage.DiffOptions{Compression: &uncompressed})
	if err != nil {
		return false, fmt.Errorf("reading layer %s: %w", layers[0].ID, err)
	}
	// Diff holds the layer store's lock until it is closed, and PutLayer
	// needs it: go through a file.
	tmp, err := os.CreateTemp(d.tmpDir, "crio-layer-")
	if err != nil {
		diff.Close()
		return false, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	_, err = io.Copy(tmp, diff)
	diff.Close()
	if err != nil {
		return false, fmt.Errorf("reading layer %s: %w", layers[0].ID, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	opts := &storage.LayerOptions{OriginalDigest: diffID, UncompressedDigest: diffID}
	if src := layers[0]; src.CompressedDigest == blob {
		// Its size too, which is 0 for a staged layer: the store
		// records none for those.
		size := src.CompressedSize
		opts.OriginalDigest, opts.OriginalSize = blob, &size
	}
	_, _, err = d.store.PutLayer(id, parent, nil, "", false, opts, tmp)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, storage.ErrDuplicateID):
		return false, nil
	}
	return false, fmt.Errorf("copying layer %s: %w", layers[0].ID, err)
}

// tellInner has the inner destination look up every blob this destination
// stacked, so that its commit finds their layers. The cache answers with
// the diff IDs computed here, so the lookup succeeds even for a layer that
// was already in the store without this blob's digest. The blobs of empty
// layers, which make no layer to look up, are handed over whole.
func (d *destination) tellInner(ctx context.Context) error {
	d.mu.Lock()
	known, empty := d.known, d.empty
	d.mu.Unlock()
	cache := diffIDCache(known)
	for blob, data := range empty {
		if _, err := d.ImageDestination.PutBlob(ctx, bytes.NewReader(data), types.BlobInfo{Digest: blob, Size: int64(len(data))}, cache, false); err != nil {
			return fmt.Errorf("recording empty layer %s: %w", blob, err)
		}
	}
	for blob, k := range known {
		ok, _, err := d.ImageDestination.TryReusingBlob(ctx, types.BlobInfo{Digest: blob, Size: k.size}, cache, false)
		if err != nil {
			return fmt.Errorf("recording layer %s: %w", blob, err)
		}
		if !ok {
			return fmt.Errorf("recording layer %s: the store does not find the layer just stacked", blob)
		}
	}
	return nil
}

// layerID is containers/image's ID for a layer identified by its diff ID:
// a chain ID, the diff ID itself for a base layer.
func layerID(parent string, diffID digest.Digest) string {
	if parent == "" {
		return diffID.Encoded()
	}
	return digest.Canonical.FromString(parent + "+" + diffID.Encoded()).Encoded()
}

// diffIDsFromConfig returns the config's diff IDs, one per manifest
// layer, for the formats whose config has them; nil otherwise (schema 1,
// or a config too large to have been kept).
func diffIDsFromConfig(mt string, config []byte, layers int) ([]digest.Digest, error) {
	if config == nil {
		return nil, nil
	}
	switch mt {
	case imgspecv1.MediaTypeImageManifest, manifest.DockerV2Schema2MediaType:
	default:
		return nil, nil
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(config, &cfg); err != nil {
		return nil, fmt.Errorf("parsing image config: %w", err)
	}
	if len(cfg.RootFS.DiffIDs) != layers {
		return nil, fmt.Errorf("the image config has %d diff IDs for %d layers", len(cfg.RootFS.DiffIDs), layers)
	}
	return cfg.RootFS.DiffIDs, nil
}

// originalConfigNoter is the method by which containers/image's storage
// destination learns the config's diff IDs before the manifest.
type originalConfigNoter interface {
	NoteOriginalOCIConfig(*imgspecv1.Image, error) error
}

// diffIDCache is a BlobInfoCache that knows only the blobs of this pull.
type diffIDCache map[digest.Digest]knownBlob

func (c diffIDCache) UncompressedDigest(d digest.Digest) digest.Digest        { return c[d].diffID }
func (diffIDCache) RecordDigestUncompressedPair(digest.Digest, digest.Digest) {}
func (diffIDCache) RecordKnownLocation(types.ImageTransport, types.BICTransportScope, digest.Digest, types.BICLocationReference) {
}

func (diffIDCache) CandidateLocations(types.ImageTransport, types.BICTransportScope, digest.Digest, bool) []types.BICReplacementCandidate {
	return nil
}

// limitedBuffer keeps what is written to it up to max bytes, and nothing
// once more was written.
type limitedBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if !b.over {
		if b.buf.Len()+len(p) > b.max {
			b.over = true
			b.buf = bytes.Buffer{}
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) bytes() []byte {
	if b.over {
		return nil
	}
	return b.buf.Bytes()
}
