package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of the two manifest formats the tests push.
const (
	formatOCI    = "oci"
	formatDocker = "docker"

	dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	dockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerConfig   = "application/vnd.docker.container.image.v1+json"
	dockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

type blob struct {
	mediaType string
	data      []byte
	diffID    digest.Digest // layers: digest of the uncompressed tar
}

func (b blob) digest() digest.Digest { return digest.FromBytes(b.data) }

func (b blob) descriptor() imgspecv1.Descriptor {
	return imgspecv1.Descriptor{MediaType: b.mediaType, Digest: b.digest(), Size: int64(len(b.data))}
}

// testImage is a single-platform image ready to push.
type testImage struct {
	config   blob
	layers   []blob
	manifest blob
	platform imgspecv1.Platform
}

// imageSpec describes a test image.
type imageSpec struct {
	format  string            // formatOCI (default) or formatDocker
	arch    string            // default runtime.GOARCH
	variant string            // default: "v8" on arm64
	user    string            // config User
	files   map[string]string // an extra layer with these files (makes the image unique)
	big     int               // bytes of incompressible data in another layer
	bigN    int               // number of such layers (default 1)
	noBase  bool              // leave out the busybox layer
}

var (
	baseLayerOnce sync.Once
	baseLayer     blob
	baseLayerErr  error
)

// busyboxLayer is a root filesystem made of Debian's static busybox with a
// shell link and an /etc/passwd, built once per test binary.
func busyboxLayer(t testing.TB) blob {
	t.Helper()
	baseLayerOnce.Do(func() {
		bb, err := os.ReadFile("/bin/busybox")
		if err != nil {
			baseLayerErr = err
			return
		}
		baseLayer, baseLayerErr = makeLayer([]tarEntry{
			{name: "bin/", mode: 0o755, dir: true},
			{name: "bin/busybox", mode: 0o755, data: bb},
			{name: "bin/sh", link: "busybox"},
			{name: "etc/", mode: 0o755, dir: true},
			{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\n")},
			{name: "tmp/", mode: 0o1777, dir: true},
		}, imgspecv1.MediaTypeImageLayerGzip)
	})
	if baseLayerErr != nil {
		t.Fatalf("building busybox layer: %v", baseLayerErr)
	}
	return baseLayer
}

type tarEntry struct {
	name     string
	mode     int64
	data     []byte
	link     string // symlink target
	hardlink string // hard link target
	dir      bool
	uid, gid int
}

// makeLayer writes a gzip'd tar with fixed times, so equal input gives
// equal digests.
func makeLayer(entries []tarEntry, mediaType string) (blob, error) {
	return makeLayerCompressed(entries, mediaType, compressGzip)
}

// Compressions of makeLayerCompressed.
const (
	compressGzip = "gzip"
	compressZstd = "zstd"
	compressNone = "none"
)

func makeLayerCompressed(entries []tarEntry, mediaType, compression string) (blob, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	epoch := time.Unix(0, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: epoch, Format: tar.FormatPAX, Uid: e.uid, Gid: e.gid}
		switch {
		case e.dir:
			h.Typeflag = tar.TypeDir
		case e.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.link, 0o777
		case e.hardlink != "":
			h.Typeflag, h.Linkname = tar.TypeLink, e.hardlink
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return blob{}, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return blob{}, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return blob{}, err
	}
	var out bytes.Buffer
	var zw io.WriteCloser
	switch compression {
	case compressGzip:
		zw, _ = gzip.NewWriterLevel(&out, gzip.BestSpeed)
	case compressZstd:
		var err error
		if zw, err = zstd.NewWriter(&out); err != nil {
			return blob{}, err
		}
	case compressNone:
		out = raw
		return blob{mediaType: mediaType, data: out.Bytes(), diffID: digest.FromBytes(raw.Bytes())}, nil
	default:
		return blob{}, fmt.Errorf("unknown compression %q", compression)
	}
	if _, err := io.Copy(zw, bytes.NewReader(raw.Bytes())); err != nil {
		return blob{}, err
	}
	if err := zw.Close(); err != nil {
		return blob{}, err
	}
	return blob{mediaType: mediaType, data: out.Bytes(), diffID: digest.FromBytes(raw.Bytes())}, nil
}

func hostPlatform() imgspecv1.Platform {
	p := imgspecv1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// otherArch is an architecture this machine will not pick.
func otherArch() imgspecv1.Platform {
	if runtime.GOARCH == "arm64" {
		return imgspecv1.Platform{OS: "linux", Architecture: "amd64"}
	}
	return imgspecv1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
}

func buildImage(t testing.TB, s imageSpec) *testImage {
	t.Helper()
	if s.format == "" {
		s.format = formatOCI
	}
	layerType := imgspecv1.MediaTypeImageLayerGzip
	if s.format == formatDocker {
		layerType = dockerLayer
	}
	plat := hostPlatform()
	if s.arch != "" {
		plat = imgspecv1.Platform{OS: "linux", Architecture: s.arch, Variant: s.variant}
	}
	img := &testImage{platform: plat}
	if !s.noBase {
		base := busyboxLayer(t)
		base.mediaType = layerType
		img.layers = append(img.layers, base)
	}
	if len(s.files) > 0 {
		names := make([]string, 0, len(s.files))
		for n := range s.files {
			names = append(names, n)
		}
		sort.Strings(names)
		var entries []tarEntry
		for _, n := range names {
			entries = append(entries, tarEntry{name: n, mode: 0o644, data: []byte(s.files[n])})
		}
		l, err := makeLayer(entries, layerType)
		if err != nil {
			t.Fatal(err)
		}
		img.layers = append(img.layers, l)
	}
	for n := range max(s.bigN, 1) {
		if s.big == 0 {
			break
		}
		// Incompressible but deterministic.
		seed := digest.FromString(fmt.Sprint(s.files, n))
		var key [32]byte
		copy(key[:], seed.Encoded())
		data := make([]byte, s.big)
		_, _ = rand.NewChaCha8(key).Read(data)
		l, err := makeLayer([]tarEntry{{name: fmt.Sprintf("big%d.bin", n), mode: 0o644, data: data}}, layerType)
		if err != nil {
			t.Fatal(err)
		}
		img.layers = append(img.layers, l)
	}
	assembleImage(t, img, s.format, s.user)
	return img
}

// assembleImage writes img's config and manifest for its layers and
// platform.
func assembleImage(t testing.TB, img *testImage, format, user string) {
	t.Helper()
	configType, manifestType := imgspecv1.MediaTypeImageConfig, imgspecv1.MediaTypeImageManifest
	if format == formatDocker {
		configType, manifestType = dockerConfig, dockerManifest
	}
	cfg := imgspecv1.Image{
		Platform: img.platform,
		Config: imgspecv1.ImageConfig{
			User: user,
			Env:  []string{"PATH=/bin"},
			Cmd:  []string{"sh"},
		},
		RootFS: imgspecv1.RootFS{Type: "layers"},
	}
	created := time.Unix(0, 0).UTC()
	cfg.Created = &created
	for _, l := range img.layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
	}
	cfgBytes, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	img.config = blob{mediaType: configType, data: cfgBytes}
	m := imgspecv1.Manifest{
		Versioned: imgspecs.Versioned{SchemaVersion: 2},
		MediaType: manifestType,
		Config:    img.config.descriptor(),
	}
	for _, l := range img.layers {
		m.Layers = append(m.Layers, l.descriptor())
	}
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	img.manifest = blob{mediaType: manifestType, data: mb}
}

// pushBlob uploads b to repo unless it is there already.
func (r *testRegistry) pushBlob(t testing.TB, repo string, b blob) {
	t.Helper()
	d := b.digest()
	resp, err := r.do(http.MethodHead, fmt.Sprintf("/v2/%s/blobs/%s", repo, d), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return
	}
	resp, err = r.do(http.MethodPost, fmt.Sprintf("/v2/%s/blobs/uploads/", repo), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting upload to %s: %s", repo, resp.Status)
	}
	loc := resp.Header.Get("Location")
	sep := "?"
	if bytes.ContainsRune([]byte(loc), '?') {
		sep = "&"
	}
	resp, err = r.do(http.MethodPut, loc+sep+"digest="+d.String(), "application/octet-stream", b.data)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("uploading blob %s to %s: %s", d, repo, resp.Status)
	}
}

func (r *testRegistry) pushManifest(t testing.TB, repo, ref string, m blob) {
	t.Helper()
	resp, err := r.do(http.MethodPut, fmt.Sprintf("/v2/%s/manifests/%s", repo, ref), m.mediaType, m.data)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("pushing manifest %s:%s: %s %s", repo, ref, resp.Status, body)
	}
}

// push uploads img as repo:tag and returns its manifest digest.
func (r *testRegistry) push(t testing.TB, repo, tag string, img *testImage) digest.Digest {
	t.Helper()
	for _, l := range img.layers {
		r.pushBlob(t, repo, l)
	}
	r.pushBlob(t, repo, img.config)
	r.pushManifest(t, repo, tag, img.manifest)
	return img.manifest.digest()
}

// pushIndex uploads the images and an index (OCI) or manifest list
// (Docker) listing them in the given order, as repo:tag; returns the index
// digest.
func (r *testRegistry) pushIndex(t *testing.T, repo, tag, format string, imgs ...*testImage) digest.Digest {
	t.Helper()
	idx := imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex}
	if format == formatDocker {
		idx.MediaType = dockerList
	}
	for _, img := range imgs {
		d := r.push(t, repo, img.manifest.digest().String(), img)
		p := img.platform
		desc := imgspecv1.Descriptor{MediaType: img.manifest.mediaType, Digest: d, Size: int64(len(img.manifest.data)), Platform: &p}
		idx.Manifests = append(idx.Manifests, desc)
	}
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	ib := blob{mediaType: idx.MediaType, data: b}
	r.pushManifest(t, repo, tag, ib)
	return ib.digest()
}
