package spec

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// Default masked and read-only paths: kernel interfaces that leak host
// information or let a container change the host (the list the container
// ecosystem converged on). The kubelet may replace them per container.
var (
	defaultMaskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
		"/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// mountSet collects the container's mounts; a later mount at the same
// destination replaces an earlier one, so CRI mounts override the pod's
// files and the defaults.
type mountSet struct {
	list []rspec.Mount
}

func (m *mountSet) add(mt rspec.Mount) {
	for i := range m.list {
		if m.list[i].Destination == mt.Destination {
			m.list[i] = mt
			return
		}
	}
	m.list = append(m.list, mt)
}

// sorted orders mounts so that a parent is mounted before anything below
// it, keeping the relative order of unrelated mounts (the runtime mounts
// in list order, and a bind at /a after one at /a/b would hide /a/b).
func (m *mountSet) sorted() []rspec.Mount {
	out := slices.Clone(m.list)
	sort.SliceStable(out, func(i, j int) bool {
		return depth(out[i].Destination) < depth(out[j].Destination)
	})
	return out
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(path.Clean(p), "/")
}

// baseMounts are the file systems every container gets.
func baseMounts(in *Input, privileged bool) []rspec.Mount {
	cgroupOpt := "ro"
	if privileged {
		cgroupOpt = "rw"
	}
	ms := []rspec.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	if in.Pod.NetNS == "" {
		// A fresh sysfs needs a network namespace of one's own; with the
		// host's, bind the host's /sys read-only instead.
		ms = append(ms, rspec.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}})
	} else {
		sysOpt := "ro"
		if privileged {
			sysOpt = "rw"
		}
		ms = append(ms, rspec.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", sysOpt}})
	}
	ms = append(ms, rspec.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", cgroupOpt}})
	switch {
	case in.Pod.ShmPath != "":
		ms = append(ms, rspec.Mount{Destination: "/dev/shm", Type: "bind", Source: in.Pod.ShmPath, Options: []string{"rbind", "nosuid", "noexec", "nodev"}})
	case in.Pod.IPCNS == "":
		ms = append(ms, rspec.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev"}})
	default:
		ms = append(ms, rspec.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}})
	}
	return ms
}

// podFileMounts binds the pod's resolv.conf, hosts and hostname.
func podFileMounts(in *Input, readonly bool) []rspec.Mount {
	var ms []rspec.Mount
	for _, f := range []struct{ src, dst string }{
		{in.Pod.ResolvPath, "/etc/resolv.conf"},
		{in.Pod.HostsPath, "/etc/hosts"},
		{in.Pod.HostnamePath, "/etc/hostname"},
	} {
		if f.src == "" {
			continue
		}
		opts := []string{"bind", "nosuid", "noexec", "nodev"}
		if readonly {
			opts = append(opts, "ro")
		}
		ms = append(ms, rspec.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: opts})
	}
	return ms
}

// allowedMountOptions are the CRI mount_options accepted: ones that only
// take rights away or tune access times.
var allowedMountOptions = []string{"ro", "nosuid", "nodev", "noexec", "noatime", "relatime", "nodiratime", "strictatime"}

// criMounts checks and converts the CRI mounts. rootProp is raised to
// what the mounts' propagation needs ("rslave" or "rshared").
func criMounts(in *Input, mounts []*runtimeapi.Mount, rootProp *string) ([]rspec.Mount, []*runtimeapi.Mount, error) {
	if len(mounts) > maxMounts {
		return nil, nil, errdefs.Invalid("config.mounts", "more than %d mounts", maxMounts)
	}
	var out []rspec.Mount
	var applied []*runtimeapi.Mount
	seen := map[string]int{}
	for i, m := range mounts {
		field := fmt.Sprintf("config.mounts[%d]", i)
		dst, err := containerPath(m.GetContainerPath(), field+".container_path")
		if err != nil {
			return nil, nil, err
		}
		if dst == "/" {
			return nil, nil, errdefs.Invalid(field+".container_path", "cannot mount over the container's root")
		}
		if j, dup := seen[dst]; dup {
			return nil, nil, errdefs.Invalid(field+".container_path", "%s is also the destination of config.mounts[%d]", dst, j)
		}
		seen[dst] = i
		if m.GetImage().GetImage() != "" || m.GetImageSubPath() != "" {
			im, ok := in.ImageMounts[i]
			if !ok {
				return nil, nil, unsupported(field+".image", "image volume mounts")
			}
			if !m.GetReadonly() {
				return nil, nil, errdefs.Invalid(field+".readonly", "an image volume is read-only; set readonly")
			}
			if m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
				return nil, nil, errdefs.Invalid(field+".propagation", "an image volume is private")
			}
			if len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0 {
				return nil, nil, unsupported(field+".uidMappings", "ID-mapped mounts")
			}
			// Executable (as the CRI's image volume tests expect), but no
			// set-id programs or device nodes from the image.
			opts := []string{"rbind", "ro", "nosuid", "nodev", "rprivate"}
			if m.GetRecursiveReadOnly() {
				if !in.Defaults.RecursiveReadOnly {
					return nil, nil, unsupported(field+".recursive_read_only", "recursive read-only mounts (the runtime handler has no \"rro\" mount option)")
				}
				opts = append(opts, "rro")
			}
			out = append(out, rspec.Mount{Destination: dst, Type: "bind", Source: im.Source, Options: opts})
			applied = append(applied, &runtimeapi.Mount{
				ContainerPath: dst, Readonly: true, RecursiveReadOnly: m.GetRecursiveReadOnly(),
				Image: &runtimeapi.ImageSpec{
					Image: m.GetImage().GetImage(), UserSpecifiedImage: m.GetImage().GetUserSpecifiedImage(),
					ImageRef: im.ImageRef,
				},
				ImageSubPath: m.GetImageSubPath(),
			})
			continue
		}
		if len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0 {
			return nil, nil, unsupported(field+".uidMappings", "ID-mapped mounts")
		}
		if m.GetRecursiveReadOnly() {
			// As the CRI says: recursive read-only is read-only down to
			// every mount below the source, which a propagated mount
			// arriving later would escape.
			if !m.GetReadonly() {
				return nil, nil, errdefs.Invalid(field+".recursive_read_only", "needs readonly")
			}
			if m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
				return nil, nil, errdefs.Invalid(field+".recursive_read_only", "needs private propagation, not %s", m.GetPropagation())
			}
			if !in.Defaults.RecursiveReadOnly {
				return nil, nil, unsupported(field+".recursive_read_only", "recursive read-only mounts (the runtime handler has no \"rro\" mount option)")
			}
		}
		src := m.GetHostPath()
		if err := checkHostPath(src, field+".host_path"); err != nil {
			return nil, nil, err
		}
		src = path.Clean(src)
		create := !slices.Contains(in.Defaults.AbsentMountSourcesToReject, src)
		real, err := in.Host.MountSource(src, create)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.host_path: %w", field, err)
		}
		opts := []string{"rbind"}
		if m.GetReadonly() {
			opts = append(opts, "ro")
		}
		if m.GetRecursiveReadOnly() {
			opts = append(opts, "rro") // the runtime applies it with mount_setattr(AT_RECURSIVE)
		}
		if len(m.GetMountOptions()) > 16 {
			return nil, nil, errdefs.Invalid(field+".mount_options", "more than 16 options")
		}
		for j, o := range m.GetMountOptions() {
			if !slices.Contains(allowedMountOptions, o) {
				return nil, nil, errdefs.Invalid(fmt.Sprintf("%s.mount_options[%d]", field, j), "%q is not one of %s", errdefs.Clip(o), strings.Join(allowedMountOptions, ", "))
			}
			if !slices.Contains(opts, o) {
				opts = append(opts, o)
			}
		}
		switch m.GetPropagation() {
		case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
			opts = append(opts, "rprivate")
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			shared, slave, err := in.Host.Propagation(real)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", field, err)
			}
			if !shared && !slave {
				return nil, nil, errdefs.Invalid(field+".propagation", "host-to-container propagation needs %s on a shared or slave mount, but its mount is private (mount --make-rshared)", real)
			}
			opts = append(opts, "rslave")
			if *rootProp != "rshared" {
				*rootProp = "rslave"
			}
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			shared, _, err := in.Host.Propagation(real)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", field, err)
			}
			if !shared {
				return nil, nil, errdefs.Invalid(field+".propagation", "bidirectional propagation needs %s on a shared mount, but its mount is not shared (mount --make-rshared)", real)
			}
			opts = append(opts, "rshared")
			*rootProp = "rshared"
		default:
			return nil, nil, errdefs.Invalid(field+".propagation", "unknown propagation %d", m.GetPropagation())
		}
		out = append(out, rspec.Mount{Destination: dst, Type: "bind", Source: real, Options: opts})
		applied = append(applied, &runtimeapi.Mount{
			ContainerPath: dst, HostPath: src, Readonly: m.GetReadonly(), RecursiveReadOnly: m.GetRecursiveReadOnly(),
			SelinuxRelabel: m.GetSelinuxRelabel(), Propagation: m.GetPropagation(),
		})
	}
	return out, applied, nil
}

// pathList checks masked_paths or readonly_paths from the CRI.
func pathList(paths []string, field string) ([]string, error) {
	if len(paths) > maxPaths {
		return nil, errdefs.Invalid(field, "more than %d paths", maxPaths)
	}
	out := make([]string, 0, len(paths))
	for i, p := range paths {
		c, err := containerPath(p, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}
