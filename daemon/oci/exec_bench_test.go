package oci

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkExecSync measures ExecSync (runc exec alone; it was measured
// against conmon's exec mode, CRI-O's way, when the choice was made):
// latency per call (p50, p95) and the memory the helpers of one call take
// at their peak, measured two ways:
//
//   - peak-KiB: the peak charge of a memory cgroup holding only the
//     helpers (each helper is moved into it by a wrapper shell before it
//     execs, so all its pages are charged there; the exec'd process itself
//     runs in the container's cgroup and is the same for both);
//   - rss-KiB: the peak of the sum of the helpers' VmRSS, sampled every
//     millisecond (comparable with the RSS figures in BASELINE.md).
//
// Run: go test -tags ... -run XXX -bench ExecSync -benchtime 50x ./daemon/oci/
func BenchmarkExecSync(b *testing.B) {
	if _, err := exec.LookPath("/bin/sh"); err != nil {
		b.Skip("no /bin/sh")
	}
	e := newEnv(b)
	cg := newBenchCgroup(b)
	c := e.run("sleep", "100000")
	b.Run("runc", func(b *testing.B) {
		rt := *e.rt
		p, err := ExecProcess(c.bundle, []string{"true"}, false)
		if err != nil {
			b.Fatal(err)
		}
		startHook = cg.wrap
		defer func() { startHook = nil }()
		var lat []time.Duration
		var peaks, rsss []int64
		for b.Loop() {
			cg.reset()
			stop := cg.sampleRSS()
			start := time.Now()
			res, err := rt.ExecSync(context.Background(), ExecSyncOptions{ID: c.id, Bundle: c.bundle, Process: p, Timeout: 10 * time.Second})
			lat = append(lat, time.Since(start))
			rss := stop()
			if err != nil || res.ExitCode != 0 {
				b.Fatalf("exec: %+v %v", res, err)
			}
			peaks = append(peaks, cg.peak())
			rsss = append(rsss, rss)
		}
		slices.Sort(lat)
		slices.Sort(peaks)
		slices.Sort(rsss)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		b.ReportMetric(float64(peaks[len(peaks)/2])/1024, "peak-KiB")
		b.ReportMetric(float64(rsss[len(rsss)/2])/1024, "rss-KiB")
	})
}

// benchCgroup is a memory cgroup (v1 or v2) below the one this process
// runs in.
type benchCgroup struct {
	dir string
	v2  bool
}

func newBenchCgroup(b *testing.B) *benchCgroup {
	b.Helper()
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		b.Skip(err)
	}
	defer f.Close()
	var own string
	v2 := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if slices.Contains(strings.Split(parts[1], ","), "memory") {
			own = filepath.Join("/sys/fs/cgroup/memory", parts[2])
			break
		}
		if parts[0] == "0" && parts[1] == "" {
			own, v2 = filepath.Join("/sys/fs/cgroup", parts[2]), true
		}
	}
	if own == "" {
		b.Skip("no memory cgroup")
	}
	dir := filepath.Join(own, fmt.Sprintf("crio-exec-bench-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Skipf("cannot make a memory cgroup: %v", err)
	}
	b.Cleanup(func() { os.Remove(dir) })
	return &benchCgroup{dir: dir, v2: v2}
}

// wrap makes cmd move itself into the cgroup before it execs.
func (cg *benchCgroup) wrap(cmd *exec.Cmd) {
	args := append([]string{"sh", "-c", `echo $$ > "$0" && exec "$@"`, filepath.Join(cg.dir, "cgroup.procs"), cmd.Path}, cmd.Args[1:]...)
	cmd.Path, cmd.Args = "/bin/sh", args
}

func (cg *benchCgroup) reset() {
	if cg.v2 {
		os.WriteFile(filepath.Join(cg.dir, "memory.peak"), []byte("0"), 0) // kernels >= 6.12
		return
	}
	os.WriteFile(filepath.Join(cg.dir, "memory.max_usage_in_bytes"), []byte("0"), 0)
}

func (cg *benchCgroup) peak() int64 {
	name := "memory.max_usage_in_bytes"
	if cg.v2 {
		name = "memory.peak"
	}
	b, _ := os.ReadFile(filepath.Join(cg.dir, name))
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// sampleRSS samples the summed VmRSS of the cgroup's processes until the
// returned function is called, which returns the peak in bytes.
func (cg *benchCgroup) sampleRSS() func() int64 {
	var peak atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			var sum int64
			b, _ := os.ReadFile(filepath.Join(cg.dir, "cgroup.procs"))
			for _, pid := range strings.Fields(string(b)) {
				sum += vmRSS(pid)
			}
			if sum > peak.Load() {
				peak.Store(sum)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	return func() int64 {
		close(stop)
		wg.Wait()
		return peak.Load()
	}
}

func vmRSS(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}
