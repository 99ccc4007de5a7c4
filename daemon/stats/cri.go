package stats

import (
	"context"
	"errors"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/sandbox"
)

// containerSample is one reading of a container: its cgroup (nil when it
// has none, e.g. exited) and its writable layer (nil when unknown).
type containerSample struct {
	c     *container.Container
	cg    *Cgroup
	path  string // the cgroup
	layer *Usage
}

// podSample is one reading of a pod: its cgroup, its network interfaces
// and its live containers.
type podSample struct {
	pod        *sandbox.Sandbox
	cg         *Cgroup
	net        []Interface
	containers []*containerSample
}

func (s *Service) sampleContainer(ctx context.Context, c *container.Container, pod *sandbox.Sandbox) *containerSample {
	cs := &containerSample{c: c, path: containerCgroup(c, pod)}
	if hasCgroup(c) {
		cg, err := s.reader.Read(cs.path)
		switch {
		case err == nil:
			cs.cg = cg
		case !errors.Is(err, ErrNoCgroup):
			s.log.Debug("reading container cgroup", "id", c.ID, "error", err)
		}
	}
	if dir := writableLayer(c.Rootfs); dir != "" {
		u, err := s.layers.get(ctx, c.ID, dir)
		if err == nil {
			cs.layer = &u
		} else if ctx.Err() == nil {
			s.log.Debug("measuring writable layer", "id", c.ID, "error", err)
		}
	}
	return cs
}

func (s *Service) samplePod(ctx context.Context, pod *sandbox.Sandbox, ctrs []*container.Container) *podSample {
	ps := &podSample{pod: pod}
	if pod.Ready() {
		if pod.Cgroup != nil {
			cg, err := s.reader.Read(pod.Cgroup.Path)
			switch {
			case err == nil:
				ps.cg = cg
			case !errors.Is(err, ErrNoCgroup):
				s.log.Debug("reading pod cgroup", "id", pod.ID, "error", err)
			}
		}
		if pod.NetNS != "" {
			ifs, err := ReadNetNS(pod.NetNS)
			if err == nil {
				ps.net = ifs
			} else {
				s.log.Debug("reading pod network counters", "id", pod.ID, "error", err)
			}
		}
	}
	for _, c := range ctrs {
		if ctx.Err() != nil {
			break
		}
		if c.PodID == pod.ID && hasCgroup(c) {
			ps.containers = append(ps.containers, s.sampleContainer(ctx, c, pod))
		}
	}
	return ps
}

// ContainerStats returns one container's stats.
func (s *Service) ContainerStats(ctx context.Context, id string) (*runtimeapi.ContainerStats, error) {
	c, err := s.getContainer(id)
	if err != nil {
		return nil, err
	}
	pod, _ := s.opts.Pods.Get(c.PodID) // nil once the pod is gone: default cgroup parent
	return s.containerStatsCRI(s.sampleContainer(ctx, c, pod)), nil
}

// ListContainerStats returns the stats of the containers that match f
// (id and pod id as prefixes, labels exactly). Exited containers are
// listed with their writable layer only.
func (s *Service) ListContainerStats(ctx context.Context, f *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	ctrs := s.opts.Containers.List(container.Filter{ID: f.GetId(), PodID: f.GetPodSandboxId(), Labels: f.GetLabelSelector()})
	pods := s.podsByID()
	out := make([]*runtimeapi.ContainerStats, 0, len(ctrs))
	for _, c := range ctrs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if c.State == container.StateCreating {
			continue
		}
		out = append(out, s.containerStatsCRI(s.sampleContainer(ctx, c, pods[c.PodID])))
	}
	return out, nil
}

// PodSandboxStats returns one pod's stats with its live containers'.
func (s *Service) PodSandboxStats(ctx context.Context, id string) (*runtimeapi.PodSandboxStats, error) {
	pod, err := s.getPod(id)
	if err != nil {
		return nil, err
	}
	ctrs := s.opts.Containers.List(container.Filter{PodID: pod.ID})
	return s.podStatsCRI(s.samplePod(ctx, pod, ctrs)), nil
}

// ListPodSandboxStats returns the stats of the pods that match f.
func (s *Service) ListPodSandboxStats(ctx context.Context, f *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	pods := s.opts.Pods.List(sandbox.Filter{ID: f.GetId(), Labels: f.GetLabelSelector()})
	byPod := s.containersByPod()
	out := make([]*runtimeapi.PodSandboxStats, 0, len(pods))
	for _, pod := range pods {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out = append(out, s.podStatsCRI(s.samplePod(ctx, pod, byPod[pod.ID])))
	}
	return out, nil
}

// containersByPod groups every container by its pod.
func (s *Service) containersByPod() map[string][]*container.Container {
	m := map[string][]*container.Container{}
	for _, c := range s.opts.Containers.List(container.Filter{}) {
		m[c.PodID] = append(m[c.PodID], c)
	}
	return m
}

func (s *Service) containerStatsCRI(cs *containerSample) *runtimeapi.ContainerStats {
	c := cs.c
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id: c.ID, Metadata: c.Config.GetMetadata(),
			Labels: c.Config.GetLabels(), Annotations: c.Config.GetAnnotations(),
		},
	}
	if cg := cs.cg; cg != nil {
		out.Cpu = s.cpuCRI("ctr/"+c.ID, cg)
		out.Memory = s.memoryCRI(cg)
		out.Swap = swapCRI(cg)
		if cg.PSI != nil {
			out.Io = &runtimeapi.IoUsage{Timestamp: cg.At.UnixNano(), Psi: psiCRI(cg.PSI.IO)}
		}
	}
	if u := cs.layer; u != nil {
		out.WritableLayer = &runtimeapi.FilesystemUsage{
			Timestamp:  u.At.UnixNano(),
			FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: s.opts.StorageRoot},
			UsedBytes:  &runtimeapi.UInt64Value{Value: u.Bytes},
			InodesUsed: &runtimeapi.UInt64Value{Value: u.Inodes},
		}
	}
	return out
}

func (s *Service) podStatsCRI(ps *podSample) *runtimeapi.PodSandboxStats {
	pod := ps.pod
	linux := &runtimeapi.LinuxPodSandboxStats{}
	if cg := ps.cg; cg != nil {
		linux.Cpu = s.cpuCRI("pod/"+pod.ID, cg)
		linux.Memory = s.memoryCRI(cg)
		// pids.current counts tasks below the pod cgroup too; cgroup.procs
		// would list only the pod cgroup's own.
		linux.Process = &runtimeapi.ProcessUsage{Timestamp: cg.At.UnixNano(), ProcessCount: u64(cg.Pids.Current)}
		if cg.PSI != nil {
			linux.Io = &runtimeapi.IoUsage{Timestamp: cg.At.UnixNano(), Psi: psiCRI(cg.PSI.IO)}
		}
	}
	if len(ps.net) > 0 {
		linux.Network = networkCRI(ps.net, time.Now())
	}
	for _, cs := range ps.containers {
		linux.Containers = append(linux.Containers, s.containerStatsCRI(cs))
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id: pod.ID, Metadata: pod.Config.GetMetadata(),
			Labels: pod.Config.GetLabels(), Annotations: pod.Config.GetAnnotations(),
		},
		Linux: linux,
	}
}

func (s *Service) cpuCRI(key string, cg *Cgroup) *runtimeapi.CpuUsage {
	out := &runtimeapi.CpuUsage{Timestamp: cg.At.UnixNano(), UsageCoreNanoSeconds: u64(cg.CPU.UsageNs)}
	if rate, ok := s.cpu.rate(key, cg.CPU.UsageNs, cg.At); ok {
		out.UsageNanoCores = u64(rate)
	}
	if cg.PSI != nil {
		out.Psi = psiCRI(cg.PSI.CPU)
	}
	return out
}

// memoryCRI reports memory as the kubelet defines it: the working set is
// usage less inactive file pages (reclaimable at no cost), and available
// is the limit less the working set, the machine's memory standing in for
// a limit when there is none.
func (s *Service) memoryCRI(cg *Cgroup) *runtimeapi.MemoryUsage {
	m := cg.Memory
	out := &runtimeapi.MemoryUsage{
		Timestamp:       cg.At.UnixNano(),
		WorkingSetBytes: u64(m.WorkingSet),
		UsageBytes:      u64(m.Usage),
		RssBytes:        u64(m.RSS),
		PageFaults:      u64(m.HierPgFault),
		MajorPageFaults: u64(m.HierPgMajFault),
	}
	lim := cg.Spec.MemoryLimit
	if lim == 0 || s.memTotal != 0 && lim > s.memTotal {
		lim = s.memTotal
	}
	if lim != 0 {
		out.AvailableBytes = u64(subSat(lim, m.WorkingSet))
	}
	if cg.PSI != nil {
		out.Psi = psiCRI(cg.PSI.Memory)
	}
	return out
}

// swapCRI: swap available is the swap limit (v1's memory+swap limit less
// the memory limit) less swap used, when both limits are set.
func swapCRI(cg *Cgroup) *runtimeapi.SwapUsage {
	out := &runtimeapi.SwapUsage{Timestamp: cg.At.UnixNano(), SwapUsageBytes: u64(cg.Memory.Swap)}
	if sw, mem := cg.Spec.MemorySwapLimit, cg.Spec.MemoryLimit; sw != 0 && mem != 0 {
		out.SwapAvailableBytes = u64(subSat(subSat(sw, mem), cg.Memory.Swap))
	}
	return out
}

func psiCRI(p Pressure) *runtimeapi.PsiStats {
	line := func(l PressureLine) *runtimeapi.PsiData {
		return &runtimeapi.PsiData{Total: l.TotalNs, Avg10: l.Avg10, Avg60: l.Avg60, Avg300: l.Avg300}
	}
	return &runtimeapi.PsiStats{Some: line(p.Some), Full: line(p.Full)}
}

// defaultInterface is the pod's interface the CNI plugins create.
const defaultInterface = "eth0"

// networkCRI reports eth0 (else the first interface) as the default and
// the others beside it; loopback traffic is the pod talking to itself and
// is left out, as cAdvisor does.
func networkCRI(ifs []Interface, at time.Time) *runtimeapi.NetworkUsage {
	out := &runtimeapi.NetworkUsage{Timestamp: at.UnixNano()}
	def := -1
	for i, in := range ifs {
		if in.Name == defaultInterface {
			def = i
		}
	}
	for i, in := range ifs {
		if in.Name == "lo" {
			continue
		}
		if def < 0 {
			def = i
		}
		u := &runtimeapi.NetworkInterfaceUsage{
			Name:    in.Name,
			RxBytes: u64(in.RxBytes), RxErrors: u64(in.RxErrors),
			TxBytes: u64(in.TxBytes), TxErrors: u64(in.TxErrors),
		}
		if i == def {
			out.DefaultInterface = u
		} else {
			out.Interfaces = append(out.Interfaces, u)
		}
	}
	return out
}

func u64(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }
