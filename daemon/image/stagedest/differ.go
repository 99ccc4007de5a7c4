package stagedest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/archive/tar"
	tarstorage "github.com/vbatts/tar-split/tar/storage"
	"go.podman.io/image/v5/pkg/compression"
	compressiontypes "go.podman.io/image/v5/pkg/compression/types"
	graphdriver "go.podman.io/storage/drivers"
	"go.podman.io/storage/pkg/archive"
	"golang.org/x/sys/unix"

	"github.com/crio-appliance/crio/daemon/image/stagedest/crc64iso"
)

// layerDiffer unpacks one whole layer blob (gzip, zstd, or any compression
// containers/image detects, or none) into the staging directory the
// storage driver made for it. It reads the blob once: inflating it, taking
// the digest of the tar (the layer's diff ID), recording its tar-split (so
// that the store can give back the exact tar later, as for every layer),
// and unpacking it from a thread whose root is the staging directory.
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
	tarStream, err := decompress(blob)
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

	// The tar is read once, and handed to tar-split and to the unpacking
	// side by side.
	diffID := digest.Canonical.Digester()
	size := &countingWriter{}
	fan := newFanOut(tarStream, 2, io.MultiWriter(diffID.Hash(), size))
	toUnpack, toSplit := fan.readers[0], fan.readers[1]
	packer := &rootEntryWatch{Packer: tarstorage.NewJSONPacker(tarSplit)}
	splitDone := make(chan error, 1)
	go func() { splitDone <- recordTarSplit(toSplit, packer) }()

	err = unpackInRoot(toUnpack, dest, options)
	if err == nil {
		// The tar's end-of-archive padding, which tar-split records too.
		_, err = io.Copy(io.Discard, toUnpack)
	}
	if err != nil {
		toUnpack.Close() // stops tar-split's side too
	}
	if serr := <-splitDone; serr != nil && (err == nil || errors.Is(err, errFanOutAborted)) {
		err = fmt.Errorf("recording tar-split: %w", serr)
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

// decompress inflates a layer blob in whatever compression
// containers/image detects. gzip, the common one, goes through a plain
// reader instead of containers/image's parallel one (pgzip), which reads
// megabytes ahead on goroutines of its own: the layers of a pull are
// inflated side by side already, and that read-ahead only added memory.
func decompress(blob io.Reader) (io.ReadCloser, error) {
	algo, decompressor, stream, err := compression.DetectCompressionFormat(blob)
	if err != nil {
		return nil, err
	}
	switch {
	case decompressor == nil:
		return io.NopCloser(stream), nil
	case algo.Name() == compressiontypes.GzipAlgorithmName:
		return gzip.NewReader(stream)
	default:
		return decompressor(stream)
	}
}

// recordTarSplit writes the tar-split of the tar read from src through
// packer, as tar-split's asm.NewInputTarStream records it, but reading src
// directly: that one copies the whole tar into a pipe that some goroutine
// must drain, a hand-over for every header. On failure it stops src, and
// so the unpacking too.
func recordTarSplit(src *chunkReader, packer tarstorage.Packer) error {
	err := packTar(src, packer, &checksummer{})
	if err != nil {
		src.Close()
	}
	return err
}

// packTar records every header of the tar in r, with the bytes around it,
// as raw segments, every file as an entry with its size and checksum, and
// whatever follows the end of the archive as segments too: what
// containers/storage needs to give the exact tar back from the files.
func packTar(r io.Reader, packer tarstorage.Packer, files tarstorage.FilePutter) error {
	segment := func(b []byte) error {
		if len(b) == 0 {
			return nil
		}
		_, err := packer.AddEntry(tarstorage.Entry{Type: tarstorage.SegmentType, Payload: b})
		return err
	}
	tr := tar.NewReader(r)
	tr.RawAccounting = true
	for {
		hdr, err := tr.Next()
		if err == io.EOF || (err == nil && hdr == nil) {
			if err := segment(tr.RawBytes()); err != nil {
				return err
			}
			break
		}
		if err != nil {
			return err
		}
		if err := segment(tr.RawBytes()); err != nil {
			return err
		}
		var sum []byte
		if hdr.Size > 0 {
			if _, sum, err = files.Put(hdr.Name, tr); err != nil {
				return err
			}
		}
		entry := tarstorage.Entry{Type: tarstorage.FileType, Size: hdr.Size, Payload: sum}
		entry.SetName(hdr.Name)
		if _, err := packer.AddEntry(entry); err != nil {
			return err
		}
		if err := segment(tr.RawBytes()); err != nil {
			return err
		}
	}
	// Padding after the end-of-archive blocks is kept, whatever its size.
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if serr := segment(buf[:n]); serr != nil {
			return serr
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// checksummer is tar-split's discarding FilePutter, which keeps only each
// file's size and CRC-64, with the CRC computed by crc64iso: hash/crc64
// took a sixth of the CPU time of a large pull. One copy buffer serves
// every file of the layer.
type checksummer struct{ buf []byte }

func (c *checksummer) Put(_ string, r io.Reader) (int64, []byte, error) {
	if c.buf == nil {
		c.buf = make([]byte, 64<<10)
	}
	h := crc64iso.New()
	n, err := io.CopyBuffer(h, r, c.buf)
	return n, h.Sum(nil), err
}

// unpackInRoot unpacks the tar stream r into dir as containers/storage's
// chrooted helper does, but in this process (see inRoot): every path the
// archive names, through its own symlinks too, resolves inside dir. The
// helper is a process started for each layer, with the whole tar copied
// to it through a pipe; on a pull of many layers that costs more CPU time
// than the unpacking. archive.Unpack runs entirely on the calling
// goroutine: it starts none.
func unpackInRoot(r io.Reader, dir string, options *archive.TarOptions) error {
	return inRoot(dir, func() error { return archive.Unpack(r, "/", options) })
}

// inRoot runs fn on a thread of its own whose root and working directory
// are dir. The runtime runs nothing else on a locked thread, and the
// thread's root is never restored: the goroutine returns without
// unlocking it, and the runtime then ends the thread.
func inRoot(dir string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- func() error {
			// The root is per process unless the thread has its own
			// file system attributes.
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return fmt.Errorf("unsharing file system attributes: %w", err)
			}
			if err := unix.Chroot(dir); err != nil {
				return fmt.Errorf("chroot %s: %w", dir, err)
			}
			if err := unix.Chdir("/"); err != nil {
				return fmt.Errorf("chdir to the new root: %w", err)
			}
			return fn()
		}()
	}()
	return <-done
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
