package stagedest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
)

func TestLayerID(t *testing.T) {
	base := digest.FromString("base tar")
	top := digest.FromString("top tar")
	if got := layerID("", base); got != base.Encoded() {
		t.Errorf("base layer ID %s, want its diff ID %s", got, base.Encoded())
	}
	// The chain ID of containers/image: sha256 of "parent+diffID".
	want := digest.FromString(base.Encoded() + "+" + top.Encoded()).Encoded()
	if got := layerID(base.Encoded(), top); got != want {
		t.Errorf("layer ID %s, want %s", got, want)
	}
}

func TestDiffIDsFromConfig(t *testing.T) {
	a, b := digest.FromString("a"), digest.FromString("b")
	cfg := []byte(`{"rootfs":{"type":"layers","diff_ids":["` + a.String() + `","` + b.String() + `"]}}`)
	for _, mt := range []string{imgspecv1.MediaTypeImageManifest, manifest.DockerV2Schema2MediaType} {
		got, err := diffIDsFromConfig(mt, cfg, 2)
		if err != nil || len(got) != 2 || got[0] != a || got[1] != b {
			t.Errorf("%s: %v %v", mt, got, err)
		}
	}
	if _, err := diffIDsFromConfig(imgspecv1.MediaTypeImageManifest, cfg, 3); err == nil || !strings.Contains(err.Error(), "2 diff IDs for 3 layers") {
		t.Errorf("count mismatch: %v", err)
	}
	if _, err := diffIDsFromConfig(imgspecv1.MediaTypeImageManifest, []byte("{"), 1); err == nil {
		t.Error("a broken config was accepted")
	}
	if got, err := diffIDsFromConfig(manifest.DockerV2Schema1SignedMediaType, cfg, 2); got != nil || err != nil {
		t.Errorf("schema 1 has no config: %v %v", got, err)
	}
	if got, err := diffIDsFromConfig(imgspecv1.MediaTypeImageManifest, nil, 2); got != nil || err != nil {
		t.Errorf("no config kept: %v %v", got, err)
	}
}

func TestLimitedBuffer(t *testing.T) {
	b := &limitedBuffer{max: 4}
	b.Write([]byte("ab"))
	b.Write([]byte("cd"))
	if string(b.bytes()) != "abcd" {
		t.Fatalf("got %q", b.bytes())
	}
	if n, err := b.Write([]byte("e")); n != 1 || err != nil {
		t.Fatalf("a write over the limit must still be taken: %d %v", n, err)
	}
	if b.bytes() != nil {
		t.Fatalf("over the limit, kept %q", b.bytes())
	}
}

func TestIsRootName(t *testing.T) {
	for name, want := range map[string]bool{".": true, "./": true, "/": true, "./etc": false, "..": false, "etc/": false} {
		if isRootName(name) != want {
			t.Errorf("isRootName(%q) = %v", name, !want)
		}
	}
}

// TestPruneStale: a staging directory whose lock nobody holds goes, with
// a lock file or without one (left between its making and its locking),
// and the store's other directories stay.
func TestPruneStale(t *testing.T) {
	root := t.TempDir()
	if n, err := PruneStale(root); n != 0 || err != nil {
		t.Fatalf("no staging directory: %d %v", n, err)
	}
	staging := filepath.Join(root, "overlay", "staging")
	mk := func(name string, lock bool) string {
		dir := filepath.Join(staging, name)
		if err := os.MkdirAll(filepath.Join(dir, "dir", "etc"), 0o700); err != nil {
			t.Fatal(err)
		}
		if lock {
			if err := os.WriteFile(filepath.Join(dir, "staging.lock"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	unlocked := mk("1", true)
	lockless := mk("2", false)
	layer := filepath.Join(root, "overlay", "l1", "diff")
	if err := os.MkdirAll(layer, 0o755); err != nil {
		t.Fatal(err)
	}
	n, err := PruneStale(root)
	if err != nil || n != 2 {
		t.Fatalf("PruneStale = %d, %v; want 2", n, err)
	}
	for dir, want := range map[string]bool{unlocked: false, lockless: false, layer: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", dir, err == nil, want)
		}
	}
}

// TestInRoot: fn sees dir as /, and the rest of the process keeps its
// root and working directory, during fn and after it.
func TestInRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "inside"), []byte("in"), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	err = inRoot(dir, func() error {
		if b, err := os.ReadFile("/inside"); err != nil || string(b) != "in" {
			return fmt.Errorf("/inside in the new root: %q %v", b, err)
		}
		if _, err := os.Stat(dir); err == nil {
			return fmt.Errorf("%s is visible inside the new root", dir)
		}
		// Another goroutine, on another thread, still has the old root.
		seen := make(chan error)
		go func() { _, err := os.Stat(filepath.Join(dir, "inside")); seen <- err }()
		return <-seen
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "inside")); err != nil {
		t.Fatalf("after inRoot: %v", err)
	}
	if got, err := os.Getwd(); err != nil || got != wd {
		t.Fatalf("working directory %q (%v), want %q", got, err, wd)
	}
	if err := inRoot(filepath.Join(dir, "missing"), func() error { return nil }); err == nil {
		t.Fatal("inRoot of a missing directory succeeded")
	}
}
