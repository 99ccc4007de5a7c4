package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Limits are the resource limits of a cgroup. Zero fields leave a setting
// as it is; -1 removes a quota or limit.
type Limits struct {
	CPUShares  uint64 // relative weight, 2..262144 (v2: converted to cpu.weight)
	CPUQuota   int64  // µs per period
	CPUPeriod  uint64 // µs
	CpusetCpus string
	CpusetMems string
	Memory     int64 // bytes
}

// SetLimits writes limits into the cgroup at path (ParsePath form). It is
// for cgroups no runtime manages, such as a pod's: a container's limits go
// through its OCI runtime. The first failing write stops it and is
// returned; the writes before it stay.
func (h *Host) SetLimits(path string, l Limits) error {
	if h.V2 {
		return h.setV2(path, l)
	}
	return h.setV1(path, l)
}

func (h *Host) setV1(path string, l Limits) error {
	var w writer
	cpu := h.Dir("cpu", path)
	if l.CPUShares != 0 {
		w.write(cpu, "cpu.shares", strconv.FormatUint(l.CPUShares, 10))
	}
	// Period before quota: the quota is checked against the period.
	if l.CPUPeriod != 0 {
		w.write(cpu, "cpu.cfs_period_us", strconv.FormatUint(l.CPUPeriod, 10))
	}
	if l.CPUQuota != 0 {
		w.write(cpu, "cpu.cfs_quota_us", strconv.FormatInt(l.CPUQuota, 10))
	}
	cpuset := h.Dir("cpuset", path)
	if l.CpusetCpus != "" {
		w.write(cpuset, "cpuset.cpus", l.CpusetCpus)
	}
	if l.CpusetMems != "" {
		w.write(cpuset, "cpuset.mems", l.CpusetMems)
	}
	if l.Memory != 0 && w.err == nil {
		w.err = setV1Memory(h.Dir("memory", path), l.Memory)
	}
	return w.err
}

// setV1Memory sets memory.limit_in_bytes. The kernel refuses a memory
// limit above memory.memsw.limit_in_bytes (memory plus swap), so a swap
// limit in the way is raised to the new memory limit first; that allows
// no swap beyond memory, which is what crio sets at create.
func setV1Memory(dir string, limit int64) error {
	if dir == "" {
		return errors.New("set memory limit: the memory controller is not mounted")
	}
	memsw := filepath.Join(dir, "memory.memsw.limit_in_bytes")
	if limit > 0 {
		if b, err := os.ReadFile(memsw); err == nil {
			cur, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if perr == nil && cur < limit {
				if err := writeFile(dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(limit, 10)); err != nil {
					return err
				}
			}
		}
	}
	if err := writeFile(dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10)); err != nil {
		return err
	}
	if limit == -1 {
		if _, err := os.Stat(memsw); err == nil {
			return writeFile(dir, "memory.memsw.limit_in_bytes", "-1")
		}
	}
	return nil
}

func (h *Host) setV2(path string, l Limits) error {
	var w writer
	dir := h.Dir("", path)
	if l.CPUShares != 0 {
		w.write(dir, "cpu.weight", strconv.FormatUint(SharesToWeight(l.CPUShares), 10))
	}
	if l.CPUQuota != 0 || l.CPUPeriod != 0 {
		w.write(dir, "cpu.max", cpuMax(dir, l.CPUQuota, l.CPUPeriod))
	}
	if l.CpusetCpus != "" {
		w.write(dir, "cpuset.cpus", l.CpusetCpus)
	}
	if l.CpusetMems != "" {
		w.write(dir, "cpuset.mems", l.CpusetMems)
	}
	if l.Memory != 0 {
		v := "max"
		if l.Memory > 0 {
			v = strconv.FormatInt(l.Memory, 10)
		}
		w.write(dir, "memory.max", v)
	}
	return w.err
}

// cpuMax is the cpu.max line for a quota and period, keeping the current
// value of the one that is zero (cpu.max holds both).
func cpuMax(dir string, quota int64, period uint64) string {
	curQuota, curPeriod := "max", "100000"
	if b, err := os.ReadFile(filepath.Join(dir, "cpu.max")); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			curQuota, curPeriod = f[0], f[1]
		}
	}
	q, p := curQuota, curPeriod
	switch {
	case quota > 0:
		q = strconv.FormatInt(quota, 10)
	case quota < 0:
		q = "max"
	}
	if period != 0 {
		p = strconv.FormatUint(period, 10)
	}
	return q + " " + p
}

// SharesToWeight converts v1 cpu.shares (2..262144) to v2 cpu.weight
// (1..10000) on the linear map runc and the kubelet use.
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// WeightToShares is the inverse of SharesToWeight, for reporting a v2
// weight as the shares the CRI speaks in.
func WeightToShares(weight uint64) uint64 {
	if weight == 0 {
		return 0
	}
	weight = min(max(weight, 1), 10000)
	return 2 + ((weight-1)*262142)/9999
}

// writer keeps the first error of a sequence of writes.
type writer struct{ err error }

func (w *writer) write(dir, file, value string) {
	if w.err != nil {
		return
	}
	if dir == "" {
		w.err = fmt.Errorf("set %s: its cgroup controller is not mounted", file)
		return
	}
	w.err = writeFile(dir, file, value)
}

func writeFile(dir, file, value string) error {
	// O_WRONLY without O_CREATE: a cgroup file that does not exist is a
	// controller this cgroup does not have, not something to create.
	f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("set %s: %w", file, err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("set %s in %s to %s: %w", file, dir, value, err)
	}
	return nil
}
