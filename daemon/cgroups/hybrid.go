package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// hybridRoot finds the cgroup2 hierarchy a hybrid host mounts beside its
// v1 ones (systemd puts it at /sys/fs/cgroup/unified); "" when there is
// none, or when /sys/fs/cgroup itself is cgroup2 (then pod cgroups are made
// there by Create and removed by Remove).
func hybridRoot(mountinfo string) (string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "", nil
	}
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		sep := slices.Index(fields, "-")
		if sep >= 5 && sep+1 < len(fields) && fields[sep+1] == "cgroup2" {
			return fields[4], nil
		}
	}
	return "", s.Err()
}

// RemoveHybrid removes a pod cgroup's directory, and what is below it, from
// a hybrid host's cgroup2 hierarchy. Create makes nothing there, but runc
// (cgroupfs driver) creates every container's cgroup path in it as well and
// on delete removes only the container's own directory, so each pod would
// leave its directory behind. Directories still in use stay (rmdir
// refuses them). It does nothing on a pure v1 or v2 host.
func RemoveHybrid(path string) error {
	if path == "" || path != filepath.Clean(path) || !filepath.IsAbs(path) || path == "/" {
		return nil // not a pod cgroup path (records hold clean absolute ones)
	}
	root, err := hybridRoot("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("find the cgroup2 hierarchy: %w", err)
	}
	if root == "" {
		return nil
	}
	top := filepath.Join(root, path)
	var dirs []string
	err = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove cgroup %s: %w", top, err)
	}
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- { // children first
		if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
		}
	}
	return errors.Join(errs...)
}
