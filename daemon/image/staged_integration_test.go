package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/directory"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
	storagetypes "go.podman.io/storage/types"
	"golang.org/x/sys/unix"

	"github.com/crio-appliance/crio/daemon/image/stagedest"
)

// TestStagedPullMatchesContainersImage: crio's pulls, which unpack the
// layers in parallel (package stagedest), leave the store exactly as
// containers/image's own storage destination does: the same image and
// layer IDs, digests, names, big data, tar-split (every layer's tar comes
// back with its diff ID) and files, owners, modes, times, whiteouts and
// hard links. The images cover what the staging path must get right: a
// layer setting the root directory's mode, whiteouts and an opaque
// directory, zstd and uncompressed layers, a layer twice in one image, and
// layers a second image has at other places in its stack.
func TestStagedPullMatchesContainersImage(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	busybox := busyboxLayer(t)
	mustLayer := func(entries []tarEntry, mediaType, compression string) blob {
		t.Helper()
		b, err := makeLayerCompressed(entries, mediaType, compression)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tricky := mustLayer([]tarEntry{
		{name: "./", mode: 0o750, dir: true},
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/.wh.passwd"},
		{name: "data/", mode: 0o711, dir: true, uid: 33, gid: 33},
		{name: "data/a", mode: 0o640, data: []byte("a\n"), uid: 33, gid: 34},
		{name: "data/hard", hardlink: "data/a"},
		{name: "link", link: "data/a"},
		{name: "tmp/", mode: 0o1777, dir: true},
	}, imgspecv1.MediaTypeImageLayerGzip, compressGzip)
	opaque := mustLayer([]tarEntry{
		{name: "data/", mode: 0o755, dir: true},
		{name: "data/.wh..wh..opq"},
		{name: "data/b", mode: 0o4755, data: []byte("b\n")},
	}, imgspecv1.MediaTypeImageLayerZstd, compressZstd)
	plain := mustLayer([]tarEntry{
		{name: "plain.bin", mode: 0o600, data: []byte(strings.Repeat("uncompressed ", 1000))},
	}, imgspecv1.MediaTypeImageLayer, compressNone)

	first := &testImage{platform: hostPlatform(), layers: []blob{busybox, tricky, opaque, plain, tricky}}
	assembleImage(t, first, formatOCI, "")
	reg.push(t, "staged/first", "1", first)
	second := &testImage{platform: hostPlatform(), layers: []blob{plain, busybox, opaque}}
	assembleImage(t, second, formatOCI, "")
	reg.push(t, "staged/second", "1", second)

	env := newEnv(t, insecure(reg.Host), "")
	s := env.open(t)
	refs := []string{reg.Host + "/staged/first:1", reg.Host + "/staged/second:1"}
	for _, ref := range refs {
		mustPull(t, s, ref, nil)
	}
	want := copyImagesWithContainersImage(t, env, refs)

	for _, ref := range refs {
		t.Run(strings.TrimPrefix(ref, reg.Host+"/"), func(t *testing.T) {
			got := describeStoredImage(t, s.Store(), ref)
			exp := describeStoredImage(t, want, ref)
			if diff := diffLines(exp, got); diff != "" {
				t.Fatalf("staged pull differs from containers/image's (- containers/image, + crio):\n%s", diff)
			}
		})
	}
	report, err := s.Store().Check(storage.CheckMost())
	if err != nil || len(describeReport(report)) != 0 {
		t.Fatalf("store not consistent: %v %v", describeReport(report), err)
	}
	if left := stagedFiles(t, filepath.Join(env.opts.Root, "overlay", "staging")); len(left) != 0 {
		t.Fatalf("staging directories left: %v", left)
	}
}

// copyImagesWithContainersImage pulls refs into a store of their own with
// containers/image's storage destination, as crio did before stagedest.
func copyImagesWithContainersImage(t *testing.T, env *testEnv, refs []string) storage.Store {
	t.Helper()
	dir := t.TempDir()
	store, err := storage.GetStore(storagetypes.StoreOptions{
		GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), GraphDriverName: "overlay",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = store.Shutdown(true) })
	pc := acceptAllPolicyContext(t)
	sys := &types.SystemContext{SystemRegistriesConfPath: env.opts.RegistriesConf, BigFilesTemporaryDir: dir}
	for _, ref := range refs {
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			t.Fatal(err)
		}
		src, err := docker.NewReference(named)
		if err != nil {
			t.Fatal(err)
		}
		dest, err := istorage.Transport.NewStoreReference(store, named, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := copy.Image(testCtx(t), pc, dest, src, &copy.Options{SourceCtx: sys, DestinationCtx: sys, RemoveSignatures: true}); err != nil {
			t.Fatalf("copy.Image %s: %v", ref, err)
		}
	}
	return store
}

// describeStoredImage lists, one fact per line, what the store holds for
// the image named ref and each of its layers, files included.
func describeStoredImage(t *testing.T, store storage.Store, ref string) []string {
	t.Helper()
	img, err := store.Image(ref)
	if err != nil {
		t.Fatalf("image %s: %v", ref, err)
	}
	lines := []string{
		"image id " + img.ID,
		"names " + strings.Join(img.Names, ","),
		fmt.Sprint("digests ", img.Digests),
	}
	keys := slices.Clone(img.BigDataNames)
	sort.Strings(keys)
	for _, k := range keys {
		data, err := store.ImageBigData(img.ID, k)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("big data %s %s", k, digest.FromBytes(data)))
	}
	for n, id := 0, img.TopLayer; id != ""; n++ {
		l, err := store.Layer(id)
		if err != nil {
			t.Fatal(err)
		}
		p := fmt.Sprintf("layer -%d ", n)
		lines = append(lines,
			p+"id "+l.ID, p+"parent "+l.Parent,
			p+"diff id "+l.UncompressedDigest.String(), p+"blob "+l.CompressedDigest.String(),
			fmt.Sprint(p, "size ", l.UncompressedSize))
		uncompressed := archive.Uncompressed
		rc, err := store.Diff("", l.ID, &storage.DiffOptions{Compression: &uncompressed})
		if err != nil {
			t.Fatal(err)
		}
		rebuilt, err := digest.Canonical.FromReader(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, p+"tar rebuilt from the store "+rebuilt.String())
		for _, f := range describeTree(t, filepath.Join(store.GraphRoot(), "overlay", l.ID, "diff")) {
			lines = append(lines, p+f)
		}
		id = l.Parent
	}
	return lines
}

// describeTree lists every file under root with its type and mode, owner,
// link count, modification time, size and content digest or link target,
// device number and overlay xattrs.
func describeTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, path)
		mtime := fmt.Sprint(fi.ModTime().Unix())
		if fi.ModTime().After(time.Now().Add(-time.Hour)) {
			// Not from the tar (whose times are 1970) but from when the
			// layer was unpacked: whiteouts, roots the tar did not list.
			mtime = "unpacked"
		}
		line := fmt.Sprintf("%s %v %d:%d nlink=%d mtime=%s", rel, fi.Mode(), st.Uid, st.Gid, st.Nlink, mtime)
		switch {
		case fi.Mode().IsRegular():
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" size=%d sha256=%s", fi.Size(), hex.EncodeToString(h.Sum(nil)))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			line += " -> " + target
		case fi.Mode()&fs.ModeDevice != 0:
			line += fmt.Sprintf(" rdev=%d", st.Rdev)
		}
		for _, x := range []string{"trusted.overlay.opaque", "user.overlay.opaque", "trusted.overlay.whiteout"} {
			buf := make([]byte, 64)
			if n, err := unix.Lgetxattr(path, x, buf); err == nil {
				line += fmt.Sprintf(" %s=%q", x, buf[:n])
			}
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// diffLines is a plain line diff: lines only in want (-) or only in got
// (+), each in order.
func diffLines(want, got []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// TestStagedPullFailuresLeaveNothing: a pull that fails after layers were
// unpacked, because a blob does not match its digest, because the config
// gives other diff IDs than the layers have, or because the registry
// stalls, leaves no staging directory and no layer, and the daemon pulls
// the good image afterwards.
func TestStagedPullFailuresLeaveNothing(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	img := buildImage(t, imageSpec{files: map[string]string{"id": "fails"}, big: 1 << 20})
	reg.push(t, "fail/good", "1", img)
	// The same layers, and a config whose last diff ID is another's.
	liar := &testImage{platform: img.platform, layers: img.layers}
	assembleImage(t, liar, formatOCI, "")
	liar.config, liar.manifest = lieAboutLastDiffID(t, liar)
	reg.push(t, "fail/liar", "1", liar)
	last := img.layers[len(img.layers)-1].digest().String()
	corrupt := newCorruptingProxy(t, reg.Host, last)
	stall := newStallProxy(t, reg.Host, last)

	env := newEnv(t, insecure(reg.Host)+insecure(corrupt)+insecure(stall.Host), "")
	env.opts.PullProgressTimeout = time.Second
	s := env.open(t)
	staging := filepath.Join(env.opts.Root, "overlay", "staging")
	for _, tc := range []struct {
		ref  string
		kind error
		want string
	}{
		{corrupt + "/fail/good:1", nil, "Digest did not match"},
		{reg.Host + "/fail/liar:1", nil, "but the image config says"},
		{stall.Host + "/fail/good:1", ErrPullStalled, "pull_progress_timeout"},
	} {
		_, err := s.Pull(testCtx(t), tc.ref, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.kind != nil && !errors.Is(err, tc.kind)) {
			t.Fatalf("Pull(%s) = %v, want an error saying %q", tc.ref, err, tc.want)
		}
		if left := stagedFiles(t, staging); len(left) != 0 {
			t.Errorf("%s: staging directories left: %v", tc.ref, left)
		}
		if layers, err := s.Store().Layers(); err != nil || len(layers) != 0 {
			t.Errorf("%s: layers left: %d %v", tc.ref, len(layers), err)
		}
	}
	mustPull(t, s, reg.Host+"/fail/good:1", nil)
}

// TestStagedPullStacksLayersEarly: when the manifest names one image, each
// layer is stacked as soon as it and the layers below it are unpacked.
// With the third of four layers stalled, the two below it are in the
// store, the fourth is unpacked but not stacked (its parent is missing),
// and once the stall ends the image is complete. The order comes from the
// manifest copy.Image fetched: the pull asks for it once. Through an
// index, whose instance manifest would take another request, nothing is
// stacked before the manifest arrives.
func TestStagedPullStacksLayersEarly(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	img := buildImage(t, imageSpec{files: map[string]string{"id": "early"}, big: 1 << 20, bigN: 2})
	if len(img.layers) != 4 {
		t.Fatalf("test image has %d layers, want 4", len(img.layers))
	}
	reg.push(t, "early/single", "1", img)
	reg.pushIndex(t, "early/index", "1", formatOCI, img)
	stalled := img.layers[2].digest().String()

	for _, tc := range []struct {
		repo      string
		wantEarly int // layers stacked while the third one stalls
	}{
		{"early/single", 2},
		{"early/index", 0},
	} {
		t.Run(tc.repo, func(t *testing.T) {
			stall := newStallProxy(t, reg.Host, stalled)
			env := newEnv(t, insecure(stall.Host), "")
			s := env.open(t)
			staging := filepath.Join(env.opts.Root, "overlay", "staging")
			mark := reg.mark(t)
			done := make(chan error, 1)
			go func() {
				_, err := s.Pull(testCtx(t), stall.Host+"/"+tc.repo+":1", nil)
				done <- err
			}()
			<-stall.stalled
			// Wait for the fourth layer to be unpacked: every layer not
			// stacked early (the stalled one among them) is then in a
			// staging directory, and whatever could be stacked early is.
			deadline := time.Now().Add(30 * time.Second)
			for {
				layers, err := s.Store().Layers()
				if err != nil {
					t.Fatal(err)
				}
				if len(layers) == tc.wantEarly && len(stagedFiles(t, staging)) == len(img.layers)-tc.wantEarly && fourthUnpacked(t, staging) {
					var got []digest.Digest
					for _, l := range layers {
						got = append(got, l.UncompressedDigest)
					}
					for _, l := range img.layers[:tc.wantEarly] {
						if !slices.Contains(got, l.diffID) {
							t.Fatalf("layer %s not stacked early; stacked: %v", l.diffID, got)
						}
					}
					break
				}
				if len(layers) > tc.wantEarly {
					t.Fatalf("%d layers stacked while the third is stalled, want %d", len(layers), tc.wantEarly)
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 30 s: %d layers stacked (want %d), staging %v", len(layers), tc.wantEarly, stagedFiles(t, staging))
				}
				time.Sleep(20 * time.Millisecond)
			}
			stall.release()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			image, err := s.Store().Image(stall.Host + "/" + tc.repo + ":1")
			if err != nil {
				t.Fatal(err)
			}
			var chain []digest.Digest
			for id := image.TopLayer; id != ""; {
				l, err := s.Store().Layer(id)
				if err != nil {
					t.Fatal(err)
				}
				chain = append([]digest.Digest{l.UncompressedDigest}, chain...)
				id = l.Parent
			}
			for i, l := range img.layers {
				if i >= len(chain) || chain[i] != l.diffID {
					t.Fatalf("image layers %v, want the diff IDs of %d layers in order", chain, len(img.layers))
				}
			}
			if layers, err := s.Store().Layers(); err != nil || len(layers) != len(img.layers) {
				t.Fatalf("%d layers in the store (%v), want %d", len(layers), err, len(img.layers))
			}
			report, err := s.Store().Check(storage.CheckMost())
			if err != nil || len(describeReport(report)) != 0 {
				t.Fatalf("store not consistent: %v %v", describeReport(report), err)
			}
			wantManifests := 1
			if tc.wantEarly == 0 {
				wantManifests = 2 // the index and the instance
			}
			if n := reg.manifestGETsSince(t, mark, tc.repo); n != wantManifests {
				t.Fatalf("%d manifest requests, want %d", n, wantManifests)
			}
		})
	}
}

// fourthUnpacked reports whether a staging directory holds the fourth
// layer of TestStagedPullStacksLayersEarly's image whole: its 1 MiB file
// ("big1.bin") with all its bytes.
func fourthUnpacked(t *testing.T, staging string) bool {
	t.Helper()
	found := false
	_ = filepath.WalkDir(staging, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && e.Name() == "big1.bin" {
			if fi, err := e.Info(); err == nil && fi.Size() == 1<<20 {
				found = true
			}
		}
		return nil
	})
	return found
}

// lieAboutLastDiffID returns img's config with its last diff ID replaced
// by the first's, and the manifest for it.
func lieAboutLastDiffID(t *testing.T, img *testImage) (config, man blob) {
	t.Helper()
	var cfg imgspecv1.Image
	if err := json.Unmarshal(img.config.data, &cfg); err != nil {
		t.Fatal(err)
	}
	ids := cfg.RootFS.DiffIDs
	ids[len(ids)-1] = ids[0]
	cb, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	config = blob{mediaType: img.config.mediaType, data: cb}
	var m imgspecv1.Manifest
	if err := json.Unmarshal(img.manifest.data, &m); err != nil {
		t.Fatal(err)
	}
	m.Config = config.descriptor()
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return config, blob{mediaType: img.manifest.mediaType, data: mb}
}

// newCorruptingProxy forwards to a registry but flips the last byte of
// one blob; it returns its host:port.
func newCorruptingProxy(t *testing.T, upstream, badDigest string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp := forward(w, r, upstream)
		if resp == nil {
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+badDigest) && len(body) > 0 {
			body[len(body)-1] ^= 0xff
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestStagedPullsShareLayersConcurrently: images with layers in common,
// pulled at once, each stack the shared layers or find them stacked by
// another; every image is complete and the shared layer is stored once.
func TestStagedPullsShareLayersConcurrently(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	var refs []string
	for i := range 4 {
		img := buildImage(t, imageSpec{files: map[string]string{"id": fmt.Sprint("shared-", i)}, big: 1 << 20})
		// The busybox layer and the same big layer (its content depends
		// only on files and n: make it the same for all).
		big := buildImage(t, imageSpec{files: map[string]string{"id": "shared"}, big: 1 << 20})
		img.layers = append(img.layers[:2], big.layers[2])
		assembleImage(t, img, formatOCI, "")
		repo := fmt.Sprint("shared/app", i)
		reg.push(t, repo, "1", img)
		refs = append(refs, reg.Host+"/"+repo+":1")
	}
	env := newEnv(t, insecure(reg.Host), "")
	s := env.open(t)
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Go(func() { _, errs[i] = s.Pull(testCtx(t), ref, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Pull(%s): %v", refs[i], err)
		}
	}
	base := busyboxLayer(t).diffID
	if layers, err := s.Store().LayersByUncompressedDigest(base); err != nil || len(layers) != 1 {
		t.Fatalf("the shared base layer is stored %d times (%v), want once", len(layers), err)
	}
	report, err := s.Store().Check(storage.CheckMost())
	if err != nil || len(describeReport(report)) != 0 {
		t.Fatalf("store not consistent: %v %v", describeReport(report), err)
	}
	if left := stagedFiles(t, filepath.Join(env.opts.Root, "overlay", "staging")); len(left) != 0 {
		t.Fatalf("staging directories left: %v", left)
	}
	for _, ref := range refs {
		img, err := s.Store().Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for id := img.TopLayer; id != ""; n++ {
			l, err := s.Store().Layer(id)
			if err != nil {
				t.Fatalf("%s: layer %s: %v", ref, id, err)
			}
			id = l.Parent
		}
		if n != 3 {
			t.Fatalf("%s has %d layers, want 3", ref, n)
		}
	}
}

// TestStagedDestinationOnlyWhereItCan: pulls go through stagedest on
// overlay, and through containers/image's own destination when
// storage.conf enables partial pulls (which only that one makes) or the
// driver is not overlay.
func TestStagedDestinationOnlyWhereItCan(t *testing.T) {
	requireIntegration(t)
	for _, tc := range []struct {
		driver string
		pull   map[string]string
		want   bool
	}{
		{"overlay", nil, true},
		{"overlay", map[string]string{"enable_partial_images": "false"}, true},
		{"overlay", map[string]string{"enable_partial_images": "TRUE"}, false},
		{"vfs", nil, false},
	} {
		dir := t.TempDir()
		store, err := storage.GetStore(storagetypes.StoreOptions{
			GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"),
			GraphDriverName: tc.driver, PullOptions: tc.pull,
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := stagedest.Supported(store); got != tc.want {
			t.Errorf("%s with pull options %v: Supported = %v, want %v", tc.driver, tc.pull, got, tc.want)
		}
		_, _ = store.Shutdown(true)
	}
}

// TestStagedPullConfinesLayerPaths: a layer cannot write outside its own
// directory through symlinks it makes (absolute or climbing with ..), nor
// link to a file outside, nor change a directory's times through one. Each
// hostile image either fails to pull or unpacks inside the store; the
// directory on the host it aims at is untouched, and the daemon pulls a
// good image afterwards. Two things stop these: containers/storage's
// unpacking resolves paths within the layer itself, and it runs on a
// thread whose root is the layer's directory (unpackInRoot), as its own
// helper process did; either alone passes this test.
func TestStagedPullConfinesLayerPaths(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	host := t.TempDir() // what the layers aim at: it exists, so an unconfined unpack would write there
	secret := filepath.Join(host, "secret")
	if err := os.WriteFile(secret, []byte("host file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	climb := strings.Repeat("../", 40) + strings.TrimPrefix(host, "/")
	cases := map[string][]tarEntry{
		"absolute-symlink": {
			{name: "out", link: host},
			{name: "out/written", mode: 0o644, data: []byte("escaped\n")},
		},
		"climbing-symlink": {
			{name: "up", link: climb},
			{name: "up/written", mode: 0o644, data: []byte("escaped\n")},
		},
		"symlink-then-dir": {
			{name: "d", link: host},
			{name: "d/sub/", mode: 0o755, dir: true},
			{name: "d/sub/written", mode: 0o644, data: []byte("escaped\n")},
		},
		"hardlink-out": {
			{name: "hl", hardlink: climb + "/secret"},
		},
		"symlink-to-secret-then-write": {
			{name: "s", link: secret},
			{name: "s", mode: 0o644, data: []byte("overwritten\n")},
		},
		// Directories' times are set after every entry, and "d" is a
		// symlink to the host directory by then.
		"dir-replaced-by-symlink": {
			{name: "d/", mode: 0o755, dir: true},
			{name: "d", link: host},
		},
	}
	hostTime := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(host, hostTime, hostTime); err != nil {
		t.Fatal(err)
	}
	env := newEnv(t, insecure(reg.Host), "")
	s := env.open(t)
	for name, entries := range cases {
		layer, err := makeLayer(entries, imgspecv1.MediaTypeImageLayerGzip)
		if err != nil {
			t.Fatal(err)
		}
		img := &testImage{platform: hostPlatform(), layers: []blob{busyboxLayer(t), layer}}
		assembleImage(t, img, formatOCI, "")
		reg.push(t, "hostile/"+name, "1", img)
		_, err = s.Pull(testCtx(t), reg.Host+"/hostile/"+name+":1", nil)
		t.Logf("%s: pull error: %v", name, err)
		entries, rerr := os.ReadDir(host)
		if rerr != nil || len(entries) != 1 {
			t.Errorf("%s: the host directory now holds %v (%v), want only the secret", name, entries, rerr)
		}
		if b, _ := os.ReadFile(secret); string(b) != "host file\n" {
			t.Errorf("%s: the host file now holds %q", name, b)
		}
		if st, err := os.Stat(host); err != nil || !st.ModTime().Equal(hostTime) {
			t.Errorf("%s: the host directory's time is now %v (%v), want %v", name, st.ModTime(), err, hostTime)
		}
		if left := stagedFiles(t, filepath.Join(env.opts.Root, "overlay", "staging")); len(left) != 0 {
			t.Errorf("%s: staging directories left: %v", name, left)
		}
	}
	good := buildImage(t, imageSpec{files: map[string]string{"id": "after-hostile"}})
	reg.push(t, "hostile/good", "1", good)
	mustPull(t, s, reg.Host+"/hostile/good:1", nil)
}

// TestStagedPullSchema1EmptyLayers: a Docker schema 1 image, whose
// throwaway history entries list a layer blob that is not part of the
// stack (containers/image marks them EmptyLayer), is stored by the staging
// destination exactly as containers/image's own destination stores it:
// the empty layers are unpacked like any blob but never stacked, and
// nothing is left in staging. The test registry refuses schema 1
// manifests, so the image comes from a dir: layout.
func TestStagedPullSchema1EmptyLayers(t *testing.T) {
	env := newEnv(t, "", "")
	s := env.open(t)
	mustLayer := func(entries []tarEntry) blob {
		t.Helper()
		b, err := makeLayerCompressed(entries, imgspecv1.MediaTypeImageLayerGzip, compressGzip)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := mustLayer([]tarEntry{{name: "etc/", mode: 0o755, dir: true}, {name: "etc/base", mode: 0o644, data: []byte("base\n")}})
	empty := mustLayer(nil)
	top := mustLayer([]tarEntry{{name: "etc/top", mode: 0o600, data: []byte("top\n")}})
	src := writeSchema1Dir(t, []blob{base, empty, top}, []bool{false, true, false})

	const name = "localhost/staged/schema1:1"
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	copyDir := func(store storage.Store, staged bool) {
		t.Helper()
		if err := copyDirImage(t, store, staged, env, src, named); err != nil {
			t.Fatalf("copy.Image (staged %v): %v", staged, err)
		}
	}
	copyDir(s.Store(), true)
	want := copyImagesWithContainersImage(t, env, nil)
	copyDir(want, false)

	got := describeStoredImage(t, s.Store(), name)
	if diff := diffLines(describeStoredImage(t, want, name), got); diff != "" {
		t.Fatalf("staged schema 1 pull differs from containers/image's (- containers/image, + crio):\n%s", diff)
	}
	if layers := slices.DeleteFunc(slices.Clone(got), func(l string) bool { return !strings.Contains(l, " diff id ") }); len(layers) != 2 {
		t.Fatalf("want the 2 non-empty layers stacked, the store has %d: %v", len(layers), layers)
	}

	// A throwaway entry whose blob is too large to keep whole fails the
	// pull before any layer is stacked.
	var noise []byte // incompressible: a chain of digests
	for sum := sha256.Sum256(nil); len(noise) < 3*maxEmptyLayerSizeForTest; sum = sha256.Sum256(sum[:]) {
		noise = append(noise, sum[:]...)
	}
	fat := mustLayer([]tarEntry{{name: "noise", mode: 0o644, data: noise}})
	other := mustLayer([]tarEntry{{name: "other", mode: 0o644, data: []byte("other\n")}})
	before, err := s.Store().Layers()
	if err != nil {
		t.Fatal(err)
	}
	fatNamed, err := reference.ParseNormalizedNamed("localhost/staged/schema1-fat:1")
	if err != nil {
		t.Fatal(err)
	}
	err = copyDirImage(t, s.Store(), true, env, writeSchema1Dir(t, []blob{other, fat, top}, []bool{false, true, false}), fatNamed)
	if err == nil || !strings.Contains(err.Error(), "empty (throwaway) layer") {
		t.Fatalf("a large throwaway layer: want an error naming it, got %v", err)
	}
	after, err := s.Store().Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("the failed pull left layers: %d before, %d after", len(before), len(after))
	}
	if left := stagedFiles(t, filepath.Join(env.opts.Root, "overlay", "staging")); len(left) != 0 {
		t.Fatalf("staging directories left: %v", left)
	}
	report, err := s.Store().Check(storage.CheckMost())
	if err != nil || len(describeReport(report)) != 0 {
		t.Fatalf("store not consistent: %v %v", describeReport(report), err)
	}
}

// maxEmptyLayerSizeForTest is stagedest's bound on the blobs it keeps for
// empty layers.
const maxEmptyLayerSizeForTest = 4 << 10

// copyDirImage copies src into store under named, through the staging
// destination when staged.
func copyDirImage(t *testing.T, store storage.Store, staged bool, env *testEnv, src types.ImageReference, named reference.Named) error {
	t.Helper()
	dest, err := istorage.Transport.NewStoreReference(store, named, "")
	if err != nil {
		t.Fatal(err)
	}
	var to types.ImageReference = dest
	if staged {
		if !stagedest.Supported(store) {
			t.Fatal("the overlay store does not take staged layers")
		}
		to = stagedest.NewReference(dest, store, env.opts.BigFilesTemporaryDir, nil)
	}
	_, err = copy.Image(testCtx(t), acceptAllPolicyContext(t), to, src, &copy.Options{RemoveSignatures: true})
	return err
}

// acceptAllPolicyContext is a policy context that accepts any image,
// destroyed at the test's end.
func acceptAllPolicyContext(t *testing.T) *signature.PolicyContext {
	t.Helper()
	policy, err := signature.NewPolicyFromBytes([]byte(acceptAllPolicy))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Destroy() })
	return pc
}

// writeSchema1Dir lays out, in containers/image's dir: format, an unsigned
// schema 1 image of layers (bottom first), those marked throwaway carrying
// no stack entry of their own.
func writeSchema1Dir(t *testing.T, layers []blob, throwaway []bool) types.ImageReference {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("version", []byte("Directory Transport Version: 1.1\n"))
	type fsLayer struct {
		BlobSum digest.Digest `json:"blobSum"`
	}
	type history struct {
		V1Compatibility string `json:"v1Compatibility"`
	}
	var fsLayers []fsLayer
	var hist []history
	parent := ""
	for i, l := range layers {
		write(l.digest().Encoded(), l.data)
		id := strings.Repeat(fmt.Sprintf("%x", i+1), 64)
		v1 := map[string]any{"id": id, "created": "2024-01-02T03:04:05Z"}
		if parent != "" {
			v1["parent"] = parent
		}
		if throwaway[i] {
			v1["throwaway"] = true
			v1["container_config"] = map[string]any{"Cmd": []string{"/bin/sh -c #(nop) ENV A=1"}}
		}
		if i == len(layers)-1 {
			p := hostPlatform()
			v1["architecture"], v1["os"] = p.Architecture, p.OS
			v1["config"] = map[string]any{"Env": []string{"A=1"}, "Cmd": []string{"/bin/sh"}}
		}
		b, err := json.Marshal(v1)
		if err != nil {
			t.Fatal(err)
		}
		// Top first, as schema 1 lists them.
		fsLayers = append([]fsLayer{{BlobSum: l.digest()}}, fsLayers...)
		hist = append([]history{{V1Compatibility: string(b)}}, hist...)
		parent = id
	}
	m, err := json.Marshal(map[string]any{
		"schemaVersion": 1, "name": "staged/schema1", "tag": "1",
		"architecture": hostPlatform().Architecture, "fsLayers": fsLayers, "history": hist,
	})
	if err != nil {
		t.Fatal(err)
	}
	write("manifest.json", m)
	ref, err := directory.NewReference(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
