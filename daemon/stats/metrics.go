package stats

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/sandbox"
)

// The metrics are cAdvisor's (and CRI-O's) names, so that the kubelet's
// /metrics/cadvisor looks the same whichever side computes it. Every
// metric carries the labels id, name and image (a pod's network metrics:
// the pod id, "POD" and ""), then its own.
var baseLabels = []string{"id", "name", "image"}

type metricDef struct {
	name, help string
	typ        runtimeapi.MetricType
	extra      []string // label keys after the base ones
	v2Only     bool     // pressure: only the unified hierarchy has it
}

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

var metricDefs = []metricDef{
	{name: "container_cpu_usage_seconds_total", help: "Cumulative CPU time consumed in seconds.", typ: counter, extra: []string{"cpu"}},
	{name: "container_cpu_user_seconds_total", help: "Cumulative user CPU time consumed in seconds.", typ: counter},
	{name: "container_cpu_system_seconds_total", help: "Cumulative system CPU time consumed in seconds.", typ: counter},
	{name: "container_cpu_cfs_periods_total", help: "Number of elapsed enforcement period intervals.", typ: counter},
	{name: "container_cpu_cfs_throttled_periods_total", help: "Number of throttled period intervals.", typ: counter},
	{name: "container_cpu_cfs_throttled_seconds_total", help: "Total time duration the container has been throttled.", typ: counter},

	{name: "container_memory_cache", help: "Number of bytes of page cache memory.", typ: gauge},
	{name: "container_memory_rss", help: "Size of RSS in bytes.", typ: gauge},
	{name: "container_memory_kernel_usage", help: "Size of kernel memory allocated in bytes.", typ: gauge},
	{name: "container_memory_mapped_file", help: "Size of memory mapped files in bytes.", typ: gauge},
	{name: "container_memory_swap", help: "Container swap usage in bytes.", typ: gauge},
	{name: "container_memory_failcnt", help: "Number of memory usage hits limits.", typ: counter},
	{name: "container_memory_usage_bytes", help: "Current memory usage in bytes, including all memory regardless of when it was accessed.", typ: gauge},
	{name: "container_memory_max_usage_bytes", help: "Maximum memory usage recorded in bytes.", typ: gauge},
	{name: "container_memory_working_set_bytes", help: "Current working set in bytes.", typ: gauge},
	{name: "container_memory_failures_total", help: "Cumulative count of memory allocation failures.", typ: counter, extra: []string{"failure_type", "scope"}},
	{name: "container_oom_events_total", help: "Count of out of memory events observed for the container.", typ: counter},

	{name: "container_processes", help: "Number of processes running inside the container.", typ: gauge},
	{name: "container_threads", help: "Number of threads running inside the container.", typ: gauge},
	{name: "container_threads_max", help: "Maximum number of threads allowed inside the container, infinity if value is zero.", typ: gauge},
	{name: "container_file_descriptors", help: "Number of open file descriptors for the container.", typ: gauge},
	{name: "container_sockets", help: "Number of open sockets for the container.", typ: gauge},

	{name: "container_spec_cpu_period", help: "CPU period of the container.", typ: gauge},
	{name: "container_spec_cpu_quota", help: "CPU quota of the container.", typ: gauge},
	{name: "container_spec_cpu_shares", help: "CPU share of the container.", typ: gauge},
	{name: "container_spec_memory_limit_bytes", help: "Memory limit for the container.", typ: gauge},
	{name: "container_spec_memory_reservation_limit_bytes", help: "Memory reservation limit for the container.", typ: gauge},
	{name: "container_spec_memory_swap_limit_bytes", help: "Memory swap limit for the container.", typ: gauge},

	{name: "container_fs_usage_bytes", help: "Number of bytes that are consumed by the container on this filesystem.", typ: gauge},
	{name: "container_fs_limit_bytes", help: "Number of bytes that can be consumed by the container on this filesystem.", typ: gauge},
	{name: "container_fs_inodes_total", help: "Number of available Inodes.", typ: gauge},
	{name: "container_fs_inodes_free", help: "Number of available Inodes.", typ: gauge},
	{name: "container_blkio_device_usage_total", help: "Blkio device bytes usage.", typ: counter, extra: []string{"device", "major", "minor", "operation"}},
	{name: "container_fs_reads_bytes_total", help: "Cumulative count of bytes read.", typ: counter, extra: []string{"device"}},
	{name: "container_fs_reads_total", help: "Cumulative count of reads completed.", typ: counter, extra: []string{"device"}},
	{name: "container_fs_writes_bytes_total", help: "Cumulative count of bytes written.", typ: counter, extra: []string{"device"}},
	{name: "container_fs_writes_total", help: "Cumulative count of writes completed.", typ: counter, extra: []string{"device"}},

	{name: "container_network_receive_bytes_total", help: "Cumulative count of bytes received.", typ: counter, extra: []string{"interface"}},
	{name: "container_network_receive_packets_total", help: "Cumulative count of packets received.", typ: counter, extra: []string{"interface"}},
	{name: "container_network_receive_packets_dropped_total", help: "Cumulative count of packets dropped while receiving.", typ: counter, extra: []string{"interface"}},
	{name: "container_network_receive_errors_total", help: "Cumulative count of errors encountered while receiving.", typ: counter, extra: []string{"interface"}},
	{name: "container_network_transmit_bytes_total", help: "Cumulative count of bytes transmitted.", typ: counter, extra: []string{"interface"}},
	{name: "container_network_transmit_packets_total", help: "Cumulative count of packets transmitted.", typ: counter, extra: []string{"interface"}},
	{name: "container_network_transmit_packets_dropped_total", help: "Cumulative count of packets dropped while transmitting.", typ: counter, extra: []string{"interface"}},
	{name: "container_network_transmit_errors_total", help: "Cumulative count of errors encountered while transmitting.", typ: counter, extra: []string{"interface"}},

	{name: "container_pressure_cpu_waiting_seconds_total", help: "Total time duration tasks in the container have waited due to CPU congestion.", typ: counter, v2Only: true},
	{name: "container_pressure_cpu_stalled_seconds_total", help: "Total time duration no tasks in the container could make progress due to CPU congestion.", typ: counter, v2Only: true},
	{name: "container_pressure_memory_waiting_seconds_total", help: "Total time duration tasks in the container have waited due to memory congestion.", typ: counter, v2Only: true},
	{name: "container_pressure_memory_stalled_seconds_total", help: "Total time duration no tasks in the container could make progress due to memory congestion.", typ: counter, v2Only: true},
	{name: "container_pressure_io_waiting_seconds_total", help: "Total time duration tasks in the container have waited due to I/O congestion.", typ: counter, v2Only: true},
	{name: "container_pressure_io_stalled_seconds_total", help: "Total time duration no tasks in the container could make progress due to I/O congestion.", typ: counter, v2Only: true},

	{name: "container_start_time_seconds", help: "Start time of the container since unix epoch in seconds.", typ: gauge},
	{name: "container_last_seen", help: "Last time a container was seen by the exporter.", typ: gauge},
}

// MetricDescriptors lists the metrics ListPodSandboxMetrics returns.
func (s *Service) MetricDescriptors() []*runtimeapi.MetricDescriptor {
	out := make([]*runtimeapi.MetricDescriptor, 0, len(metricDefs))
	for _, d := range metricDefs {
		if d.v2Only && !s.opts.CgroupV2 {
			continue
		}
		keys := make([]string, 0, len(baseLabels)+len(d.extra))
		keys = append(append(keys, baseLabels...), d.extra...)
		out = append(out, &runtimeapi.MetricDescriptor{Name: d.name, Help: d.help, LabelKeys: keys})
	}
	return out
}

// ListPodSandboxMetrics returns the metrics of every ready pod: its
// network counters, and each live container's metrics.
func (s *Service) ListPodSandboxMetrics(ctx context.Context) ([]*runtimeapi.PodSandboxMetrics, error) {
	pods := s.opts.Pods.List(sandbox.Filter{State: sandbox.StateReady})
	byPod := s.containersByPod()
	fs := statFS(s.opts.StorageRoot)
	now := time.Now()
	var out []*runtimeapi.PodSandboxMetrics
	for _, pod := range pods {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ps := s.samplePod(ctx, pod, byPod[pod.ID])
		pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: pod.ID}
		m := metricSet{base: []string{pod.ID, "POD", ""}}
		for _, in := range ps.net {
			if in.Name == "lo" {
				continue
			}
			n := in.Name
			m.add("container_network_receive_bytes_total", counter, in.RxBytes, n)
			m.add("container_network_receive_packets_total", counter, in.RxPackets, n)
			m.add("container_network_receive_packets_dropped_total", counter, in.RxDropped, n)
			m.add("container_network_receive_errors_total", counter, in.RxErrors, n)
			m.add("container_network_transmit_bytes_total", counter, in.TxBytes, n)
			m.add("container_network_transmit_packets_total", counter, in.TxPackets, n)
			m.add("container_network_transmit_packets_dropped_total", counter, in.TxDropped, n)
			m.add("container_network_transmit_errors_total", counter, in.TxErrors, n)
		}
		pm.Metrics = m.out
		for _, cs := range ps.containers {
			pm.ContainerMetrics = append(pm.ContainerMetrics, &runtimeapi.ContainerMetrics{
				ContainerId: cs.c.ID, Metrics: s.containerMetrics(cs, fs, now),
			})
		}
		out = append(out, pm)
	}
	return out, nil
}

// metricSet collects metrics with the same base labels.
type metricSet struct {
	base []string
	out  []*runtimeapi.Metric
	// ts is the collection time of cached values (writable layers);
	// 0 marks values read now, as the CRI asks.
	ts int64
}

func (m *metricSet) add(name string, typ runtimeapi.MetricType, v uint64, extra ...string) {
	labels := make([]string, 0, len(m.base)+len(extra))
	labels = append(append(labels, m.base...), extra...)
	m.out = append(m.out, &runtimeapi.Metric{
		Name: name, Timestamp: m.ts, MetricType: typ, LabelValues: labels, Value: u64(v),
	})
}

func (s *Service) containerMetrics(cs *containerSample, fs fsStat, now time.Time) []*runtimeapi.Metric {
	c := cs.c
	image := c.ImageName
	if image == "" {
		image = c.Image
	}
	m := metricSet{base: []string{c.ID, c.Name, image}}
	sec := func(ns uint64) uint64 { return ns / uint64(time.Second) }
	if cg := cs.cg; cg != nil {
		cpu := cg.CPU
		m.add("container_cpu_usage_seconds_total", counter, sec(cpu.UsageNs), "total")
		m.add("container_cpu_user_seconds_total", counter, sec(cpu.UserNs))
		m.add("container_cpu_system_seconds_total", counter, sec(cpu.SystemNs))
		m.add("container_cpu_cfs_periods_total", counter, cpu.Periods)
		m.add("container_cpu_cfs_throttled_periods_total", counter, cpu.ThrottledPeriods)
		m.add("container_cpu_cfs_throttled_seconds_total", counter, sec(cpu.ThrottledNs))

		mem := cg.Memory
		m.add("container_memory_cache", gauge, mem.Cache)
		m.add("container_memory_rss", gauge, mem.RSS)
		m.add("container_memory_kernel_usage", gauge, mem.Kernel)
		m.add("container_memory_mapped_file", gauge, mem.MappedFile)
		m.add("container_memory_swap", gauge, mem.Swap)
		m.add("container_memory_failcnt", counter, mem.Failcnt)
		m.add("container_memory_usage_bytes", gauge, mem.Usage)
		m.add("container_memory_max_usage_bytes", gauge, mem.MaxUsage)
		m.add("container_memory_working_set_bytes", gauge, mem.WorkingSet)
		m.add("container_memory_failures_total", counter, mem.PgFault, "pgfault", "container")
		m.add("container_memory_failures_total", counter, mem.PgMajFault, "pgmajfault", "container")
		m.add("container_memory_failures_total", counter, mem.HierPgFault, "pgfault", "hierarchy")
		m.add("container_memory_failures_total", counter, mem.HierPgMajFault, "pgmajfault", "hierarchy")
		m.add("container_oom_events_total", counter, mem.OOMKills)

		var dir string
		if s.opts.CgroupV2 {
			dir = s.opts.Cgroups.Dir("", cs.path)
		} else {
			dir = s.opts.Cgroups.Dir("pids", cs.path)
		}
		procs := CountProcesses(dir, s.procRoot)
		m.add("container_processes", gauge, procs.Count)
		m.add("container_threads", gauge, cg.Pids.Current)
		m.add("container_threads_max", gauge, cg.Pids.Max)
		m.add("container_file_descriptors", gauge, procs.FDs)
		m.add("container_sockets", gauge, procs.Sockets)

		sp := cg.Spec
		m.add("container_spec_cpu_period", gauge, sp.CPUPeriod)
		m.add("container_spec_cpu_quota", gauge, uint64(max(sp.CPUQuota, 0)))
		m.add("container_spec_cpu_shares", gauge, sp.CPUShares)
		m.add("container_spec_memory_limit_bytes", gauge, sp.MemoryLimit)
		m.add("container_spec_memory_reservation_limit_bytes", gauge, sp.MemoryReservation)
		m.add("container_spec_memory_swap_limit_bytes", gauge, sp.MemorySwapLimit)

		for _, d := range cg.IO {
			dev := deviceName(d.Major, d.Minor)
			maj, mn := strconv.FormatUint(d.Major, 10), strconv.FormatUint(d.Minor, 10)
			m.add("container_blkio_device_usage_total", counter, d.ReadBytes, dev, maj, mn, "Read")
			m.add("container_blkio_device_usage_total", counter, d.WriteBytes, dev, maj, mn, "Write")
			m.add("container_fs_reads_bytes_total", counter, d.ReadBytes, dev)
			m.add("container_fs_reads_total", counter, d.Reads, dev)
			m.add("container_fs_writes_bytes_total", counter, d.WriteBytes, dev)
			m.add("container_fs_writes_total", counter, d.Writes, dev)
		}
		if p := cg.PSI; p != nil {
			m.add("container_pressure_cpu_waiting_seconds_total", counter, sec(p.CPU.Some.TotalNs))
			m.add("container_pressure_cpu_stalled_seconds_total", counter, sec(p.CPU.Full.TotalNs))
			m.add("container_pressure_memory_waiting_seconds_total", counter, sec(p.Memory.Some.TotalNs))
			m.add("container_pressure_memory_stalled_seconds_total", counter, sec(p.Memory.Full.TotalNs))
			m.add("container_pressure_io_waiting_seconds_total", counter, sec(p.IO.Some.TotalNs))
			m.add("container_pressure_io_stalled_seconds_total", counter, sec(p.IO.Full.TotalNs))
		}
	}
	if fs.ok {
		m.add("container_fs_limit_bytes", gauge, fs.bytes)
		m.add("container_fs_inodes_total", gauge, fs.inodes)
		m.add("container_fs_inodes_free", gauge, fs.inodesFree)
	}
	start := c.StartedAt
	if start == 0 {
		start = c.CreatedAt
	}
	m.add("container_start_time_seconds", gauge, uint64(max(start, 0))/uint64(time.Second))
	m.add("container_last_seen", gauge, uint64(now.Unix()))
	if u := cs.layer; u != nil {
		m.ts = u.At.UnixNano() // measured earlier, kept in the cache
		m.add("container_fs_usage_bytes", gauge, u.Bytes)
		m.ts = 0
	}
	return m.out
}

// fsStat is the size of the filesystem holding the writable layers.
type fsStat struct {
	bytes, inodes, inodesFree uint64
	ok                        bool
}

func statFS(path string) fsStat {
	if path == "" {
		return fsStat{}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fsStat{}
	}
	return fsStat{
		bytes:  mulSat(st.Blocks, uint64(st.Bsize)),
		inodes: st.Files, inodesFree: st.Ffree, ok: true,
	}
}

// deviceName is the kernel's name of a block device ("sda"), or "" when
// /sys does not know it.
func deviceName(major, minor uint64) string {
	target, err := os.Readlink("/sys/dev/block/" + strconv.FormatUint(major, 10) + ":" + strconv.FormatUint(minor, 10))
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}
