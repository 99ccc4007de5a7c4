package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// FsInfo measures the store. It walks the directories (as du does), which
// costs a stat per file; the kubelet calls it every few seconds, the same
// price CRI-O pays.
func (s *Service) FsInfo(ctx context.Context) (*FsInfo, error) {
	ctrs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("listing containers for filesystem usage: %w", err)
	}
	ctrLayers := map[string]bool{}
	for _, c := range ctrs {
		ctrLayers[c.LayerID] = true
	}
	driver := s.store.GraphDriverName()
	graphRoot := s.store.GraphRoot()
	imageRoot := s.store.ImageStore()
	if imageRoot == "" {
		imageRoot = graphRoot
	}
	now := time.Now()
	info := &FsInfo{
		Images:     FsUsage{Mountpoint: imageRoot, Timestamp: now},
		Containers: FsUsage{Mountpoint: graphRoot, Timestamp: now},
	}
	seen := map[inodeKey]bool{}
	roots := []string{graphRoot}
	if imageRoot != graphRoot {
		roots = append(roots, imageRoot)
	}
	for _, root := range roots {
		if err := measureRoot(ctx, root, driver, ctrLayers, seen, info); err != nil {
			return nil, err
		}
	}
	return info, nil
}

// measureRoot adds one store root to info: <driver>/<layer> goes to
// containers when the layer is a container's, <driver>-containers always
// does, everything else counts as image data.
func measureRoot(ctx context.Context, root, driver string, ctrLayers map[string]bool, seen map[inodeKey]bool, info *FsInfo) error {
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
		case e.Name() == driver && e.IsDir():
			layers, err := os.ReadDir(p)
			if err != nil {
				return fmt.Errorf("reading layer directory %s: %w", p, err)
			}
			for _, l := range layers {
				target := &info.Images
				if ctrLayers[l.Name()] {
					target = &info.Containers
				}
				if err := diskUsage(ctx, filepath.Join(p, l.Name()), dev, seen, target); err != nil {
					return err
				}
			}
		case strings.HasSuffix(e.Name(), "-containers"):
			if err := diskUsage(ctx, p, dev, seen, &info.Containers); err != nil {
				return err
			}
		default:
			if err := diskUsage(ctx, p, dev, seen, &info.Images); err != nil {
				return err
			}
		}
	}
	return nil
}

type inodeKey struct{ dev, ino uint64 }

// diskUsage adds the allocated size and inode count under path to u. It
// stays on one filesystem (a mounted container rootfs is not the store's
// space) and counts a hard-linked inode once.
func diskUsage(ctx context.Context, path string, dev uint64, seen map[inodeKey]bool, u *FsUsage) error {
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil // removed while walking
			}
			return fmt.Errorf("measuring %s: %w", p, err)
		}
		if ctx.Err() != nil {
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
		if seen[k] {
			return nil
		}
		seen[k] = true
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
