package cgroups

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// v1Controllers maps each cgroup v1 controller to the mount point of its
// hierarchy, from the super options of the cgroup mounts in mountinfo
// ("rw,cpu,cpuacct" mounts one hierarchy for both). Named hierarchies
// ("name=systemd") hold no controller and are left out.
func v1Controllers(mountinfo string) (map[string]string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("detect cgroup controllers: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		sep := slices.Index(fields, "-")
		if sep < 0 || sep+3 >= len(fields) || len(fields) < 5 || fields[sep+1] != "cgroup" {
			continue
		}
		for _, opt := range strings.Split(fields[sep+3], ",") {
			if !controllerName(opt) {
				continue
			}
			if _, dup := out[opt]; !dup { // the first mount of a hierarchy wins, as the kernel lists it
				out[opt] = fields[4]
			}
		}
	}
	return out, s.Err()
}

// controllerName tells a controller ("memory", "net_cls") from a mount
// option ("rw", "relatime", "name=systemd", "clone_children").
func controllerName(opt string) bool {
	switch opt {
	case "rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "clone_children",
		"xattr", "noprefix", "cpuset_v2_mode", "nsdelegate", "memory_recursiveprot", "favordynmods":
		return false
	}
	if opt == "" || strings.ContainsAny(opt, "=/") {
		return false
	}
	for _, r := range opt {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return true
}

// Dir is the directory of cgroup path for a controller ("memory", "cpu",
// "cpuacct", "pids", "blkio", "cpuset"): on v2 the one unified directory,
// on v1 the directory in that controller's hierarchy. It is "" when the
// host does not mount the controller. path must be clean and absolute
// (ParsePath), so the result stays inside the hierarchy.
func (h *Host) Dir(controller, path string) string {
	if h.V2 {
		if len(h.Roots) == 0 {
			return ""
		}
		return filepath.Join(h.Roots[0], path)
	}
	root, ok := h.Controllers[controller]
	if !ok {
		return ""
	}
	return filepath.Join(root, path)
}
