package stats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Usage is the space and inodes a directory tree takes.
type Usage struct {
	Bytes  uint64 // allocated, as du counts it
	Inodes uint64
	// Truncated: the walk stopped at its bound (entries or depth), so the
	// numbers are a lower bound.
	Truncated bool
	At        time.Time
}

// Walk bounds. A writable layer rarely holds more than a few thousand
// files; one that holds millions is measured up to the bound and reported
// as at least that.
const (
	defaultMaxEntries = 500_000
	maxDepth          = 128
)

// MeasureDir walks the tree at root, on root's filesystem only, counting
// allocated bytes and inodes (a hard-linked inode once). It opens every
// directory relative to its parent without following symlinks, so a
// container rearranging its files during the walk cannot send it outside
// the tree. At most maxEntries entries are visited.
func MeasureDir(ctx context.Context, root string, maxEntries int) (Usage, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return Usage{}, fmt.Errorf("measure %s: %w", root, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return Usage{}, fmt.Errorf("measure %s: %w", root, err)
	}
	w := &walker{dev: st.Dev, max: maxEntries, links: map[uint64]struct{}{}}
	w.count(&st)
	err = w.dir(ctx, fd, 0)
	w.u.At = time.Now()
	if err != nil {
		return Usage{}, fmt.Errorf("measure %s: %w", root, err)
	}
	return w.u, nil
}

type walker struct {
	dev     uint64
	max     int
	entries int
	links   map[uint64]struct{} // inodes with more than one link, seen
	u       Usage
}

func (w *walker) count(st *unix.Stat_t) {
	w.entries++
	if st.Nlink > 1 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if _, seen := w.links[st.Ino]; seen {
			return
		}
		w.links[st.Ino] = struct{}{}
	}
	w.u.Inodes++
	w.u.Bytes += uint64(st.Blocks) * 512
}

// dir walks the directory open as fd and closes it.
func (w *walker) dir(ctx context.Context, fd, depth int) error {
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	for {
		names, err := f.Readdirnames(512)
		for _, name := range names {
			if w.entries >= w.max {
				w.u.Truncated = true
				return nil
			}
			if w.entries%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			var st unix.Stat_t
			if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				continue // removed while walking
			}
			if st.Dev != w.dev {
				continue // something mounted inside: not this layer's space
			}
			w.count(&st)
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue
			}
			if depth+1 >= maxDepth {
				w.u.Truncated = true
				continue
			}
			child, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				continue // replaced by a non-directory, or removed
			}
			if err := w.dir(ctx, child, depth+1); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || len(names) == 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// layerCache keeps the last measurement of each container's writable
// layer. The kubelet asks every few seconds for every container; walking
// each tree that often would cost more than the containers. A measurement
// is reused for a while that grows with what it cost (at least minTTL),
// and a stale one is answered at once while a refresh runs in the
// background, at most maxWalks of them at a time.
type layerCache struct {
	maxEntries int
	sem        chan struct{}
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup

	mu        sync.Mutex
	entries   map[string]*layerEntry
	lastPrune time.Time
}

type layerEntry struct {
	dir  string
	u    Usage
	ttl  time.Duration
	busy bool
	used time.Time
}

const (
	minTTL   = 10 * time.Second
	maxTTL   = 5 * time.Minute
	maxWalks = 2
	// forgetAfter drops the measurement of a container nobody asked
	// about for this long (it was removed).
	forgetAfter = 10 * time.Minute
)

func newLayerCache(maxEntries int) *layerCache {
	if maxEntries <= 0 {
		maxEntries = defaultMaxEntries
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &layerCache{
		maxEntries: maxEntries, sem: make(chan struct{}, maxWalks),
		ctx: ctx, cancel: cancel, entries: map[string]*layerEntry{},
	}
}

// close stops background walks and waits for them.
func (c *layerCache) close() {
	c.cancel()
	c.wg.Wait()
}

// get returns the usage of dir, the writable layer of container id.
func (c *layerCache) get(ctx context.Context, id, dir string) (Usage, error) {
	now := time.Now()
	c.mu.Lock()
	c.pruneLocked(now)
	e := c.entries[id]
	if e != nil && e.dir == dir {
		e.used = now
		u := e.u
		if now.Sub(u.At) > e.ttl && !e.busy {
			e.busy = true
			c.wg.Add(1)
			go c.refresh(id, e)
		}
		c.mu.Unlock()
		return u, nil
	}
	c.mu.Unlock()

	// Nothing yet: measure now, so the first answer has a value. The walk
	// is bounded, and takes a slot like the background ones.
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return Usage{}, ctx.Err()
	}
	start := time.Now()
	u, err := MeasureDir(ctx, dir, c.maxEntries)
	<-c.sem
	if err != nil {
		return Usage{}, err
	}
	c.mu.Lock()
	c.entries[id] = &layerEntry{dir: dir, u: u, ttl: ttlFor(time.Since(start)), used: now}
	c.mu.Unlock()
	return u, nil
}

func (c *layerCache) refresh(id string, e *layerEntry) {
	defer c.wg.Done()
	select {
	case c.sem <- struct{}{}:
	case <-c.ctx.Done():
		return
	}
	start := time.Now()
	u, err := MeasureDir(c.ctx, e.dir, c.maxEntries)
	<-c.sem
	c.mu.Lock()
	defer c.mu.Unlock()
	e.busy = false
	if err == nil {
		e.u, e.ttl = u, ttlFor(time.Since(start))
	} else {
		// Keep the old value, and do not retry before another period.
		e.u.At = time.Now()
	}
}

// ttlFor spends at most about 2% of the time walking one layer.
func ttlFor(walk time.Duration) time.Duration {
	return min(max(50*walk, minTTL), maxTTL)
}

func (c *layerCache) pruneLocked(now time.Time) {
	if now.Sub(c.lastPrune) < time.Minute {
		return
	}
	c.lastPrune = now
	for id, e := range c.entries {
		if now.Sub(e.used) > forgetAfter && !e.busy {
			delete(c.entries, id)
		}
	}
}
