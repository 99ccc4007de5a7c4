package container

import (
	"context"
	"errors"
	"fmt"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/oci"
	"github.com/crio-appliance/crio/daemon/spec"
)

// Updater is a runtime that can change a live container's limits;
// *oci.Runtime implements it. A handler whose runtime cannot answers
// UpdateContainerResources with Unimplemented.
type Updater interface {
	Update(ctx context.Context, id string, res *rspec.LinuxResources) error
}

// UpdateResources changes a created or running container's cgroup limits
// through its runtime and records them, so ContainerStatus.resources shows
// what is applied. Zero fields keep the current value (as `runc update`
// does); the result is checked by the rules CreateContainer applies. nil
// resources (a request carrying only Windows resources) change nothing.
func (s *Service) UpdateResources(ctx context.Context, id string, r *runtimeapi.LinuxContainerResources) error {
	e := s.lookup(id)
	if e == nil {
		return notFound("container %q", errdefs.Clip(id))
	}
	if r == nil {
		return nil
	}
	// op: not concurrently with Start or Remove of this container, nor
	// with another update (the record is read, merged and written back).
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	if e.removed {
		e.mu.Unlock()
		return notFound("container %q", errdefs.Clip(id))
	}
	cid, rt, state := e.c.ID, e.c.Runtime, e.c.State
	current := e.c.Config.GetLinux().GetResources()
	e.mu.Unlock()
	if state != StateCreated && state != StateRunning {
		return precondition("container %.12s is %s; only a created or running container can be updated", cid, state)
	}
	h, err := s.handler(rt)
	if err != nil {
		return err
	}
	u, ok := h.Runtime.(Updater)
	if !ok {
		return fmt.Errorf("%w: runtime handler %q cannot update a container's resources", ErrUnimplemented, rt)
	}
	merged := MergeResources(current, r)
	res, warnings, err := spec.UpdateResources(s.opts.Host, h.ContainerMinMemory, merged)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		s.log.Debug("container resource not applied", "id", cid, "detail", w)
	}
	if err := u.Update(ctx, cid, res); err != nil {
		if errors.Is(err, oci.ErrNotExist) {
			return precondition("container %.12s is no longer known to its runtime", cid)
		}
		return fmt.Errorf("update container %.12s: %w", cid, err)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	// Config is shared by the copies Get handed out: replace it, never
	// change it in place.
	cfg, _ := proto.Clone(e.c.Config).(*runtimeapi.ContainerConfig)
	if cfg == nil {
		cfg = &runtimeapi.ContainerConfig{}
	}
	if cfg.Linux == nil {
		cfg.Linux = &runtimeapi.LinuxContainerConfig{}
	}
	cfg.Linux.Resources = merged
	e.c.Config = cfg
	if err := s.store.SaveVolatile(e.c); err != nil {
		return fmt.Errorf("update container %.12s: limits applied but not recorded: %w", cid, err)
	}
	return nil
}

// MergeResources lays an update over the current resources: every field
// the update sets replaces the current one, zero fields keep it. A new
// memory limit without a swap limit drops the old swap limit, which then
// follows the memory limit (no swap beyond it), as at create; an old swap
// limit below the new memory limit would otherwise make the update
// invalid. oom_score_adj stays as created: runtimes cannot change it.
func MergeResources(current, update *runtimeapi.LinuxContainerResources) *runtimeapi.LinuxContainerResources {
	out := &runtimeapi.LinuxContainerResources{}
	if current != nil {
		out = proto.Clone(current).(*runtimeapi.LinuxContainerResources)
	}
	if update == nil {
		return out
	}
	if v := update.GetCpuPeriod(); v != 0 {
		out.CpuPeriod = v
	}
	if v := update.GetCpuQuota(); v != 0 {
		out.CpuQuota = v
	}
	if v := update.GetCpuShares(); v != 0 {
		out.CpuShares = v
	}
	if v := update.GetMemoryLimitInBytes(); v != 0 {
		out.MemoryLimitInBytes = v
		out.MemorySwapLimitInBytes = 0
	}
	if v := update.GetMemorySwapLimitInBytes(); v != 0 {
		out.MemorySwapLimitInBytes = v
	}
	if v := update.GetCpusetCpus(); v != "" {
		out.CpusetCpus = v
	}
	if v := update.GetCpusetMems(); v != "" {
		out.CpusetMems = v
	}
	if v := update.GetHugepageLimits(); len(v) > 0 {
		out.HugepageLimits = nil
		for _, h := range v {
			out.HugepageLimits = append(out.HugepageLimits, proto.Clone(h).(*runtimeapi.HugepageLimit))
		}
	}
	if v := update.GetUnified(); len(v) > 0 {
		out.Unified = make(map[string]string, len(v))
		for k, val := range v {
			out.Unified[k] = val
		}
	}
	return out
}
