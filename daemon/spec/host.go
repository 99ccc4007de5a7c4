package spec

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// RealHost answers Host questions from the running kernel. The zero value
// is ready to use; Facts are read once.
type RealHost struct {
	once  sync.Once
	facts HostFacts
}

var _ Host = (*RealHost)(nil)

// Devices returns the device at path, or all devices below a directory.
func (h *RealHost) Devices(path string) ([]rspec.LinuxDevice, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("device %s: %w", path, ErrNotFound)
		}
		return nil, fmt.Errorf("device %s: %w", path, err)
	}
	if !fi.IsDir() {
		d, ok, err := deviceOf(path)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s is not a device node", path)
		}
		return []rspec.LinuxDevice{d}, nil
	}
	return walkDevices(path, nil)
}

// AllDevices lists /dev, leaving out the pseudo-terminals and mounts that
// every container gets its own of.
func (h *RealHost) AllDevices() ([]rspec.LinuxDevice, error) {
	return walkDevices("/dev", map[string]bool{"/dev/pts": true, "/dev/shm": true, "/dev/mqueue": true, "/dev/.lxc": true, "/dev/.udev": true})
}

func walkDevices(root string, skip map[string]bool) ([]rspec.LinuxDevice, error) {
	var out []rspec.LinuxDevice
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // a node that vanished or cannot be read is simply not passed on
		}
		if skip[p] && de.IsDir() {
			return filepath.SkipDir
		}
		if de.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		d, ok, err := deviceOf(p)
		if err == nil && ok {
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list devices under %s: %w", root, err)
	}
	return out, nil
}

// deviceOf describes the device node at p (symlinks followed); ok is false
// for anything else.
func deviceOf(p string) (rspec.LinuxDevice, bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return rspec.LinuxDevice{}, false, fmt.Errorf("device %s: %w", p, err)
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return rspec.LinuxDevice{}, false, nil
	}
	mode := fs.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return rspec.LinuxDevice{
		Path: p, Type: typ,
		Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, true, nil
}

// Propagation finds the mount holding path in /proc/self/mountinfo and
// reads its propagation tags.
func (h *RealHost) Propagation(path string) (shared, slave bool, err error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false, false, fmt.Errorf("mount propagation of %s: %w", path, err)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, false, fmt.Errorf("mount propagation of %s: %w", path, err)
	}
	defer f.Close()
	best := -1
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1<<20)
	for s.Scan() {
		// "id parent maj:min root mountpoint opts [optional...] - fstype source superopts"
		fields := strings.Fields(s.Text())
		if len(fields) < 7 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if !within(real, mp) || len(mp) < best {
			continue
		}
		best = len(mp)
		shared, slave = false, false
		for _, opt := range fields[6:] {
			if opt == "-" {
				break
			}
			shared = shared || strings.HasPrefix(opt, "shared:")
			slave = slave || strings.HasPrefix(opt, "master:")
		}
	}
	if err := s.Err(); err != nil {
		return false, false, fmt.Errorf("mount propagation of %s: %w", path, err)
	}
	if best < 0 {
		return false, false, fmt.Errorf("mount propagation of %s: no mount holds it", path)
	}
	return shared, slave, nil
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

// unescapeMountinfo decodes the octal escapes (\040 for a space) the
// kernel uses in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Facts reads the host's cgroup controllers, oom_score_adj and capability
// range once.
func (h *RealHost) Facts() HostFacts {
	h.once.Do(func() { h.facts = readFacts() })
	return h.facts
}

func readFacts() HostFacts {
	var f HostFacts
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		f.CgroupV2 = true
		ctrl, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		f.Hugetlb = strings.Contains(" "+string(ctrl)+" ", " hugetlb ")
		_, err := os.Stat("/sys/fs/cgroup/init.scope/memory.swap.max")
		if err != nil {
			_, err = os.Stat("/sys/fs/cgroup/system.slice/memory.swap.max")
		}
		f.SwapAccounting = err == nil
	} else {
		_, err := os.Stat("/sys/fs/cgroup/hugetlb")
		f.Hugetlb = err == nil
		_, err = os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		f.SwapAccounting = err == nil
	}
	f.AppArmor = apparmorEnabled()
	f.MinOOMScoreAdj = minOOMScoreAdj()
	f.LastCap = 40 // CAP_CHECKPOINT_RESTORE, the last as of Linux 5.9
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			f.LastCap = n
		}
	}
	f.Grantable = ownCaps("CapPrm:")
	return f
}

// ownCaps reads one of the daemon's capability sets from
// /proc/self/status; 0 when it cannot tell.
func ownCaps(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0
			}
			return n
		}
	}
	return 0
}

// minOOMScoreAdj is the daemon's own oom_score_adj unless it holds
// CAP_SYS_RESOURCE, which is what lowering it needs (runc fails to start a
// container whose oom_score_adj it cannot set).
func minOOMScoreAdj() int {
	own := 0
	if b, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
		own, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if hasCapSysResource() {
		return -1000
	}
	return own
}

func hasCapSysResource() bool {
	return ownCaps("CapEff:")&(1<<unix.CAP_SYS_RESOURCE) != 0
}

// AppArmorLoaded reads the kernel's list of loaded AppArmor profiles.
func (h *RealHost) AppArmorLoaded(name string) bool { return apparmorLoaded(name) }

// MountSource resolves path and creates it as a directory when missing
// and create is set.
func (h *RealHost) MountSource(path string, create bool) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err == nil {
		return real, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("mount source %s: %w", path, err)
	}
	if !create {
		return "", fmt.Errorf("mount source %s: %w", path, ErrNotFound)
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return "", fmt.Errorf("create mount source %s: %w", path, err)
	}
	real, err = filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("mount source %s: %w", path, err)
	}
	return real, nil
}
