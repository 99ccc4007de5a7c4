// Command pullfloor measures the floor of an image pull: the work no runtime
// can avoid, done as directly as Go allows, so that a runtime's pull time can
// be read against it (hack/bench-pull.sh runs it as the contestant "floor").
//
//	pullfloor [-registry 127.0.0.1:5001] -dest DIR [-parallel N] [-syncfs] [-v] REPO:TAG...
//
// For each image, concurrently: the manifest is fetched over plain HTTP
// (registry v2 API, net/http; an index is resolved to linux/GOARCH), then the
// config and every layer at once (at most -parallel layers per image when
// set). Each layer is streamed from the HTTP body through a SHA-256 of the
// compressed bytes, the decompressor containers/image and containers/storage
// use (github.com/klauspost/pgzip for gzip, github.com/klauspost/compress/zstd
// for zstd; uncompressed tars pass through), a SHA-256 of the tar (the diff
// ID) and archive/tar into its own fresh directory DIR/<image>/<layer>, as
// an overlay snapshotter lays layers out (whiteouts become 0:0 character
// devices, opaque directories get trusted.overlay.opaque=y). Download,
// decompression and extraction of all layers overlap; nothing is written
// twice. Ownership, modes, xattrs and times are applied as a runtime must.
// The digest of every blob (manifest by digest, config, layers) is checked
// against the manifest, and each layer's diff ID against the config; a
// mismatch fails the run. Nothing is fsync'd unless -syncfs asks for one
// syncfs(2) of DIR's file system at the end (counted in the time).
//
// Output on stdout: one line per image, "MS REF", the milliseconds from the
// first request to the last layer extracted and verified; with more than one
// image, a last line "MS all" for the whole set. -v prints per-layer timings
// on stderr. Process start is not counted (as pullonly times only the RPC).
//
// DIR must not exist or be empty. The tool trusts its registry no more than
// a runtime does: entry names are confined to the layer directory (".."
// cannot climb out, and no entry is written through a symlink the layer
// created), but it is a benchmark, not an unpacker to run on hostile input.
package main

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

const (
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

var verbose bool

func main() {
	registry := flag.String("registry", "127.0.0.1:5001", "registry host:port (plain HTTP)")
	dest := flag.String("dest", "", "directory to extract into (must not exist or be empty); put it on the runtimes' file system")
	parallel := flag.Int("parallel", 0, "layers fetched at once per image (0: all)")
	syncfs := flag.Bool("syncfs", false, "syncfs(2) the destination's file system at the end (timed)")
	flag.BoolVar(&verbose, "v", false, "per-layer timings on stderr")
	flag.Parse()
	if *dest == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: pullfloor [-registry HOST:PORT] -dest DIR [-parallel N] [-syncfs] [-v] REPO:TAG...")
		os.Exit(2)
	}
	if err := prepareDest(*dest); err != nil {
		fail(err)
	}
	c := &client{
		base: "http://" + *registry,
		http: &http.Client{Transport: &http.Transport{
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
			ForceAttemptHTTP2:   false,
		}},
	}
	ctx := context.Background()
	refs := flag.Args()
	times := make([]time.Duration, len(refs))
	errs := make([]error, len(refs))
	t0 := time.Now()
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Go(func() {
			errs[i] = pullImage(ctx, c, ref, filepath.Join(*dest, fmt.Sprint(i)), *parallel, t0)
			times[i] = time.Since(t0)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		fail(err)
	}
	if *syncfs {
		if err := syncFS(*dest); err != nil {
			fail(err)
		}
		for i := range times {
			times[i] = time.Since(t0)
		}
	}
	total := time.Since(t0)
	for i, ref := range refs {
		fmt.Printf("%.1f %s\n", ms(times[i]), ref)
	}
	if len(refs) > 1 {
		fmt.Printf("%.1f all\n", ms(total))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pullfloor:", err)
	os.Exit(1)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func prepareDest(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	return nil
}

func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// --- registry ---------------------------------------------------------------

type client struct {
	base string
	http *http.Client
}

func (c *client) get(ctx context.Context, url string, accept ...string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+url, nil)
	if err != nil {
		return nil, err
	}
	for _, a := range accept {
		req.Header.Add("Accept", a)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp, nil
}

// getVerified reads a small blob or manifest into memory and checks its
// digest when one is known.
func (c *client) getVerified(ctx context.Context, url string, want digest.Digest, accept ...string) ([]byte, string, error) {
	resp, err := c.get(ctx, url, accept...)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", url, err)
	}
	if want != "" && digest.Canonical.FromBytes(b) != want {
		return nil, "", fmt.Errorf("GET %s: digest mismatch: got %s", url, digest.Canonical.FromBytes(b))
	}
	return b, resp.Header.Get("Content-Type"), nil
}

// manifest fetches the image manifest of repo:tag, resolving an index.
func (c *client) manifest(ctx context.Context, repo, ref string) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	accept := []string{ocispec.MediaTypeImageManifest, mediaTypeDockerManifest, ocispec.MediaTypeImageIndex, mediaTypeDockerList}
	var want digest.Digest
	if d, err := digest.Parse(ref); err == nil {
		want = d
	}
	b, ctype, err := c.getVerified(ctx, "/v2/"+repo+"/manifests/"+ref, want, accept...)
	if err != nil {
		return m, err
	}
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return m, fmt.Errorf("manifest of %s:%s: %w", repo, ref, err)
	}
	mt := probe.MediaType
	if mt == "" {
		mt = ctype
	}
	if mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerList {
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return m, fmt.Errorf("index of %s:%s: %w", repo, ref, err)
		}
		for _, d := range idx.Manifests {
			if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH {
				return c.manifest(ctx, repo, d.Digest.String())
			}
		}
		return m, fmt.Errorf("index of %s:%s has no linux/%s manifest", repo, ref, runtime.GOARCH)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("manifest of %s:%s: %w", repo, ref, err)
	}
	return m, nil
}

// --- one image ----------------------------------------------------------------

type layerTiming struct {
	headers, done time.Duration
	size, tarSize int64
}

func pullImage(ctx context.Context, c *client, ref, dir string, parallel int, t0 time.Time) error {
	repo, tag := ref, "latest"
	if i := strings.Index(ref, "@"); i >= 0 {
		repo, tag = ref[:i], ref[i+1:]
	} else if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	m, err := c.manifest(ctx, repo, tag)
	if err != nil {
		return err
	}
	tManifest := time.Since(t0)

	var (
		wg      sync.WaitGroup
		cfg     ocispec.Image
		cfgErr  error
		diffIDs = make([]digest.Digest, len(m.Layers))
		errs    = make([]error, len(m.Layers))
		timing  = make([]layerTiming, len(m.Layers))
	)
	wg.Go(func() {
		b, _, err := c.getVerified(ctx, "/v2/"+repo+"/blobs/"+m.Config.Digest.String(), m.Config.Digest)
		if err == nil {
			err = json.Unmarshal(b, &cfg)
		}
		cfgErr = err
	})
	var sem chan struct{}
	if parallel > 0 {
		sem = make(chan struct{}, parallel)
	}
	for i, l := range m.Layers {
		wg.Go(func() {
			if sem != nil {
				sem <- struct{}{}
				defer func() { <-sem }()
			}
			diffIDs[i], timing[i], errs[i] = pullLayer(ctx, c, repo, l, filepath.Join(dir, fmt.Sprint(i)), t0)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s layer %d (%s): %w", ref, i, l.Digest, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(append(errs, cfgErr)...); err != nil {
		return err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("%s: config lists %d diff IDs for %d layers", ref, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	for i, d := range diffIDs {
		if d != cfg.RootFS.DiffIDs[i] {
			return fmt.Errorf("%s layer %d: diff ID %s, config says %s", ref, i, d, cfg.RootFS.DiffIDs[i])
		}
	}
	if verbose {
		fmt.Fprintf(os.Stderr, "%s: manifest at %.1f ms\n", ref, ms(tManifest))
		for i, t := range timing {
			fmt.Fprintf(os.Stderr, "%s: layer %d: %d bytes (tar %d): response %.1f ms, extracted %.1f ms (%.0f MiB/s from response)\n",
				ref, i, t.size, t.tarSize, ms(t.headers), ms(t.done), float64(t.size)/(1<<20)/(t.done-t.headers).Seconds())
		}
	}
	return nil
}

// pullLayer streams one blob through its digest, the decompressor, the diff
// ID digest and the extractor; it returns the diff ID.
func pullLayer(ctx context.Context, c *client, repo string, desc ocispec.Descriptor, dir string, t0 time.Time) (digest.Digest, layerTiming, error) {
	var t layerTiming
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", t, err
	}
	if err := desc.Digest.Validate(); err != nil {
		return "", t, err
	}
	resp, err := c.get(ctx, "/v2/"+repo+"/blobs/"+desc.Digest.String())
	if err != nil {
		return "", t, err
	}
	defer resp.Body.Close()
	t.headers = time.Since(t0)

	blob := &hashingReader{r: resp.Body, h: desc.Digest.Algorithm().Hash()}
	br := bufio.NewReaderSize(blob, 128<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return "", t, err
	}
	var tarStream io.Reader = br
	switch {
	case len(magic) >= 3 && magic[0] == 0x1f && magic[1] == 0x8b && magic[2] == 0x08:
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return "", t, err
		}
		defer zr.Close()
		tarStream = zr
	case len(magic) == 4 && string(magic) == "\x28\xb5\x2f\xfd":
		zr, err := zstd.NewReader(br)
		if err != nil {
			return "", t, err
		}
		defer zr.Close()
		tarStream = zr
	}
	diff := &hashingReader{r: tarStream, h: sha256.New()}
	if err := extract(tar.NewReader(diff), dir); err != nil {
		return "", t, err
	}
	// The tar may be followed by padding; the digests cover every byte.
	if _, err := io.Copy(io.Discard, diff); err != nil {
		return "", t, err
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return "", t, err
	}
	t.size, t.tarSize = blob.n, diff.n
	if blob.n != desc.Size {
		return "", t, fmt.Errorf("size %d, manifest says %d", blob.n, desc.Size)
	}
	if got := digest.NewDigest(desc.Digest.Algorithm(), blob.h); got != desc.Digest {
		return "", t, fmt.Errorf("digest mismatch: got %s", got)
	}
	t.done = time.Since(t0)
	return digest.NewDigest(digest.SHA256, diff.h), t, nil
}

type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// --- extraction ----------------------------------------------------------------

type extractor struct {
	root     string
	buf      []byte
	symlinks map[string]bool // entry paths (clean, rooted) this layer made symlinks
	made     map[string]bool // directories known to exist (saves a stat per entry)
	dirs     []*tar.Header   // directory times are set last
}

func extract(tr *tar.Reader, root string) error {
	x := &extractor{root: root, buf: make([]byte, 256<<10), symlinks: map[string]bool{}, made: map[string]bool{root: true}}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := x.entry(hdr, tr); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
	for i := len(x.dirs) - 1; i >= 0; i-- {
		h := x.dirs[i]
		if err := setTimes(x.path(h.Name), h); err != nil {
			return err
		}
	}
	return nil
}

// path maps an entry name to a path under the root; ".." cannot leave it.
func (x *extractor) path(name string) string {
	return filepath.Join(x.root, path.Clean("/"+name))
}

// viaSymlink reports whether resolving name would go through a symlink
// that this layer created (the layer directory starts empty, so no other
// symlink can be in the way).
func (x *extractor) viaSymlink(name string) bool {
	p := path.Clean("/" + name)
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		if x.symlinks[d] {
			return true
		}
	}
	return false
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name := path.Clean("/" + hdr.Name)
	if x.viaSymlink(name) {
		return errors.New("path goes through a symlink")
	}
	target := x.path(name)
	base := path.Base(name)
	parent := filepath.Dir(target)
	if name != "/" && !x.made[parent] {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return err
		}
		x.made[parent] = true
	}
	delete(x.symlinks, name)
	if base == ".wh..wh..opq" {
		return unix.Lsetxattr(parent, "trusted.overlay.opaque", []byte("y"), 0)
	}
	if strings.HasPrefix(base, ".wh..wh.") {
		return nil // other aufs metadata (.wh..wh.plnk, ...) is dropped, as runtimes do
	}
	if strings.HasPrefix(base, ".wh.") {
		wh := filepath.Join(parent, base[len(".wh."):])
		if err := unix.Mknod(wh, unix.S_IFCHR, 0); err != nil {
			return err
		}
		return os.Lchown(wh, hdr.Uid, hdr.Gid)
	}
	mode := hdr.FileInfo().Mode()
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		x.made[target] = true
		if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
		if err := os.Chmod(target, mode); err != nil {
			return err
		}
		x.dirs = append(x.dirs, hdr)
		return x.xattrs(target, hdr)
	case tar.TypeReg: // archive/tar reports the old TypeRegA as TypeReg
		f, err := x.create(target)
		if err != nil {
			return err
		}
		_, err = io.CopyBuffer(f, r, x.buf)
		if err == nil {
			err = f.Chown(hdr.Uid, hdr.Gid)
		}
		if err == nil {
			err = f.Chmod(mode)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := x.replace(target, func() error { return os.Symlink(hdr.Linkname, target) }); err != nil {
			return err
		}
		x.symlinks[name] = true
		if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	case tar.TypeLink:
		if x.viaSymlink(hdr.Linkname) {
			return errors.New("link target goes through a symlink")
		}
		old := x.path(hdr.Linkname)
		return x.replace(target, func() error { return os.Link(old, target) })
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		if err := x.replace(target, func() error { return unix.Mknod(target, typ|uint32(hdr.Mode&0o7777), dev) }); err != nil {
			return err
		}
		if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
		if err := os.Chmod(target, mode); err != nil {
			return err
		}
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	if err := x.xattrs(target, hdr); err != nil {
		return err
	}
	return setTimes(target, hdr)
}

// create opens a new regular file, replacing an entry of the same name
// that an earlier entry of this layer left.
func (x *extractor) create(target string) (*os.File, error) {
	var f *os.File
	err := x.replace(target, func() (err error) {
		f, err = os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		return err
	})
	return f, err
}

func (x *extractor) replace(target string, mk func() error) error {
	err := mk()
	if errors.Is(err, os.ErrExist) {
		if err := os.RemoveAll(target); err != nil {
			return err
		}
		for d := range x.made {
			if d == target || strings.HasPrefix(d, target+"/") {
				delete(x.made, d)
			}
		}
		err = mk()
	}
	return err
}

func (x *extractor) xattrs(target string, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if err := unix.Lsetxattr(target, name, []byte(v), 0); err != nil {
				return err
			}
		}
	}
	return nil
}

func setTimes(target string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
}
