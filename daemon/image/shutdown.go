package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"go.podman.io/storage"
	"golang.org/x/sys/unix"
)

// repairStore runs the storage library's consistency check and removes
// what it finds broken: layers left half-written by a crash, and images
// whose layers are gone. Without this, one damaged layer makes every later
// image operation fail with "layer not known". Containers are kept: a
// container whose image is damaged belongs to the container service, and
// it may still be running.
func repairStore(store storage.Store, o *Options) error {
	report, err := store.Check(storage.CheckMost())
	if err != nil {
		return fmt.Errorf("checking storage: %w", err)
	}
	problems := describeReport(report)
	if len(problems) == 0 {
		o.Logger.Info("storage check found no problems")
		return nil
	}
	for _, p := range problems {
		o.Logger.Warn("storage damage", "item", p)
	}
	errs := store.Repair(report, &storage.RepairOptions{RemoveContainers: false})
	if len(errs) > 0 {
		return fmt.Errorf("repairing storage: %w", errors.Join(errs...))
	}
	o.Logger.Info("storage repaired", "removed", len(problems))
	return nil
}

// describeReport flattens a CheckReport into sorted "kind id: error" lines.
func describeReport(r storage.CheckReport) []string {
	var out []string
	add := func(kind string, m map[string][]error) {
		for id, errs := range m {
			out = append(out, fmt.Sprintf("%s %s: %v", kind, id, errors.Join(errs...)))
		}
	}
	add("layer", r.Layers)
	add("read-only layer", r.ROLayers)
	add("image", r.Images)
	add("read-only image", r.ROImages)
	add("container", r.Containers)
	sort.Strings(out)
	return out
}

// writeCleanShutdown records a graceful stop. The store's filesystem is
// synced first: the marker promises that everything before it is on disk.
func writeCleanShutdown(path, graphRoot string) error {
	if path == "" {
		return nil
	}
	syncFS(graphRoot)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating directory for clean shutdown marker: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("writing clean shutdown marker: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing clean shutdown marker: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing clean shutdown marker: %w", err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir makes a create or remove in dir durable; best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// syncFS flushes the filesystem holding dir; best effort.
func syncFS(dir string) {
	if fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		_ = unix.Syncfs(fd)
		unix.Close(fd)
	}
}
