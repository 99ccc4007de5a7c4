// Package cgroups creates and removes pod cgroups with the cgroupfs driver,
// on cgroup v1 (one directory per mounted hierarchy) or v2 (one unified
// directory), whichever the host runs.
//
// It only removes directories it created: with the kubelet, the pod's
// cgroup_parent usually exists already (the kubelet made it and will remove
// it), and deleting it from under the kubelet would break its accounting.
package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Host describes the cgroup layout found on this machine.
type Host struct {
	// V2 is true on a unified (cgroup v2 only) host.
	V2 bool
	// Roots are the hierarchy mount points pod cgroups are created in: every
	// v1 hierarchy, or the single v2 mount.
	Roots []string
	// Controllers maps each v1 controller to its hierarchy's mount point
	// (see Dir); empty on v2.
	Controllers map[string]string
}

// Detect looks at the host: /sys/fs/cgroup being a cgroup2 mount means a
// unified host; otherwise each cgroup v1 mount from mountinfo is a root (a
// hybrid host's cgroup2 mount holds no controllers and is left alone).
func Detect() (*Host, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return nil, fmt.Errorf("detect cgroups: %w", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return &Host{V2: true, Roots: []string{"/sys/fs/cgroup"}}, nil
	}
	roots, err := v1Mounts("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	if len(roots) == 0 {
		return nil, errors.New("detect cgroups: no cgroup v1 hierarchy mounted and /sys/fs/cgroup is not cgroup2")
	}
	ctrl, err := v1Controllers("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return &Host{Roots: roots, Controllers: ctrl}, nil
}

// v1Mounts lists the mount points of cgroup (v1) file systems.
func v1Mounts(mountinfo string) ([]string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("detect cgroups: %w", err)
	}
	defer f.Close()
	var roots []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1<<20)
	for s.Scan() {
		// "id parent maj:min root mountpoint opts [optional...] - fstype source superopts"
		fields := strings.Fields(s.Text())
		sep := slices.Index(fields, "-")
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		if fields[sep+1] == "cgroup" && !slices.Contains(roots, fields[4]) {
			roots = append(roots, fields[4])
		}
	}
	return roots, s.Err()
}

// ParsePath turns a CRI cgroup_parent into a cgroupfs path relative to the
// hierarchy roots. With the systemd manager the kubelet sends slice names
// ("kubepods-besteffort-pod1.slice"), expanded the way systemd nests them.
// The result is clean and absolute and cannot leave the hierarchy.
func ParsePath(manager, parent string) (string, error) {
	if len(parent) > 4096 || strings.ContainsAny(parent, "\x00\n\r") {
		return "", errors.New("contains control characters or is too long")
	}
	if manager == "systemd" {
		// systemd's tree is named by units: the kubelet's systemd
		// driver sends slice names, and a path would be a tree systemd
		// does not know.
		if !strings.HasSuffix(parent, ".slice") || strings.Contains(parent, "/") {
			return "", errors.New("with cgroup_manager \"systemd\" it must be a slice name, such as kubepods-besteffort-pod<uid>.slice")
		}
		return SlicePath(parent)
	}
	if !strings.HasPrefix(parent, "/") {
		return "", errors.New("must be an absolute cgroupfs path")
	}
	for _, c := range strings.Split(parent, "/") {
		if c == ".." || c == "." {
			return "", errors.New("must not contain . or .. components")
		}
	}
	return filepath.Clean(parent), nil
}

func expandSlice(slice string) (string, error) {
	name := strings.TrimSuffix(slice, ".slice")
	if name == "" || name == "-" {
		return "/", nil
	}
	if strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") || strings.Contains(name, "--") {
		return "", fmt.Errorf("invalid slice name %q", slice)
	}
	var path, prefix string
	for _, part := range strings.Split(name, "-") {
		prefix += part
		path += "/" + prefix + ".slice"
		prefix += "-"
	}
	return path, nil
}

// Cgroup is a pod cgroup: its path and the directories this package made
// for it (deepest last), which are the only ones Remove deletes.
type Cgroup struct {
	Path string `json:"path"`
	// Dirs is the cgroup's directory in each hierarchy, where processes
	// are moved in (cgroup.procs).
	Dirs    []string `json:"dirs,omitempty"`
	Created []string `json:"created,omitempty"`
	// Slice is, with the systemd driver, the slice the cgroup is (a
	// pod's) or is in (a scope's).
	Slice string `json:"slice,omitempty"`
	// Unit is, with the systemd driver, the unit crio started for this
	// cgroup, which Remove stops; "" when the unit is someone else's.
	Unit string `json:"unit,omitempty"`

	pending bool // a scope Join has yet to start
}

// Join puts pid into the cgroup: a scope the systemd driver described is
// started with it; otherwise pid is written to each directory's
// cgroup.procs.
func Join(cg *Cgroup, pid int) error {
	if cg.pending {
		if err := startScope(cg.Unit, cg.Slice, pid); err != nil {
			return err
		}
		cg.pending = false
		return nil
	}
	for _, dir := range cg.Dirs {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", dir, err)
		}
	}
	return nil
}

// Create makes path (relative to every root) and its missing ancestors.
func (h *Host) Create(path string) (*Cgroup, error) {
	cg := &Cgroup{Path: path}
	for _, root := range h.Roots {
		cg.Dirs = append(cg.Dirs, filepath.Join(root, path))
		dir := root
		for _, c := range strings.Split(strings.Trim(path, "/"), "/") {
			if c == "" {
				continue
			}
			parent := dir
			dir = filepath.Join(dir, c)
			err := os.Mkdir(dir, 0o755)
			if errors.Is(err, os.ErrExist) {
				continue
			}
			if err != nil {
				_ = Remove(cg)
				return nil, fmt.Errorf("create cgroup %s: %w", dir, err)
			}
			cg.Created = append(cg.Created, dir)
			if err := h.initDir(parent, dir); err != nil {
				_ = Remove(cg)
				return nil, err
			}
		}
	}
	return cg, nil
}

// initDir makes a new directory usable. v1 cpuset starts with empty cpus
// and mems, in which no task can run: copy the parent's. v2 needs the
// parent to delegate controllers to its children.
func (h *Host) initDir(parent, dir string) error {
	if h.V2 {
		ctrl, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
		if err != nil {
			return nil // not a cgroup dir we can manage further; leave it plain
		}
		for _, c := range strings.Fields(string(ctrl)) {
			// Best effort: a controller the parent cannot delegate (e.g. it has
			// processes of its own) is simply not available below.
			_ = os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+"+c), 0)
		}
		return nil
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil // not the cpuset hierarchy
		}
		if strings.TrimSpace(string(cur)) != "" {
			continue
		}
		v, err := os.ReadFile(filepath.Join(parent, f))
		if err != nil {
			return fmt.Errorf("init cgroup %s: %w", dir, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), v, 0); err != nil {
			return fmt.Errorf("init cgroup %s: %s: %w", dir, f, err)
		}
	}
	return nil
}

// Remove deletes the directories Create made, deepest first. It is
// idempotent. The pod's own directory still holding tasks is retried
// briefly (a process that was just killed takes a moment to leave), then
// reported. An ancestor that Create made but that now holds other pods'
// cgroups is shared and left in place.
func Remove(cg *Cgroup) error {
	if cg == nil {
		return nil
	}
	leafSuffix := "/" + strings.Trim(cg.Path, "/")
	var errs []error
	if cg.Unit != "" && !cg.pending {
		// systemd removes the unit's directories itself, and kills what
		// is left in them.
		if err := stopUnit(cg.Unit); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(cg.Created) - 1; i >= 0; i-- {
		dir := cg.Created[i]
		leaf := strings.HasSuffix(dir, leafSuffix)
		var err error
		for try := 0; try < 20; try++ {
			err = unix.Rmdir(dir)
			if err == nil || errors.Is(err, unix.ENOENT) {
				err = nil
				break
			}
			if !errors.Is(err, unix.EBUSY) || !leaf {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil && (leaf || !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY)) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}
