package sandbox

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/errdefs"
)

// LimitSetter writes limits into a cgroup; *cgroups.Host implements it.
type LimitSetter interface {
	SetLimits(path string, l cgroups.Limits) error
}

// maxQuota bounds a CPU quota (µs per period) far above any machine
// (2^40µs is a million CPUs at a one-second period), so that sums cannot
// overflow.
const maxQuota = 1 << 40

var cpusetList = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)

// UpdateResources applies a pod's new resources (the sum of its
// containers') plus its overhead to the pod cgroup and records both in the
// pod's configuration. Zero fields leave a setting as it is. When the
// kubelet manages the pod cgroup (cgroup_parent) it has written the same
// limits already; writing them again is harmless and keeps pods without a
// kubelet-made cgroup in step.
func (s *Service) UpdateResources(ctx context.Context, id string, overhead, res *runtimeapi.LinuxContainerResources) error {
	if err := checkPodResources("overhead", overhead); err != nil {
		return err
	}
	if err := checkPodResources("resources", res); err != nil {
		return err
	}
	e, sb := s.lockLive(id)
	if e == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, errdefs.Clip(id))
	}
	defer e.op.Unlock()
	if sb.State != StateReady {
		return fmt.Errorf("%w: pod %s is %s", ErrNotReady, sb.ID, sb.State)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if sb.Cgroup != nil && (res != nil || overhead != nil) {
		setter, ok := s.opts.Cgroups.(LimitSetter)
		if !ok {
			return errors.New("update pod resources: the cgroup manager cannot set limits")
		}
		if err := setter.SetLimits(sb.Cgroup.Path, PodLimits(overhead, res)); err != nil {
			return fmt.Errorf("update resources of pod %s: %w", sb.ID, err)
		}
	}
	// Config is shared with the copies Get handed out: replace, not mutate.
	cfg, _ := proto.Clone(sb.Config).(*runtimeapi.PodSandboxConfig)
	if cfg == nil {
		cfg = &runtimeapi.PodSandboxConfig{}
	}
	if cfg.Linux == nil {
		cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{}
	}
	if overhead != nil {
		cfg.Linux.Overhead = proto.Clone(overhead).(*runtimeapi.LinuxContainerResources)
	}
	if res != nil {
		cfg.Linux.Resources = proto.Clone(res).(*runtimeapi.LinuxContainerResources)
	}
	sb.Config = cfg
	e.set(sb)
	if err := s.store.SaveVolatile(sb); err != nil {
		return fmt.Errorf("update resources of pod %s: limits applied but not recorded: %w", sb.ID, err)
	}
	return nil
}

// checkPodResources refuses values no cgroup accepts, with the field named.
func checkPodResources(field string, r *runtimeapi.LinuxContainerResources) error {
	if r == nil {
		return nil
	}
	if v := r.GetCpuShares(); v != 0 && (v < 2 || v > 262144) {
		return errdefs.Invalid(field+".cpu_shares", "%d is outside 2..262144", v)
	}
	if v := r.GetCpuQuota(); v != 0 && v != -1 && (v < 1000 || v > maxQuota) {
		return errdefs.Invalid(field+".cpu_quota", "%d is outside 1000..%dµs", v, int64(maxQuota))
	}
	if v := r.GetCpuPeriod(); v != 0 && (v < 1000 || v > 1000000) {
		return errdefs.Invalid(field+".cpu_period", "%d is outside 1000..1000000µs", v)
	}
	if v := r.GetMemoryLimitInBytes(); v < 0 {
		return errdefs.Invalid(field+".memory_limit_in_bytes", "%d is negative", v)
	}
	for name, v := range map[string]string{"cpuset_cpus": r.GetCpusetCpus(), "cpuset_mems": r.GetCpusetMems()} {
		if v != "" && (len(v) > 4096 || !cpusetList.MatchString(v)) {
			return errdefs.Invalid(field+"."+name, "%q is not a list like 0-3,6", errdefs.Clip(v))
		}
	}
	return nil
}

// PodLimits adds the overhead to the pod's resources: shares and memory
// add up; the quota adds up over the resources' period (the overhead's
// quota scaled to it). A resource the pod does not limit (zero) stays
// unlimited whatever the overhead, and cpusets come from the resources.
func PodLimits(overhead, res *runtimeapi.LinuxContainerResources) cgroups.Limits {
	l := cgroups.Limits{
		CPUShares:  uint64(max(res.GetCpuShares(), 0)),
		CPUPeriod:  uint64(max(res.GetCpuPeriod(), 0)),
		CPUQuota:   res.GetCpuQuota(),
		CpusetCpus: res.GetCpusetCpus(),
		CpusetMems: res.GetCpusetMems(),
		Memory:     res.GetMemoryLimitInBytes(),
	}
	if l.CPUShares != 0 {
		l.CPUShares = min(l.CPUShares+uint64(max(overhead.GetCpuShares(), 0)), 262144)
	}
	if l.CPUQuota > 0 {
		oq, op := overhead.GetCpuQuota(), overhead.GetCpuPeriod()
		if oq > 0 {
			period := int64(l.CPUPeriod)
			if period == 0 {
				period = 100000 // the kernel's default period
			}
			if op > 0 && op != period {
				oq = oq * period / op
			}
			l.CPUQuota += oq
		}
	}
	if l.Memory > 0 {
		if om := overhead.GetMemoryLimitInBytes(); om > 0 && l.Memory <= (1<<62)-om {
			l.Memory += om
		}
	}
	return l
}
