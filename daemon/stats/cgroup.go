package stats

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/crio-appliance/crio/daemon/cgroups"
)

// ErrNoCgroup is returned when a cgroup does not exist (a container that
// has not started yet or has exited and been cleaned up).
var ErrNoCgroup = errors.New("cgroup does not exist")

// Cgroup is one reading of a cgroup's accounting files, in the units the
// CRI speaks (nanoseconds, bytes). Fields a host does not provide are 0.
type Cgroup struct {
	At     time.Time
	CPU    CPU
	Memory Memory
	Pids   Pids
	IO     []IODevice
	Spec   Spec
	// PSI is the pressure stall information (cgroup v2 only; nil on v1).
	PSI *PSI
}

// CPU accounting.
type CPU struct {
	UsageNs, UserNs, SystemNs uint64
	// CFS bandwidth control: periods elapsed, periods throttled, time
	// throttled.
	Periods, ThrottledPeriods, ThrottledNs uint64
}

// Memory accounting.
type Memory struct {
	Usage, MaxUsage, WorkingSet, RSS, Cache, MappedFile, Swap, Kernel uint64
	InactiveFile                                                      uint64
	// Failcnt counts the times usage hit the limit.
	Failcnt uint64
	// Page faults in this cgroup alone and in it with its descendants.
	PgFault, PgMajFault, HierPgFault, HierPgMajFault uint64
	// OOMKills counts the processes the kernel killed for the limit.
	OOMKills uint64
}

// Pids accounting: tasks (threads) now, and the limit (0: none).
type Pids struct {
	Current, Max uint64
}

// IODevice is block I/O of the cgroup on one device.
type IODevice struct {
	Major, Minor                         uint64
	ReadBytes, WriteBytes, Reads, Writes uint64
}

// Spec is the cgroup's limits as the kernel holds them. Unlimited values
// are 0.
type Spec struct {
	CPUShares, CPUPeriod uint64
	CPUQuota             int64 // -1: no quota
	MemoryLimit          uint64
	MemorySwapLimit      uint64
	MemoryReservation    uint64
}

// PSI is pressure stall information for CPU, memory and I/O.
type PSI struct {
	CPU, Memory, IO Pressure
}

// Pressure is one resource's "some" (at least one task stalled) and "full"
// (all tasks stalled) lines.
type Pressure struct {
	Some, Full PressureLine
}

// PressureLine holds averages in percent and the total stall time.
type PressureLine struct {
	Avg10, Avg60, Avg300 float64
	TotalNs              uint64
}

// Dirs finds a cgroup's directory per controller; *cgroups.Host
// implements it.
type Dirs interface {
	Dir(controller, path string) string
}

var _ Dirs = (*cgroups.Host)(nil)

// Reader reads cgroups of one host layout.
type Reader struct {
	dirs Dirs
	v2   bool
}

// NewReader reads cgroups through dirs; v2 selects the unified layout's
// file names.
func NewReader(dirs Dirs, v2 bool) *Reader { return &Reader{dirs: dirs, v2: v2} }

// unlimited is the smallest value treated as "no limit": v1 reports no
// limit as the largest page-aligned int64, and nothing real comes near 2^62.
const unlimited = 1 << 62

// maxFileSize bounds one read of an accounting file. memory.stat is a few
// KiB; io.stat and blkio files grow with the number of devices.
const maxFileSize = 256 << 10

// Read reads the cgroup at path (a cgroupfs path such as
// /crio/pod-x/crio-y). It returns ErrNoCgroup when the cgroup is gone;
// files a kernel does not have are skipped.
func (r *Reader) Read(path string) (*Cgroup, error) {
	if r.v2 {
		return r.readV2(path)
	}
	return r.readV1(path)
}

func (r *Reader) readV1(path string) (*Cgroup, error) {
	cg := &Cgroup{At: time.Now()}
	mem := r.dirs.Dir("memory", path)
	if mem == "" || !isDir(mem) {
		return nil, fmt.Errorf("%w: %s", ErrNoCgroup, path)
	}
	if dir := r.dirs.Dir("cpuacct", path); dir != "" {
		cg.CPU.UsageNs = readUint(dir, "cpuacct.usage")
		if kv := readKV(dir, "cpuacct.stat"); kv != nil {
			// In USER_HZ ticks, which Linux fixes at 100 a second for
			// this interface whatever the kernel's HZ.
			cg.CPU.UserNs = mulSat(kv["user"], uint64(10*time.Millisecond))
			cg.CPU.SystemNs = mulSat(kv["system"], uint64(10*time.Millisecond))
		}
	}
	if dir := r.dirs.Dir("cpu", path); dir != "" {
		kv := readKV(dir, "cpu.stat")
		cg.CPU.Periods, cg.CPU.ThrottledPeriods, cg.CPU.ThrottledNs = kv["nr_periods"], kv["nr_throttled"], kv["throttled_time"]
		cg.Spec.CPUShares = readUint(dir, "cpu.shares")
		cg.Spec.CPUPeriod = readUint(dir, "cpu.cfs_period_us")
		cg.Spec.CPUQuota = readInt(dir, "cpu.cfs_quota_us")
	}

	m := &cg.Memory
	m.Usage = readUint(mem, "memory.usage_in_bytes")
	m.MaxUsage = readUint(mem, "memory.max_usage_in_bytes")
	m.Failcnt = readUint(mem, "memory.failcnt")
	m.Kernel = readUint(mem, "memory.kmem.usage_in_bytes")
	st := readKV(mem, "memory.stat")
	m.RSS, m.Cache, m.MappedFile = st["total_rss"], st["total_cache"], st["total_mapped_file"]
	m.Swap, m.InactiveFile = st["total_swap"], st["total_inactive_file"]
	m.PgFault, m.PgMajFault = st["pgfault"], st["pgmajfault"]
	m.HierPgFault, m.HierPgMajFault = st["total_pgfault"], st["total_pgmajfault"]
	m.WorkingSet = subSat(m.Usage, m.InactiveFile)
	m.OOMKills = readKV(mem, "memory.oom_control")["oom_kill"]
	cg.Spec.MemoryLimit = limit(readUint(mem, "memory.limit_in_bytes"))
	cg.Spec.MemorySwapLimit = limit(readUint(mem, "memory.memsw.limit_in_bytes"))
	cg.Spec.MemoryReservation = limit(readUint(mem, "memory.soft_limit_in_bytes"))

	if dir := r.dirs.Dir("pids", path); dir != "" {
		cg.Pids.Current = readUint(dir, "pids.current")
		cg.Pids.Max = readMax(dir, "pids.max")
	}
	if dir := r.dirs.Dir("blkio", path); dir != "" {
		cg.IO = readBlkio(dir)
	}
	return cg, nil
}

func (r *Reader) readV2(path string) (*Cgroup, error) {
	cg := &Cgroup{At: time.Now()}
	dir := r.dirs.Dir("", path)
	if dir == "" || !isDir(dir) {
		return nil, fmt.Errorf("%w: %s", ErrNoCgroup, path)
	}
	kv := readKV(dir, "cpu.stat")
	us := uint64(time.Microsecond)
	cg.CPU = CPU{
		UsageNs: mulSat(kv["usage_usec"], us), UserNs: mulSat(kv["user_usec"], us), SystemNs: mulSat(kv["system_usec"], us),
		Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledNs: mulSat(kv["throttled_usec"], us),
	}
	cg.Spec.CPUShares = cgroups.WeightToShares(readUint(dir, "cpu.weight"))
	if f := strings.Fields(readString(dir, "cpu.max")); len(f) == 2 {
		cg.Spec.CPUQuota = -1
		if f[0] != "max" {
			cg.Spec.CPUQuota, _ = strconv.ParseInt(f[0], 10, 64)
		}
		cg.Spec.CPUPeriod, _ = strconv.ParseUint(f[1], 10, 64)
	}

	m := &cg.Memory
	m.Usage = readUint(dir, "memory.current")
	m.MaxUsage = readUint(dir, "memory.peak") // kernel 5.19+
	m.Swap = readUint(dir, "memory.swap.current")
	st := readKV(dir, "memory.stat")
	m.RSS, m.Cache, m.MappedFile, m.InactiveFile = st["anon"], st["file"], st["file_mapped"], st["inactive_file"]
	m.Kernel = st["kernel"] // kernel 5.18+; older kernels: the parts
	if m.Kernel == 0 {
		m.Kernel = st["kernel_stack"] + st["pagetables"] + st["percpu"] + st["sock"] + st["vmalloc"] + st["slab"]
	}
	// v2 counts faults hierarchically only.
	m.PgFault, m.PgMajFault = st["pgfault"], st["pgmajfault"]
	m.HierPgFault, m.HierPgMajFault = m.PgFault, m.PgMajFault
	m.WorkingSet = subSat(m.Usage, m.InactiveFile)
	ev := readKV(dir, "memory.events")
	m.Failcnt, m.OOMKills = ev["max"], ev["oom_kill"]
	cg.Spec.MemoryLimit = readMax(dir, "memory.max")
	if swapMax := readMax(dir, "memory.swap.max"); swapMax != 0 && cg.Spec.MemoryLimit != 0 {
		// v1 reports memory plus swap; say the same on v2.
		cg.Spec.MemorySwapLimit = addSat(swapMax, cg.Spec.MemoryLimit)
	}
	cg.Spec.MemoryReservation = readMax(dir, "memory.low")

	cg.Pids.Current = readUint(dir, "pids.current")
	cg.Pids.Max = readMax(dir, "pids.max")
	cg.IO = readIOStat(dir)
	cg.PSI = &PSI{
		CPU:    readPressure(dir, "cpu.pressure"),
		Memory: readPressure(dir, "memory.pressure"),
		IO:     readPressure(dir, "io.pressure"),
	}
	return cg, nil
}

// readBlkio reads v1 throttle accounting (it counts I/O under every I/O
// scheduler), hierarchically where the kernel offers it.
func readBlkio(dir string) []IODevice {
	bytesFile, opsFile := "blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"
	if _, err := os.Stat(filepath.Join(dir, bytesFile)); err != nil {
		bytesFile, opsFile = "blkio.throttle.io_service_bytes", "blkio.throttle.io_serviced"
	}
	devs := map[[2]uint64]*IODevice{}
	var order [][2]uint64
	get := func(maj, min uint64) *IODevice {
		k := [2]uint64{maj, min}
		d, ok := devs[k]
		if !ok {
			if len(devs) >= maxDevices {
				return nil
			}
			d = &IODevice{Major: maj, Minor: min}
			devs[k] = d
			order = append(order, k)
		}
		return d
	}
	for _, f := range []string{bytesFile, opsFile} {
		data := readFile(dir, f)
		for line := range strings.Lines(string(data)) {
			// "8:0 Read 4096"
			fields := strings.Fields(line)
			if len(fields) != 3 {
				continue
			}
			maj, min, ok := parseDevice(fields[0])
			v, err := strconv.ParseUint(fields[2], 10, 64)
			if !ok || err != nil {
				continue
			}
			d := get(maj, min)
			if d == nil {
				continue
			}
			switch {
			case f == bytesFile && fields[1] == "Read":
				d.ReadBytes = v
			case f == bytesFile && fields[1] == "Write":
				d.WriteBytes = v
			case f == opsFile && fields[1] == "Read":
				d.Reads = v
			case f == opsFile && fields[1] == "Write":
				d.Writes = v
			}
		}
	}
	out := make([]IODevice, 0, len(order))
	for _, k := range order {
		out = append(out, *devs[k])
	}
	return out
}

// maxDevices bounds the devices reported for one cgroup.
const maxDevices = 256

// readIOStat reads v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...".
func readIOStat(dir string) []IODevice {
	var out []IODevice
	for line := range strings.Lines(string(readFile(dir, "io.stat"))) {
		fields := strings.Fields(line)
		if len(fields) < 2 || len(out) >= maxDevices {
			continue
		}
		maj, min, ok := parseDevice(fields[0])
		if !ok {
			continue
		}
		d := IODevice{Major: maj, Minor: min}
		for _, f := range fields[1:] {
			k, v, ok := strings.Cut(f, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if !ok || err != nil {
				continue
			}
			switch k {
			case "rbytes":
				d.ReadBytes = n
			case "wbytes":
				d.WriteBytes = n
			case "rios":
				d.Reads = n
			case "wios":
				d.Writes = n
			}
		}
		out = append(out, d)
	}
	return out
}

func parseDevice(s string) (maj, min uint64, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	maj, err1 := strconv.ParseUint(a, 10, 32)
	min, err2 := strconv.ParseUint(b, 10, 32)
	return maj, min, err1 == nil && err2 == nil
}

// readPressure parses "some avg10=0.00 avg60=0.00 avg300=0.00 total=0"
// lines (total in µs).
func readPressure(dir, file string) Pressure {
	var p Pressure
	for line := range strings.Lines(string(readFile(dir, file))) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		var pl *PressureLine
		switch fields[0] {
		case "some":
			pl = &p.Some
		case "full":
			pl = &p.Full
		default:
			continue
		}
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "avg10", "avg60", "avg300":
				x, err := strconv.ParseFloat(v, 64)
				if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
					continue
				}
				switch k {
				case "avg10":
					pl.Avg10 = x
				case "avg60":
					pl.Avg60 = x
				default:
					pl.Avg300 = x
				}
			case "total":
				if n, err := strconv.ParseUint(v, 10, 64); err == nil {
					pl.TotalNs = mulSat(n, uint64(time.Microsecond))
				}
			}
		}
	}
	return p
}

// readFile reads at most maxFileSize bytes of dir/file; a missing or
// unreadable file reads as empty (the kernel or controller lacks it).
func readFile(dir, file string) []byte {
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize))
	if err != nil {
		return nil
	}
	return b
}

func readString(dir, file string) string {
	return string(bytes.TrimSpace(readFile(dir, file)))
}

// readUint reads a file holding one unsigned number; anything else is 0.
func readUint(dir, file string) uint64 {
	v, err := strconv.ParseUint(readString(dir, file), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

func readInt(dir, file string) int64 {
	v, err := strconv.ParseInt(readString(dir, file), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// readMax reads a v2 limit ("max" or a number) or pids.max; "max" is 0.
func readMax(dir, file string) uint64 {
	s := readString(dir, file)
	if s == "max" {
		return 0
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return limit(v)
}

// readKV parses "key value" lines (memory.stat, cpu.stat); lines that are
// not a name and an unsigned number are skipped.
func readKV(dir, file string) map[string]uint64 {
	data := readFile(dir, file)
	if data == nil {
		return nil
	}
	out := map[string]uint64{}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(s.Text()), " ")
		if !ok || len(k) > 64 {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		out[k] = n
	}
	return out
}

// limit maps the kernel's "no limit" values to 0.
func limit(v uint64) uint64 {
	if v >= unlimited {
		return 0
	}
	return v
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func subSat(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func addSat(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

func mulSat(a, b uint64) uint64 {
	if b != 0 && a > math.MaxUint64/b {
		return math.MaxUint64
	}
	return a * b
}
