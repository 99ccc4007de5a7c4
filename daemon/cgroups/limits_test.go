package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestV1Controllers(t *testing.T) {
	mi := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(mi, []byte(`31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:32 / /elsewhere/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 31 0:39 / /short - cgroup
`), 0o644)
	got, err := v1Controllers(mi)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory"}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	h := &Host{Controllers: got}
	if d := h.Dir("memory", "/crio/pod-1"); d != "/sys/fs/cgroup/memory/crio/pod-1" {
		t.Errorf("Dir: %s", d)
	}
	if d := h.Dir("pids", "/crio"); d != "" {
		t.Errorf("unmounted controller: %q", d)
	}
	v2 := &Host{V2: true, Roots: []string{"/sys/fs/cgroup"}}
	if d := v2.Dir("memory", "/crio"); d != "/sys/fs/cgroup/crio" {
		t.Errorf("v2 Dir: %s", d)
	}
}

// cgroupFiles makes a fake cgroup directory holding the named files.
func cgroupFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, v := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestSetLimitsV1(t *testing.T) {
	root := t.TempDir()
	h := &Host{Controllers: map[string]string{"cpu": root + "/cpu", "cpuset": root + "/cpuset", "memory": root + "/memory"}}
	cgroupFiles(t, root+"/cpu/pod", map[string]string{"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1"})
	cgroupFiles(t, root+"/cpuset/pod", map[string]string{"cpuset.cpus": "0-3", "cpuset.mems": "0"})
	cgroupFiles(t, root+"/memory/pod", map[string]string{"memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes": "1000"})
	err := h.SetLimits("/pod", Limits{CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, CpusetCpus: "0-1", Memory: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"cpu/pod/cpu.shares": "512", "cpu/pod/cpu.cfs_quota_us": "50000", "cpuset/pod/cpuset.cpus": "0-1", "cpuset/pod/cpuset.mems": "0",
		"memory/pod/memory.limit_in_bytes": "67108864", "memory/pod/memory.memsw.limit_in_bytes": "67108864",
	} {
		if got := read(t, filepath.Join(root, p)); got != want {
			t.Errorf("%s = %s, want %s", p, got, want)
		}
	}
	// A controller the host lacks is an error that names the file.
	if err := h.SetLimits("/pod", Limits{CPUShares: 2, Memory: 1}); err != nil {
		t.Errorf("%v", err)
	}
	h2 := &Host{Controllers: map[string]string{}}
	if err := h2.SetLimits("/pod", Limits{CPUShares: 2}); err == nil || !strings.Contains(err.Error(), "cpu.shares") {
		t.Errorf("missing controller: %v", err)
	}
	// A cgroup file that does not exist is not created.
	if err := h.SetLimits("/gone", Limits{Memory: 1 << 20}); err == nil {
		t.Error("wrote into a missing cgroup")
	}
	if _, err := os.Stat(root + "/memory/gone"); err == nil {
		t.Error("created a cgroup directory")
	}
}

func TestSetLimitsV2(t *testing.T) {
	root := t.TempDir()
	h := &Host{V2: true, Roots: []string{root}}
	cgroupFiles(t, root+"/pod", map[string]string{"cpu.weight": "100", "cpu.max": "max 100000", "memory.max": "max", "cpuset.cpus": ""})
	if err := h.SetLimits("/pod", Limits{CPUShares: 1024, CPUQuota: 20000, Memory: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"cpu.weight": "39", "cpu.max": "20000 100000", "memory.max": "1073741824"} {
		if got := read(t, filepath.Join(root, "pod", f)); got != want {
			t.Errorf("%s = %s, want %s", f, got, want)
		}
	}
	if err := h.SetLimits("/pod", Limits{CPUQuota: -1, CPUPeriod: 50000, Memory: -1}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, root+"/pod/cpu.max"); got != "max 50000" {
		t.Errorf("cpu.max = %s", got)
	}
	if got := read(t, root+"/pod/memory.max"); got != "max" {
		t.Errorf("memory.max = %s", got)
	}
}

func TestSharesWeight(t *testing.T) {
	for _, c := range []struct{ shares, weight uint64 }{{2, 1}, {262144, 10000}, {1024, 39}, {0, 0}, {1, 1}, {1 << 40, 10000}} {
		if got := SharesToWeight(c.shares); got != c.weight {
			t.Errorf("SharesToWeight(%d) = %d, want %d", c.shares, got, c.weight)
		}
	}
	if got := WeightToShares(1); got != 2 {
		t.Errorf("WeightToShares(1) = %d", got)
	}
	if got := WeightToShares(10000); got != 262144 {
		t.Errorf("WeightToShares(10000) = %d", got)
	}
}
