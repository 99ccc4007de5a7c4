package stagedest

import (
	"fmt"
	"io"
	"os"

	digest "github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/asm"
	tarstorage "github.com/vbatts/tar-split/tar/storage"
	"go.podman.io/image/v5/pkg/compression"
	graphdriver "go.podman.io/storage/drivers"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
)

// layerDiffer unpacks one whole layer blob (gzip, zstd, or any compression
// containers/image detects, or none) into the staging directory the
// storage driver made for it. It reads the blob once: inflating it, taking
// the digest of the tar (the layer's diff ID), recording its tar-split (so
// that the store can give back the exact tar later, as for every layer),
// and unpacking it through containers/storage's chrooted helper.
//
// It does not take the digest of the blob itself: copy.Image hands
// PutBlob a stream that checks the manifest's digest as it is read and
// fails the last Read on a mismatch, and the differ reads to the end.
type layerDiffer struct {
	blob io.Reader

	// Set by ApplyDiff.
	compressedSize int64
}

func (d *layerDiffer) Close() error { return nil }

func (d *layerDiffer) ApplyDiff(dest string, options *archive.TarOptions, differOpts *graphdriver.DifferOptions) (graphdriver.DriverWithDifferOutput, error) {
	var out graphdriver.DriverWithDifferOutput
	if differOpts != nil && differOpts.Format != graphdriver.DifferOutputFormatDir {
		// composefs wants a flat file store, which this differ does not write.
		return out, fmt.Errorf("storage driver asks for differ output format %d: %w", differOpts.Format, errUnsupportedDriver)
	}
	blob := &countingReader{r: d.blob}
	tarStream, _, err := compression.AutoDecompress(blob)
	if err != nil {
		return out, fmt.Errorf("decompressing layer: %w", err)
	}
	defer tarStream.Close()

	// The tar-split goes beside the staged files, so that removing the
	// staging directory removes it too.
	tmpDir := ""
	if differOpts != nil {
		tmpDir = differOpts.StagingDirectory
	}
	tarSplit, err := os.CreateTemp(tmpDir, "tar-split-")
	if err != nil {
		return out, fmt.Errorf("creating tar-split file: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			tarSplit.Close()
		}
	}()
	if err := os.Remove(tarSplit.Name()); err != nil {
		return out, fmt.Errorf("unlinking tar-split file: %w", err)
	}

	diffID := digest.Canonical.Digester()
	size := &countingWriter{}
	packer := &rootEntryWatch{Packer: tarstorage.NewJSONPacker(tarSplit)}
	payload, packed, err := asm.NewInputTarStreamWithDone(
		io.TeeReader(tarStream, io.MultiWriter(diffID.Hash(), size)), packer, tarstorage.NewDiscardFilePutter())
	if err != nil {
		return out, fmt.Errorf("reading layer tar: %w", err)
	}
	err = chrootarchive.UntarUncompressed(payload, dest, options)
	if err == nil {
		// The tar's end-of-archive padding, which tar-split records too.
		_, err = io.Copy(io.Discard, payload)
	}
	payload.Close()
	if perr := <-packed; err == nil && perr != nil {
		err = fmt.Errorf("recording tar-split: %w", perr)
	}
	if err == nil {
		// Whatever follows the compressed stream: the blob's digest,
		// checked by the stream itself, covers all of it.
		_, err = io.Copy(io.Discard, blob)
	}
	if err != nil {
		return out, fmt.Errorf("unpacking layer: %w", err)
	}
	if _, err := tarSplit.Seek(0, io.SeekStart); err != nil {
		return out, fmt.Errorf("rewinding tar-split file: %w", err)
	}
	if packer.sawRoot {
		// The tar set the layer root's mode; without RootDirMode the
		// driver would give the root its parent layer's mode instead.
		st, err := os.Stat(dest)
		if err != nil {
			return out, err
		}
		mode := st.Mode()
		out.RootDirMode = &mode
	}
	keep = true
	d.compressedSize = blob.n
	out.TarSplit = tarSplit
	out.UncompressedDigest = diffID.Digest()
	out.Size = size.n
	return out, nil
}

// rootEntryWatch notes whether the tar has an entry for the layer's root
// directory, as it passes tar-split's records on.
type rootEntryWatch struct {
	tarstorage.Packer
	sawRoot bool
}

func (w *rootEntryWatch) AddEntry(e tarstorage.Entry) (int, error) {
	if e.Type == tarstorage.FileType && isRootName(e.GetName()) {
		w.sawRoot = true
	}
	return w.Packer.AddEntry(e)
}

// isRootName reports whether a tar entry name is the archive's root.
func isRootName(name string) bool {
	switch name {
	case ".", "./", "/":
		return true
	}
	return false
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
