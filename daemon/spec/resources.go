package spec

import (
	"fmt"
	"regexp"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

var (
	cpusetPattern   = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)
	hugePagePattern = regexp.MustCompile(`^[0-9]+[KMGT]i?B$`)
	// unifiedKey is a cgroup v2 interface file name ("memory.high"): the
	// runtime writes the value into a file of that name, so a slash or ".."
	// would escape the container's cgroup.
	unifiedKey = regexp.MustCompile(`^[a-z][a-z0-9_]*\.[a-z0-9_.]+$`)
)

// resources converts the CRI's resources to the spec's, within what the
// host can apply. Limits the host cannot hold (hugepages without the
// hugetlb controller, cgroup v2 keys on v1) are left out and reported in
// warnings rather than failing the container, as the kubelet sends them
// regardless of the node.
func resources(in *Input, r *runtimeapi.LinuxContainerResources) (*rspec.LinuxResources, *int, []string, error) {
	const field = "config.linux.resources"
	facts := in.Host.Facts()
	out := &rspec.LinuxResources{}
	var warnings []string
	cpu := &rspec.LinuxCPU{}
	if v := r.GetCpuShares(); v != 0 {
		if v < 2 || v > 262144 {
			return nil, nil, nil, errdefs.Invalid(field+".cpu_shares", "%d is outside 2..262144", v)
		}
		u := uint64(v)
		cpu.Shares = &u
	}
	if v := r.GetCpuQuota(); v != 0 {
		if v < 1000 && v != -1 {
			return nil, nil, nil, errdefs.Invalid(field+".cpu_quota", "%d is below the kernel's minimum of 1000µs", v)
		}
		cpu.Quota = &v
	}
	if v := r.GetCpuPeriod(); v != 0 {
		if v < 1000 || v > 1000000 {
			return nil, nil, nil, errdefs.Invalid(field+".cpu_period", "%d is outside 1000..1000000µs", v)
		}
		u := uint64(v)
		cpu.Period = &u
	}
	if v := r.GetCpusetCpus(); v != "" {
		if len(v) > 4096 || !cpusetPattern.MatchString(v) {
			return nil, nil, nil, errdefs.Invalid(field+".cpuset_cpus", "%q is not a CPU list like 0-3,6", errdefs.Clip(v))
		}
		cpu.Cpus = v
	}
	if v := r.GetCpusetMems(); v != "" {
		if len(v) > 4096 || !cpusetPattern.MatchString(v) {
			return nil, nil, nil, errdefs.Invalid(field+".cpuset_mems", "%q is not a node list like 0-1", errdefs.Clip(v))
		}
		cpu.Mems = v
	}
	if *cpu != (rspec.LinuxCPU{}) {
		out.CPU = cpu
	}
	if lim := r.GetMemoryLimitInBytes(); lim != 0 {
		if lim < 0 {
			return nil, nil, nil, errdefs.Invalid(field+".memory_limit_in_bytes", "%d is negative", lim)
		}
		if min := in.Defaults.ContainerMinMemory; min > 0 && lim < min {
			return nil, nil, nil, errdefs.Invalid(field+".memory_limit_in_bytes", "%d bytes is below the runtime handler's container_min_memory of %d bytes", lim, min)
		}
		out.Memory = &rspec.LinuxMemory{Limit: &lim}
		swap := r.GetMemorySwapLimitInBytes()
		switch {
		case swap > 0 && swap < lim:
			return nil, nil, nil, errdefs.Invalid(field+".memory_swap_limit_in_bytes", "%d is below memory_limit_in_bytes (%d); the swap limit counts memory plus swap", swap, lim)
		case swap == 0:
			swap = lim // no swap beyond the memory limit
		}
		if facts.SwapAccounting {
			out.Memory.Swap = &swap
		}
	}
	if len(r.GetHugepageLimits()) > 16 {
		return nil, nil, nil, errdefs.Invalid(field+".hugepage_limits", "more than 16 page sizes")
	}
	for i, h := range r.GetHugepageLimits() {
		if !hugePagePattern.MatchString(h.GetPageSize()) {
			return nil, nil, nil, errdefs.Invalid(fmt.Sprintf("%s.hugepage_limits[%d].page_size", field, i), "%q is not a page size like 2MB", errdefs.Clip(h.GetPageSize()))
		}
		if !facts.Hugetlb {
			warnings = append(warnings, fmt.Sprintf("hugepage limit %s=%d not applied: the host has no hugetlb cgroup controller", h.GetPageSize(), h.GetLimit()))
			continue
		}
		out.HugepageLimits = append(out.HugepageLimits, rspec.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
	}
	if u := r.GetUnified(); len(u) > 0 {
		if len(u) > 64 {
			return nil, nil, nil, errdefs.Invalid(field+".unified", "more than 64 entries")
		}
		for k, v := range u {
			if !unifiedKey.MatchString(k) || strings.Contains(k, "..") {
				return nil, nil, nil, errdefs.Invalid(field+".unified", "%q is not a cgroup interface file name", errdefs.Clip(k))
			}
			if err := checkLine(v, field+".unified["+k+"]", 4096); err != nil {
				return nil, nil, nil, err
			}
		}
		if facts.CgroupV2 {
			out.Unified = u
		} else {
			warnings = append(warnings, "unified cgroup settings not applied: the host runs cgroup v1")
		}
	}
	// oom_score_adj: the kubelet computes one per QoS class, some below
	// the daemon's own, which without CAP_SYS_RESOURCE nobody may set;
	// clamping keeps the order among containers where it can.
	adj := int(r.GetOomScoreAdj())
	if adj < -1000 || adj > 1000 {
		return nil, nil, nil, errdefs.Invalid(field+".oom_score_adj", "%d is outside -1000..1000", adj)
	}
	if adj < facts.MinOOMScoreAdj {
		warnings = append(warnings, fmt.Sprintf("oom_score_adj %d raised to %d, the lowest this daemon may set", adj, facts.MinOOMScoreAdj))
		adj = facts.MinOOMScoreAdj
	}
	return out, &adj, warnings, nil
}
