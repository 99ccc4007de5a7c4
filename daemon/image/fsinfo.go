package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FsUsage is the space and inodes used under one directory.
type FsUsage struct {
	Mountpoint string // the directory measured
	UsedBytes  uint64 // allocated bytes, as du counts them
	InodesUsed uint64
	Timestamp  time.Time
}

// FsInfo splits the store's usage between images (image layers and
// metadata) and containers (their writable layers and metadata). With
// imagestore set, image layers live there and container layers under root.
type FsInfo struct {
	Images     FsUsage
	Containers FsUsage
}

// ImageFsInfo costs. The kubelet asks every 10 s; walking every inode of
// the store each time would cost more than the images. So:
//   - a complete image layer never changes: it is walked once and its
//     numbers are kept (keyed by layer id) until the layer is gone;
//   - the whole answer is kept while the store's set of images, layers and
//     containers is the same, for a while that grows with what the
//     measurement cost (fsMinTTL to fsMaxTTL); a stale answer is returned
//     at once while one refresh runs in the background;
//   - when that set changed (a pull, a removal, a new container), the next
//     call measures at once, walking only what is not kept: new layers,
//     container layers and the store's metadata;
//   - one measurement visits at most fsMaxEntries entries; past that the
//     numbers are a lower bound.
const (
	fsMinTTL       = 10 * time.Second
	fsMaxTTL       = 5 * time.Minute
	fsMaxEntries   = 1_000_000
	fsLayerKeepTTL = time.Hour // a kept layer is walked again after this, should anything have changed it
)

// fsCache holds the last FsInfo answer and the kept image-layer numbers.
type fsCache struct {
	measureMu sync.Mutex // one measurement at a time

	mu     sync.Mutex
	last   *FsInfo
	key    string // the store's state the answer was measured for
	at     time.Time
	ttl    time.Duration
	busy   bool                   // a background refresh is running
	layers map[string]layerFsUsed // complete image layers, by id
	walks  int                    // measurements made, for tests
}

type layerFsUsed struct {
	dir           string
	bytes, inodes uint64
	at            time.Time
}

// storeState is what decides whether a kept answer still describes the
// store.
type storeState struct {
	key       string          // images, layers (with completeness) and containers
	ctrLayers map[string]bool // layers that are containers' writable layers
	complete  map[string]bool // layers that are complete (immutable)
}

func (s *Service) storeState() (*storeState, error) {
	ctrs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("listing containers for filesystem usage: %w", err)
	}
	layers, err := s.store.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers for filesystem usage: %w", err)
	}
	imgs, err := s.store.Images()
	if err != nil {
		return nil, fmt.Errorf("listing images for filesystem usage: %w", err)
	}
	st := &storeState{ctrLayers: map[string]bool{}, complete: map[string]bool{}}
	var ids []string
	for _, c := range ctrs {
		st.ctrLayers[c.LayerID] = true
		ids = append(ids, "c"+c.ID)
	}
	for _, l := range layers {
		if incomplete, _ := l.Flags["incomplete"].(bool); !incomplete {
			st.complete[l.ID] = true
			ids = append(ids, "l"+l.ID)
		} else {
			ids = append(ids, "p"+l.ID)
		}
	}
	for _, i := range imgs {
		ids = append(ids, "i"+i.ID)
	}
	slices.Sort(ids)
	h := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	st.key = hex.EncodeToString(h[:])
	return st, nil
}

// FsInfo reports the store's usage, from the cache described above.
func (s *Service) FsInfo(ctx context.Context) (*FsInfo, error) {
	st, err := s.storeState()
	if err != nil {
		return nil, err
	}
	c := &s.fs
	c.mu.Lock()
	if c.last != nil && c.key == st.key {
		if time.Since(c.at) > c.ttl && !c.busy && s.flights.base.Err() == nil {
			c.busy = true
			s.fsRefresh.Add(1)
			go s.refreshFsInfo()
		}
		out := *c.last
		c.mu.Unlock()
		return &out, nil
	}
	c.mu.Unlock()
	return s.measureFsInfo(ctx)
}

func (s *Service) refreshFsInfo() {
	defer s.fsRefresh.Done()
	if _, err := s.measureFsInfo(s.flights.base); err != nil && s.flights.base.Err() == nil {
		s.opts.Logger.Warn("measuring the image store in the background", "error", err)
	}
	c := &s.fs
	c.mu.Lock()
	c.busy = false
	if c.last != nil && time.Since(c.at) > c.ttl {
		c.at = time.Now() // failed: do not retry before another period
	}
	c.mu.Unlock()
}

// measureFsInfo walks the store (what is not kept) and keeps the answer.
func (s *Service) measureFsInfo(ctx context.Context) (*FsInfo, error) {
	c := &s.fs
	c.measureMu.Lock()
	defer c.measureMu.Unlock()
	st, err := s.storeState()
	if err != nil {
		return nil, err
	}
	// Another caller may have measured this very state while we waited.
	c.mu.Lock()
	if c.last != nil && c.key == st.key && time.Since(c.at) <= c.ttl {
		out := *c.last
		c.mu.Unlock()
		return &out, nil
	}
	kept := maps.Clone(c.layers)
	c.mu.Unlock()

	start := time.Now()
	driver := s.store.GraphDriverName()
	graphRoot := s.store.GraphRoot()
	imageRoot := s.store.ImageStore()
	if imageRoot == "" {
		imageRoot = graphRoot
	}
	info := &FsInfo{
		Images:     FsUsage{Mountpoint: imageRoot, Timestamp: start},
		Containers: FsUsage{Mountpoint: graphRoot, Timestamp: start},
	}
	m := &fsMeasure{driver: driver, st: st, kept: kept, fresh: map[string]layerFsUsed{},
		w: &duWalker{seen: map[inodeKey]bool{}, budget: fsMaxEntries}}
	roots := []string{graphRoot}
	if imageRoot != graphRoot {
		roots = append(roots, imageRoot)
	}
	for _, root := range roots {
		if err := m.root(ctx, root, info); err != nil {
			return nil, err
		}
	}
	if m.w.budget <= 0 {
		s.opts.Logger.Warn("image store measurement stopped at its bound; ImageFsInfo reports a lower bound", "entries", fsMaxEntries)
	}
	cost := time.Since(start)
	c.mu.Lock()
	c.last, c.key, c.at, c.ttl = info, st.key, time.Now(), min(max(50*cost, fsMinTTL), fsMaxTTL)
	c.layers = m.fresh // layers no longer in the store are dropped here
	c.walks++
	c.mu.Unlock()
	out := *info
	return &out, nil
}

// fsMeasure is one measurement of the store.
type fsMeasure struct {
	driver string
	st     *storeState
	kept   map[string]layerFsUsed // from earlier measurements
	fresh  map[string]layerFsUsed // to keep after this one
	w      *duWalker
}

// root adds one store root to info: <driver>/<layer> goes to containers
// when the layer is a container's, <driver>-containers always does,
// everything else counts as image data.
func (m *fsMeasure) root(ctx context.Context, root string, info *FsInfo) error {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading store root %s: %w", root, err)
	}
	dev, err := deviceOf(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(root, e.Name())
		switch {
		case e.Name() == m.driver && e.IsDir():
			layers, err := os.ReadDir(p)
			if err != nil {
				return fmt.Errorf("reading layer directory %s: %w", p, err)
			}
			for _, l := range layers {
				dir := filepath.Join(p, l.Name())
				if m.st.ctrLayers[l.Name()] {
					if err := m.w.du(ctx, dir, dev, &info.Containers); err != nil {
						return err
					}
					continue
				}
				if err := m.imageLayer(ctx, l.Name(), dir, dev, &info.Images); err != nil {
					return err
				}
			}
		case strings.HasSuffix(e.Name(), "-containers"):
			if err := m.w.du(ctx, p, dev, &info.Containers); err != nil {
				return err
			}
		default:
			if err := m.w.du(ctx, p, dev, &info.Images); err != nil {
				return err
			}
		}
	}
	return nil
}

// imageLayer adds one image layer, from the kept numbers when the layer is
// complete and was measured before. (Kept layers are not checked for hard
// links into other layers: overlay layers do not share inodes.)
func (m *fsMeasure) imageLayer(ctx context.Context, id, dir string, dev uint64, u *FsUsage) error {
	if k, ok := m.kept[id]; ok && k.dir == dir && m.st.complete[id] && time.Since(k.at) < fsLayerKeepTTL {
		u.UsedBytes += k.bytes
		u.InodesUsed += k.inodes
		m.fresh[id] = k
		return nil
	}
	var one FsUsage
	budget := m.w.budget
	if err := m.w.du(ctx, dir, dev, &one); err != nil {
		return err
	}
	u.UsedBytes += one.UsedBytes
	u.InodesUsed += one.InodesUsed
	// Keep only complete layers measured in full: a layer still being
	// written, or one the bound cut short, is walked again next time.
	if m.st.complete[id] && m.w.budget > 0 && budget > 0 {
		m.fresh[id] = layerFsUsed{dir: dir, bytes: one.UsedBytes, inodes: one.InodesUsed, at: time.Now()}
	}
	return nil
}

type inodeKey struct{ dev, ino uint64 }

// duWalker adds up allocated sizes and inode counts, as du does, over one
// measurement: it counts a hard-linked inode once and stops at its budget
// of entries.
type duWalker struct {
	seen   map[inodeKey]bool
	budget int
}

// du adds the allocated size and inode count under path to u. It stays on
// one filesystem (a mounted container rootfs is not the store's space).
func (w *duWalker) du(ctx context.Context, path string, dev uint64, u *FsUsage) error {
	if w.budget <= 0 {
		return nil
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // removed while walking
			}
			return fmt.Errorf("measuring %s: %w", p, err)
		}
		if w.budget <= 0 {
			return filepath.SkipAll
		}
		w.budget--
		if w.budget%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("measuring %s: %w", p, err)
		}
		if uint64(st.Dev) != dev {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		k := inodeKey{uint64(st.Dev), st.Ino}
		if w.seen[k] {
			return nil
		}
		if st.Nlink > 1 {
			w.seen[k] = true // only hard-linked inodes can be met twice
		}
		u.InodesUsed++
		u.UsedBytes += uint64(st.Blocks) * 512
		return nil
	})
}

func deviceOf(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", path, err)
	}
	return uint64(st.Dev), nil
}
