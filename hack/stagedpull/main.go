// Command stagedpull measures what a pull would cost if containers/storage
// applied an image's layers in parallel, each into a staging directory of
// its own, and only then stacked them in order: the design that could bring
// crio's cold pulls near hack/pullfloor (issue 17). It is a measuring aid,
// not a pull crio makes, and it writes only to the store it is given.
//
//	stagedpull -root DIR -runroot DIR [-registries-conf F] [-reps N] [-ms] [-v] [-verify] REF
//
// Per repetition, untimed, the image and its layers are removed from the
// store; then, timed from the first request to the image record: the
// manifest and config are fetched through containers/image's docker
// transport, and every layer at once goes through Store.PrepareStagedLayer
// with a Differ that streams the blob through sha256 (checked against the
// manifest), gzip, sha256 again (checked against the config's diff ID) and
// tar-split (as containers/storage records every layer), into
// containers/storage's chrooted untar helper, in the staging directory
// overlay made for it. Store.ApplyStagedLayer then stacks the staged layers
// in order, and Store.CreateImage records the image. It prints the
// milliseconds of each repetition, and the time of the last layer's
// staging (everything before the stacking).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/klauspost/pgzip"
	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/vbatts/tar-split/tar/asm"
	tarstorage "github.com/vbatts/tar-split/tar/storage"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
	"go.podman.io/storage/pkg/reexec"
	storagetypes "go.podman.io/storage/types"
)

func main() {
	if reexec.Init() {
		return
	}
	root := flag.String("root", "", "graph root of the store")
	runroot := flag.String("runroot", "", "run root of the store")
	regconf := flag.String("registries-conf", "", "registries.conf")
	reps := flag.Int("reps", 3, "repetitions")
	flag.BoolVar(&onlyMS, "ms", false, "print only the milliseconds of each pull (hack/bench-pull.sh's contestant \"staged\")")
	flag.BoolVar(&verbose, "v", false, "per-layer staging times on stderr")
	verify := flag.Bool("verify", false, "after the last repetition, rebuild every layer's tar from the store (its tar-split and files) and check it against the diff ID")
	flag.Parse()
	if *root == "" || *runroot == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: stagedpull -root DIR -runroot DIR [-registries-conf F] [-reps N] [-ms] [-v] [-verify] REF")
		os.Exit(2)
	}
	if err := run(*root, *runroot, *regconf, *reps, *verify, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "stagedpull:", err)
		os.Exit(1)
	}
}

func run(root, runroot, regconf string, reps int, verify bool, ref string) error {
	store, err := storage.GetStore(storagetypes.StoreOptions{GraphRoot: root, RunRoot: runroot, GraphDriverName: "overlay"})
	if err != nil {
		return err
	}
	defer func() { _, _ = store.Shutdown(false) }()
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return err
	}
	named = reference.TagNameOnly(named)
	srcRef, err := docker.NewReference(named)
	if err != nil {
		return err
	}
	sys := &types.SystemContext{SystemRegistriesConfPath: regconf}
	for i := 0; i < reps; i++ {
		if img, err := store.Image(named.String()); err == nil {
			if _, err := store.DeleteImage(img.ID, true); err != nil {
				return fmt.Errorf("removing the image: %w", err)
			}
		}
		start := time.Now()
		staged, err := pull(context.Background(), store, sys, srcRef, named.String())
		if err != nil {
			return err
		}
		if onlyMS {
			fmt.Printf("%.1f\n", ms(time.Since(start)))
		} else {
			fmt.Printf("%.1f ms (layers staged at %.1f ms)\n", ms(time.Since(start)), ms(staged.Sub(start)))
		}
	}
	if verify {
		return verifyLayers(store, named.String())
	}
	return nil
}

// verifyLayers has the store rebuild each layer's tar, as a push or a
// save would, and checks its digest: the tar-split and the files staged
// must give back the layer exactly.
func verifyLayers(store storage.Store, name string) error {
	img, err := store.Image(name)
	if err != nil {
		return err
	}
	for id := img.TopLayer; id != ""; {
		layer, err := store.Layer(id)
		if err != nil {
			return err
		}
		uncompressed := archive.Uncompressed
		rc, err := store.Diff("", id, &storage.DiffOptions{Compression: &uncompressed})
		if err != nil {
			return fmt.Errorf("layer %s: %w", id, err)
		}
		got, err := digest.Canonical.FromReader(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", id, err)
		}
		if got != layer.UncompressedDigest {
			return fmt.Errorf("layer %s rebuilds as %s, want %s", id, got, layer.UncompressedDigest)
		}
		fmt.Printf("layer %.12s rebuilds to its diff ID %s\n", id, got)
		id = layer.Parent
	}
	return nil
}

// verbose is -v, onlyMS -ms.
var verbose, onlyMS bool

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pull copies the image; it returns when the last layer was staged.
func pull(ctx context.Context, store storage.Store, sys *types.SystemContext, srcRef types.ImageReference, name string) (time.Time, error) {
	start := time.Now()
	src, err := srcRef.NewImageSource(ctx, sys)
	if err != nil {
		return time.Time{}, err
	}
	defer src.Close()
	mb, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		return time.Time{}, err
	}
	m, err := manifest.FromBlob(mb, manifest.NormalizedMIMEType(mt))
	if err != nil {
		return time.Time{}, err
	}
	cfgInfo := m.ConfigInfo()
	rc, _, err := src.GetBlob(ctx, cfgInfo, none.NoCache)
	if err != nil {
		return time.Time{}, err
	}
	cfgBlob, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return time.Time{}, err
	}
	if got := digest.FromBytes(cfgBlob); got != cfgInfo.Digest {
		return time.Time{}, fmt.Errorf("config digest %s, want %s", got, cfgInfo.Digest)
	}
	var cfg imgspecv1.Image
	if err := json.Unmarshal(cfgBlob, &cfg); err != nil {
		return time.Time{}, err
	}
	layers := m.LayerInfos()
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return time.Time{}, fmt.Errorf("%d layers, %d diff IDs", len(layers), len(cfg.RootFS.DiffIDs))
	}

	outs := make([]*graphdriver.DriverWithDifferOutput, len(layers))
	errs := make([]error, len(layers))
	var wg sync.WaitGroup
	for i, l := range layers {
		wg.Go(func() {
			t0 := time.Now()
			defer func() {
				if verbose {
					fmt.Fprintf(os.Stderr, "layer %d (%d bytes): staged %.1f to %.1f ms\n", i, l.Size, ms(t0.Sub(start)), ms(time.Since(start)))
				}
			}()
			rc, _, err := src.GetBlob(ctx, l.BlobInfo, none.NoCache)
			if err != nil {
				errs[i] = err
				return
			}
			defer rc.Close()
			outs[i], errs[i] = store.PrepareStagedLayer(nil, &differ{blob: rc, digest: l.Digest, diffID: cfg.RootFS.DiffIDs[i]})
		})
	}
	wg.Wait()
	staged := time.Now()
	for i, err := range errs {
		if err != nil {
			for _, o := range outs {
				if o != nil {
					_ = store.CleanupStagedLayer(o)
				}
			}
			return staged, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	parent := ""
	for i, o := range outs {
		layer, err := store.ApplyStagedLayer(storage.ApplyStagedLayerOptions{
			ID: "", ParentLayer: parent, DiffOutput: o, DiffOptions: &graphdriver.ApplyDiffWithDifferOpts{},
		})
		if err != nil {
			return staged, fmt.Errorf("stacking layer %d: %w", i, err)
		}
		parent = layer.ID
	}
	_, err = store.CreateImage(cfgInfo.Digest.Encoded(), []string{name}, parent, "", nil)
	return staged, err
}

// differ applies an ordinary (gzip) layer blob into the staging directory
// overlay made, checking both digests.
type differ struct {
	blob           io.Reader
	digest, diffID digest.Digest
}

func (d *differ) Close() error { return nil }

func (d *differ) ApplyDiff(dest string, options *archive.TarOptions, _ *graphdriver.DifferOptions) (graphdriver.DriverWithDifferOutput, error) {
	var out graphdriver.DriverWithDifferOutput
	blobHash := digest.Canonical.Digester()
	compressed := io.TeeReader(d.blob, blobHash.Hash())
	gz, err := pgzip.NewReader(compressed)
	if err != nil {
		return out, err
	}
	defer gz.Close()
	diffHash := digest.Canonical.Digester()
	size := &counter{}
	tarSplit, err := os.CreateTemp("", "stagedpull-tarsplit-")
	if err != nil {
		return out, err
	}
	os.Remove(tarSplit.Name())
	payload, done, err := asm.NewInputTarStreamWithDone(io.TeeReader(gz, io.MultiWriter(diffHash.Hash(), size)),
		tarstorage.NewJSONPacker(tarSplit), tarstorage.NewDiscardFilePutter())
	if err != nil {
		tarSplit.Close()
		return out, err
	}
	err = chrootarchive.UntarUncompressed(payload, dest, options)
	if err == nil {
		_, err = io.Copy(io.Discard, payload) // tar padding, for tar-split
	}
	payload.Close()
	if derr := <-done; err == nil {
		err = derr
	}
	if err == nil {
		_, err = io.Copy(io.Discard, compressed) // gzip trailer, for the blob digest
	}
	if err == nil && blobHash.Digest() != d.digest {
		err = fmt.Errorf("blob digest %s, want %s", blobHash.Digest(), d.digest)
	}
	if err == nil && diffHash.Digest() != d.diffID {
		err = fmt.Errorf("diff ID %s, want %s", diffHash.Digest(), d.diffID)
	}
	if err == nil {
		_, err = tarSplit.Seek(0, io.SeekStart)
	}
	if err != nil {
		tarSplit.Close()
		return out, err
	}
	out.Size, out.CompressedDigest, out.UncompressedDigest, out.TarSplit = size.n, d.digest, d.diffID, tarSplit
	return out, nil
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
