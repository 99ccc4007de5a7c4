package spec

import (
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Input is everything a container's spec depends on.
type Input struct {
	// ID is the container id; it names the container's cgroup.
	ID string
	// Config is the CRI request's container config, unvalidated.
	Config *runtimeapi.ContainerConfig
	// Pod is the sandbox the container joins.
	Pod Pod
	// Image is the image's runtime config (entrypoint, cmd, env, user,
	// working dir, volumes, stop signal); nil is an image with none.
	Image *imgspecv1.ImageConfig
	// Rootfs is the container's mounted root filesystem. User and group
	// names are looked up in its /etc/passwd and /etc/group.
	Rootfs string
	// ImageVolumes are the image's volumes that get a bind mount of their
	// own (image_volumes = "bind"): destination -> host directory. Volumes
	// under "mkdir" need nothing in the spec, under "ignore" nothing at all.
	ImageVolumes map[string]string
	// ImageMounts are the CRI mounts of images (image volumes), by index
	// in Config.Mounts, as the caller mounted them; a CRI image mount
	// without one here is refused as unsupported.
	ImageMounts map[int]ImageMount
	// TargetPIDNS is the PID namespace file (/proc/<pid>/ns/pid) of the
	// container named by namespace_options.target_id, resolved by the
	// caller; required when the pid mode is TARGET.
	TargetPIDNS string
	Defaults    Defaults
	Host        Host
}

// Pod is what a container takes from its sandbox.
type Pod struct {
	ID       string
	Hostname string
	// NetNS, IPCNS and UTSNS are the pod's pinned namespace files; empty
	// means the host's namespace (hostNetwork, hostIPC).
	NetNS, IPCNS, UTSNS string
	// HostPID: the pod shares the host's PID namespace. PIDNS is the
	// pod's shared PID namespace file (shareProcessNamespace), used when
	// the container's pid mode is POD.
	HostPID bool
	PIDNS   string
	// Files the pod provides at /etc/resolv.conf, /etc/hosts,
	// /etc/hostname and /dev/shm ("" leaves the image's; ShmPath "" with
	// host IPC binds the host's /dev/shm).
	ResolvPath, HostsPath, HostnamePath, ShmPath string
	// CgroupParent is the pod's cgroup (cgroupfs path); the container gets
	// <CgroupParent>/crio-<id>.
	CgroupParent string
	// CgroupSlice, with the systemd cgroup manager, is the pod's slice:
	// the container is then the scope crio-<id>.scope in it.
	CgroupSlice string
	// Privileged says the pod may hold privileged containers.
	Privileged bool
}

// Defaults are the daemon's configuration that shapes every container.
type Defaults struct {
	// Capabilities is crio.runtime.default_capabilities ("CHOWN" or
	// "CAP_CHOWN").
	Capabilities []string
	// AddInheritableCapabilities also puts the capability set into the
	// inheritable set (CRI-O's add_inheritable_capabilities).
	AddInheritableCapabilities bool
	// Env is crio.runtime.default_env ("KEY=value").
	Env []string
	// Ulimits is crio.runtime.default_ulimits ("nofile=1024:2048").
	Ulimits []string
	// ReadOnly is crio.runtime.read_only: every rootfs read-only.
	ReadOnly bool
	// AppArmorProfile is crio.runtime.apparmor_profile: the AppArmor
	// profile of RuntimeDefault, applied when the host has it loaded.
	AppArmorProfile string
	// SeccompProfile is the RuntimeDefault profile (JSON); nil means the
	// embedded policy/seccomp.json.
	SeccompProfile []byte
	// PrivilegedWithoutHostDevices keeps host devices out of privileged
	// containers (per runtime handler).
	PrivilegedWithoutHostDevices bool
	// ContainerMinMemory is the smallest memory limit accepted, in bytes
	// (per runtime handler); 0 means no minimum.
	ContainerMinMemory int64
	// AdditionalDevices is crio.runtime.additional_devices
	// ("/dev/host:/dev/ctr:rwm").
	AdditionalDevices []string
	// AbsentMountSourcesToReject are host paths that must exist to be
	// mounted (crio.runtime.absent_mount_sources_to_reject); others are
	// created as directories when missing.
	AbsentMountSourcesToReject []string
	// Annotations are added to the spec as they are (crio's own, and the
	// CRI annotations the handler allows).
	Annotations map[string]string
	// RecursiveReadOnly says the runtime handler takes the "rro" mount
	// option, so CRI recursive read-only mounts can be made.
	RecursiveReadOnly bool
}

// ImageMount is a mounted image volume.
type ImageMount struct {
	// Source is the host path to bind (read-only) into the container.
	Source string
	// ImageRef is the image's id, reported in the container's status.
	ImageRef string
}

// Host answers the questions about the machine that a spec depends on.
// RealHost asks the running kernel.
type Host interface {
	// Devices returns the device node at path, or every device node
	// below it when it is a directory.
	Devices(path string) ([]rspec.LinuxDevice, error)
	// AllDevices lists the host's /dev for privileged containers.
	AllDevices() ([]rspec.LinuxDevice, error)
	// Propagation reports how the mount holding path propagates.
	Propagation(path string) (shared, slave bool, err error)
	// MountSource resolves a bind mount's host path (symlinks followed on
	// the host, as the kernel would) and, when it is missing and create is
	// true, makes it a directory, as CRI-O and Docker do for hostPath.
	MountSource(path string, create bool) (string, error)
	// Facts are the host-wide answers, fixed for the daemon's lifetime.
	Facts() HostFacts
	// AppArmorLoaded says whether the kernel has the AppArmor profile
	// name loaded now (profiles come and go while the daemon runs).
	AppArmorLoaded(name string) bool
}

// HostFacts are fixed properties of the host.
type HostFacts struct {
	// Hugetlb: the hugetlb cgroup controller is mounted.
	Hugetlb bool
	// AppArmor: the kernel has AppArmor enabled.
	AppArmor bool
	// SwapAccounting: the memory controller accounts swap
	// (memory.memsw.* on v1, memory.swap.max on v2).
	SwapAccounting bool
	// CgroupV2: the host runs the unified hierarchy only.
	CgroupV2 bool
	// MinOOMScoreAdj is the lowest oom_score_adj the daemon may give a
	// process: its own, unless it holds CAP_SYS_RESOURCE.
	MinOOMScoreAdj int
	// LastCap is the highest capability number the kernel knows.
	LastCap int
	// Grantable is the set of capabilities the daemon itself holds (its
	// permitted set, as a bit mask): the runtime cannot give a container
	// more. 0 means every capability up to LastCap.
	Grantable uint64
}

// Result is the generated spec and what the container service reports
// about it.
type Result struct {
	Spec *rspec.Spec
	// User is the identity of the container's first process.
	UID, GID           int64
	SupplementalGroups []int64
	// Mounts are the CRI mounts as applied (normalised paths), for
	// ContainerStatus.
	Mounts []*runtimeapi.Mount
	// StopSignal is the signal StopContainer sends first: the CRI's, else
	// the image's, else SIGTERM.
	StopSignal string
	// Warnings are requested settings left out because the host cannot
	// apply them (hugepages without hugetlb, a clamped oom_score_adj); the
	// caller logs them.
	Warnings []string
	// SecurityWarnings are requested confinements left out (an AppArmor
	// profile the host cannot apply); the caller logs them at Warn, as
	// the pod runs less confined than its author asked.
	SecurityWarnings []string
}
