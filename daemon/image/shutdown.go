package image

import (
	"errors"
	"fmt"
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

// syncFS flushes the filesystem holding dir; best effort.
func syncFS(dir string) {
	if fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		_ = unix.Syncfs(fd)
		unix.Close(fd)
	}
}
