package stats

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/sandbox"
)

// fixtureDirs maps controllers to testdata/v1/<controller> (v1) or every
// controller to testdata/v2 (v2).
type fixtureDirs struct{ root string }

func (f fixtureDirs) Dir(controller, path string) string {
	if strings.HasSuffix(f.root, "v2") {
		return filepath.Join(f.root, path)
	}
	return filepath.Join(f.root, controller, path)
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestReadV1(t *testing.T) {
	r := NewReader(fixtureDirs{abs(t, "testdata/v1")}, false)
	cg, err := r.Read("/pod/ctr")
	if err != nil {
		t.Fatal(err)
	}
	want := CPU{UsageNs: 123456789000, UserNs: 8e9, SystemNs: 4e9, Periods: 50, ThrottledPeriods: 7, ThrottledNs: 3e9}
	if cg.CPU != want {
		t.Errorf("cpu %+v, want %+v", cg.CPU, want)
	}
	m := cg.Memory
	if m.Usage != 52428800 || m.WorkingSet != 52428800-4194304 || m.RSS != 41943040 || m.Cache != 8388608 ||
		m.MaxUsage != 60000000 || m.Failcnt != 3 || m.Kernel != 1048576 || m.MappedFile != 4096 ||
		m.PgFault != 1000 || m.PgMajFault != 10 || m.HierPgFault != 1500 || m.HierPgMajFault != 15 || m.OOMKills != 2 {
		t.Errorf("memory %+v", m)
	}
	sp := cg.Spec
	if sp.CPUShares != 512 || sp.CPUPeriod != 100000 || sp.CPUQuota != 20000 || sp.MemoryLimit != 64<<20 ||
		sp.MemorySwapLimit != 64<<20 || sp.MemoryReservation != 0 {
		t.Errorf("spec %+v", sp)
	}
	if cg.Pids != (Pids{Current: 4, Max: 0}) {
		t.Errorf("pids %+v", cg.Pids)
	}
	if len(cg.IO) != 1 || cg.IO[0] != (IODevice{Major: 8, ReadBytes: 4096, WriteBytes: 8192, Reads: 1, Writes: 2}) {
		t.Errorf("io %+v", cg.IO)
	}
	if cg.PSI != nil {
		t.Errorf("v1 has no PSI: %+v", cg.PSI)
	}
}

func TestReadV2(t *testing.T) {
	r := NewReader(fixtureDirs{abs(t, "testdata/v2")}, true)
	cg, err := r.Read("/pod/ctr")
	if err != nil {
		t.Fatal(err)
	}
	want := CPU{UsageNs: 123456789000, UserNs: 8e9, SystemNs: 4e9, Periods: 50, ThrottledPeriods: 7, ThrottledNs: 3e9}
	if cg.CPU != want {
		t.Errorf("cpu %+v, want %+v", cg.CPU, want)
	}
	m := cg.Memory
	if m.Usage != 52428800 || m.WorkingSet != 52428800-4194304 || m.RSS != 41943040 || m.Cache != 8388608 ||
		m.MaxUsage != 60000000 || m.Failcnt != 3 || m.Kernel != 1048576 || m.HierPgFault != 1500 || m.OOMKills != 2 {
		t.Errorf("memory %+v", m)
	}
	sp := cg.Spec
	// The linear map runc uses: weight 100 is 2597 shares.
	if sp.CPUShares != 2597 ||
		sp.CPUPeriod != 100000 || sp.CPUQuota != 20000 || sp.MemoryLimit != 64<<20 || sp.MemorySwapLimit != 0 {
		t.Errorf("spec %+v", sp)
	}
	if cg.Pids != (Pids{Current: 4, Max: 100}) {
		t.Errorf("pids %+v", cg.Pids)
	}
	if len(cg.IO) != 1 || cg.IO[0] != (IODevice{Major: 8, ReadBytes: 4096, WriteBytes: 8192, Reads: 1, Writes: 2}) {
		t.Errorf("io %+v", cg.IO)
	}
	if cg.PSI == nil || cg.PSI.CPU.Some.Avg10 != 1.5 || cg.PSI.CPU.Some.TotalNs != 2e9 || cg.PSI.CPU.Full.TotalNs != 1e9 {
		t.Errorf("psi %+v", cg.PSI)
	}
	// Garbage in io.pressure reads as zero, not as NaN.
	if cg.PSI.IO.Some != (PressureLine{}) {
		t.Errorf("io pressure from garbage: %+v", cg.PSI.IO.Some)
	}
}

func TestReadMissing(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		root := "testdata/v1"
		if v2 {
			root = "testdata/v2"
		}
		r := NewReader(fixtureDirs{abs(t, root)}, v2)
		if _, err := r.Read("/pod/gone"); err == nil || !strings.Contains(err.Error(), ErrNoCgroup.Error()) {
			t.Errorf("v2=%v: %v", v2, err)
		}
	}
}

func TestHostileFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("memory.stat", strings.Repeat("x", maxFileSize*2))
	write("memory.current", "-5\n")
	write("memory.max", "99999999999999999999999\n")
	write("cpu.max", "max\n")
	write("io.stat", strings.Repeat("8:0 rbytes=1\n", maxDevices*2)+"a:b rbytes=2\n")
	write("cpu.stat", "usage_usec 18446744073709551615\n")
	r := NewReader(staticDirs(dir), true)
	cg, err := r.Read("/")
	if err != nil {
		t.Fatal(err)
	}
	if cg.Memory.Usage != 0 || cg.Spec.MemoryLimit != 0 || cg.Spec.CPUQuota != 0 || len(cg.IO) != maxDevices {
		t.Errorf("%+v", cg)
	}
	if cg.CPU.UsageNs != ^uint64(0) {
		t.Errorf("usage did not saturate: %d", cg.CPU.UsageNs)
	}
}

type staticDirs string

func (d staticDirs) Dir(string, string) string { return string(d) }

func TestParseNetDev(t *testing.T) {
	data := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0: 5000 40 1 2 0 0 0 0 7000 50 3 4 0 0 0 0
 bad0: 1 2 3
toolonginterfacename0: 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1
 neg0: -1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1
`
	ifs := ParseNetDev([]byte(data))
	if len(ifs) != 2 {
		t.Fatalf("%+v", ifs)
	}
	want := Interface{Name: "eth0", RxBytes: 5000, RxPackets: 40, RxErrors: 1, RxDropped: 2, TxBytes: 7000, TxPackets: 50, TxErrors: 3, TxDropped: 4}
	if ifs[1] != want {
		t.Errorf("%+v", ifs[1])
	}
	u := networkCRI(ifs, time.Unix(1, 0))
	if u.DefaultInterface.GetName() != "eth0" || len(u.Interfaces) != 0 || u.DefaultInterface.RxBytes.Value != 5000 {
		t.Errorf("%v", u)
	}
	many := strings.Repeat("x: 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1\n", maxInterfaces+10)
	if n := len(ParseNetDev([]byte(many))); n != maxInterfaces {
		t.Errorf("%d interfaces", n)
	}
}

func TestReadNetNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (setns)")
	}
	before, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		ifs, err := ReadNetNS("/proc/self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, in := range ifs {
			found = found || in.Name == "lo"
		}
		if !found {
			t.Fatalf("no lo in %+v", ifs)
		}
	}
	// Not a network namespace: refused, and nothing moved.
	if _, err := ReadNetNS("/proc/self/ns/uts"); err == nil {
		t.Error("a UTS namespace was read as a network namespace")
	}
	if _, err := ReadNetNS("/nonexistent"); err == nil {
		t.Error("no error for a missing file")
	}
	// Every thread of the test binary is still in the host namespace.
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		ns, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
		if err == nil && ns != before {
			t.Errorf("thread %s is in %s, not %s", task.Name(), ns, before)
		}
	}
}

func TestCPURates(t *testing.T) {
	r := newCPURates()
	t0 := time.Unix(1000, 0)
	if _, ok := r.rate("a", 1e9, t0); ok {
		t.Error("a rate from one sample")
	}
	// Too close to the first: no rate yet, and the first sample is kept.
	if _, ok := r.rate("a", 1.1e9, t0.Add(100*time.Millisecond)); ok {
		t.Error("a rate from a 100ms window")
	}
	rate, ok := r.rate("a", 3e9, t0.Add(2*time.Second)) // 2 CPU-seconds in 2s: one core
	if !ok || rate != 1e9 {
		t.Errorf("rate %d %v", rate, ok)
	}
	if rate, ok := r.rate("a", 3.05e9, t0.Add(2100*time.Millisecond)); !ok || rate != 1e9 {
		t.Errorf("close sample: %d %v, want the last rate", rate, ok)
	}
	// A counter going back starts over.
	if _, ok := r.rate("a", 5, t0.Add(5*time.Second)); ok {
		t.Error("a rate across a counter reset")
	}
}

func TestMeasureDir(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "layer")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{root + "/a/b", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 64<<10)
	for i := range big {
		big[i] = 1
	}
	os.WriteFile(root+"/a/b/f", big, 0o644)
	os.WriteFile(outside+"/huge", make([]byte, 1<<20), 0o644)
	os.Link(root+"/a/b/f", root+"/a/hardlink")
	os.Symlink(outside, root+"/a/escape")
	u, err := MeasureDir(context.Background(), root, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// layer, a, a/b, a/b/f (= a/hardlink), a/escape
	if u.Inodes != 5 || u.Truncated {
		t.Errorf("inodes %d truncated %v", u.Inodes, u.Truncated)
	}
	if u.Bytes < 64<<10 || u.Bytes >= 1<<20 {
		t.Errorf("bytes %d: the file once, the symlink's target not at all", u.Bytes)
	}
	u, err = MeasureDir(context.Background(), root, 3)
	if err != nil || !u.Truncated || u.Inodes != 3 {
		t.Errorf("bounded walk: %+v %v", u, err)
	}
	if _, err := MeasureDir(context.Background(), root+"/a/escape", 1000); err == nil {
		t.Error("a symlinked root was followed")
	}
	// Deep trees stop at maxDepth.
	deep := filepath.Join(dir, "deep")
	p := deep
	for range maxDepth + 5 {
		p = filepath.Join(p, "d")
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	u, err = MeasureDir(context.Background(), deep, 1000)
	if err != nil || !u.Truncated || u.Inodes != maxDepth+1 {
		t.Errorf("deep walk: %+v %v", u, err)
	}
}

func TestLayerCache(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/f", []byte("x"), 0o644)
	c := newLayerCache(100)
	defer c.close()
	u1, err := c.get(context.Background(), "c1", dir)
	if err != nil || u1.Inodes != 2 {
		t.Fatalf("%+v %v", u1, err)
	}
	os.WriteFile(dir+"/g", []byte("y"), 0o644)
	// Fresh: the cached value, no walk.
	u2, _ := c.get(context.Background(), "c1", dir)
	if u2 != u1 {
		t.Errorf("walked again within the TTL: %+v", u2)
	}
	// Stale: the old value at once, a refresh behind it.
	c.mu.Lock()
	c.entries["c1"].u.At = time.Now().Add(-time.Hour)
	c.mu.Unlock()
	c.get(context.Background(), "c1", dir)
	deadline := time.Now().Add(5 * time.Second)
	for {
		u, _ := c.get(context.Background(), "c1", dir)
		if u.Inodes == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refresh: %+v", u)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMemTotal(t *testing.T) {
	p := filepath.Join(t.TempDir(), "meminfo")
	os.WriteFile(p, []byte("MemFree: 1 kB\nMemTotal:       16318504 kB\n"), 0o644)
	if got := memTotal(p); got != 16318504*1024 {
		t.Errorf("%d", got)
	}
	if got := memTotal("/nonexistent"); got != 0 {
		t.Errorf("%d", got)
	}
}

func TestWritableLayer(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(dir+"/l/merged", 0o755)
	os.MkdirAll(dir+"/l/diff", 0o755)
	os.MkdirAll(dir+"/vfs/dir/x", 0o755)
	if got := writableLayer(dir + "/l/merged"); got != dir+"/l/diff" {
		t.Errorf("overlay: %s", got)
	}
	if got := writableLayer(dir + "/vfs/dir/x"); got != dir+"/vfs/dir/x" {
		t.Errorf("vfs: %s", got)
	}
	if got := writableLayer(""); got != "" {
		t.Errorf("none: %s", got)
	}
}

// fakeStore serves one pod with one running and one exited container.
type fakeStore struct {
	pods []*sandbox.Sandbox
	ctrs []*container.Container
}

func (f *fakeStore) Get(id string) (*container.Container, error) {
	for _, c := range f.ctrs {
		if c.ID == id {
			return c, nil
		}
	}
	return nil, container.ErrNotFound
}

func (f *fakeStore) List(flt container.Filter) []*container.Container {
	var out []*container.Container
	for _, c := range f.ctrs {
		if (flt.ID == "" || strings.HasPrefix(c.ID, flt.ID)) && (flt.PodID == "" || strings.HasPrefix(c.PodID, flt.PodID)) {
			match := true
			for k, v := range flt.Labels {
				match = match && c.Config.GetLabels()[k] == v
			}
			if match {
				out = append(out, c)
			}
		}
	}
	return out
}

type fakePods struct{ f *fakeStore }

func (p fakePods) Get(id string) (*sandbox.Sandbox, error) {
	for _, sb := range p.f.pods {
		if sb.ID == id {
			return sb, nil
		}
	}
	return nil, sandbox.ErrNotFound
}

func (p fakePods) List(flt sandbox.Filter) []*sandbox.Sandbox {
	var out []*sandbox.Sandbox
	for _, sb := range p.f.pods {
		if (flt.ID == "" || strings.HasPrefix(sb.ID, flt.ID)) && (flt.State == "" || sb.State == flt.State) {
			out = append(out, sb)
		}
	}
	return out
}

// fixtureService reads the v1 fixtures: the pod's cgroup is /pod, the
// running container's /pod/ctr (named by a stub of the cgroup rule).
func fixtureService(t *testing.T, v2 bool) (*Service, *fakeStore) {
	t.Helper()
	root := abs(t, "testdata/v1")
	if v2 {
		root = abs(t, "testdata/v2")
	}
	layer := t.TempDir()
	os.MkdirAll(layer+"/merged", 0o755)
	os.MkdirAll(layer+"/diff", 0o755)
	os.WriteFile(layer+"/diff/file", make([]byte, 8192), 0o644)
	store := &fakeStore{
		pods: []*sandbox.Sandbox{{
			ID: "pod", State: sandbox.StateReady, Cgroup: &cgroups.Cgroup{Path: "/"},
			Config: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "p"}, Labels: map[string]string{"app": "x"}},
		}},
		ctrs: []*container.Container{
			{ID: "ctr", PodID: "pod", State: container.StateRunning, Name: "k8s_c_p", ImageName: "busybox:latest", Rootfs: layer + "/merged", StartedAt: 2e9,
				Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Labels: map[string]string{"foo": "bar"}}},
			{ID: "old", PodID: "pod", State: container.StateExited, Rootfs: layer + "/merged",
				Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "old"}}},
		},
	}
	s, err := New(Options{
		Containers: store, Pods: fakePods{store}, Cgroups: renameDirs{fixtureDirs{root}}, CgroupV2: v2,
		StorageRoot: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.procRoot = t.TempDir()
	t.Cleanup(s.Close)
	return s, store
}

// renameDirs maps the container cgroup the spec rule names
// (/crio-ctr below the pod's) and the pod's to the fixtures.
type renameDirs struct{ fixtureDirs }

func (r renameDirs) Dir(controller, path string) string {
	switch path {
	case "/crio-ctr":
		path = "/pod/ctr"
	case "/":
		path = "/pod"
	}
	return r.fixtureDirs.Dir(controller, path)
}

func TestContainerAndPodStats(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		s, _ := fixtureService(t, v2)
		ctx := context.Background()
		st, err := s.ContainerStats(ctx, "ctr")
		if err != nil {
			t.Fatal(err)
		}
		if st.Attributes.Id != "ctr" || st.Attributes.Metadata.Name != "c" || st.Attributes.Labels["foo"] != "bar" {
			t.Errorf("attributes %v", st.Attributes)
		}
		if st.Cpu.GetUsageCoreNanoSeconds().GetValue() != 123456789000 || st.Cpu.Timestamp == 0 || st.Cpu.UsageNanoCores != nil {
			t.Errorf("cpu %v", st.Cpu)
		}
		mem := st.Memory
		if mem.WorkingSetBytes.GetValue() != 52428800-4194304 || mem.AvailableBytes.GetValue() != 64<<20-(52428800-4194304) ||
			mem.RssBytes.GetValue() != 41943040 || mem.PageFaults.GetValue() != 1500 || mem.MajorPageFaults.GetValue() != 15 {
			t.Errorf("v2=%v memory %v", v2, mem)
		}
		if st.WritableLayer.GetUsedBytes().GetValue() < 8192 || st.WritableLayer.GetInodesUsed().GetValue() != 2 ||
			st.WritableLayer.GetFsId().GetMountpoint() != s.opts.StorageRoot {
			t.Errorf("writable layer %v", st.WritableLayer)
		}
		if _, err := s.ContainerStats(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("unknown container: %v", err)
		}

		list, _ := s.ListContainerStats(ctx, &runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"foo": "bar"}})
		if len(list) != 1 || list[0].Attributes.Id != "ctr" {
			t.Errorf("label filter: %v", list)
		}
		list, _ = s.ListContainerStats(ctx, nil)
		if len(list) != 2 || list[1].Cpu != nil || list[1].WritableLayer == nil {
			t.Errorf("all: %v", list)
		}

		ps, err := s.PodSandboxStats(ctx, "pod")
		if err != nil {
			t.Fatal(err)
		}
		// The pod fixture is the container's parent: /pod has no files of
		// its own, so pod-level values are zero, but present.
		if ps.Attributes.Id != "pod" || ps.Linux.Cpu == nil || ps.Linux.Process == nil || len(ps.Linux.Containers) != 1 {
			t.Errorf("pod %v", ps)
		}
		if v2 != (ps.Linux.Io != nil) {
			t.Errorf("io psi on v2 only: %v", ps.Linux.Io)
		}
	}
}

func TestMetrics(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		s, _ := fixtureService(t, v2)
		descs := map[string]int{}
		for _, d := range s.MetricDescriptors() {
			if d.Help == "" || len(d.LabelKeys) < 3 {
				t.Errorf("descriptor %v", d)
			}
			descs[d.Name] = len(d.LabelKeys)
		}
		pms, err := s.ListPodSandboxMetrics(context.Background())
		if err != nil || len(pms) != 1 || len(pms[0].ContainerMetrics) != 1 {
			t.Fatalf("%v %v", pms, err)
		}
		seen := map[string]bool{}
		for _, m := range pms[0].ContainerMetrics[0].Metrics {
			n, ok := descs[m.Name]
			if !ok {
				t.Errorf("metric %s has no descriptor", m.Name)
			}
			if len(m.LabelValues) != n {
				t.Errorf("metric %s has %d labels, its descriptor %d", m.Name, len(m.LabelValues), n)
			}
			if m.LabelValues[0] != "ctr" || m.LabelValues[1] != "k8s_c_p" || m.LabelValues[2] != "busybox:latest" {
				t.Errorf("base labels %v", m.LabelValues)
			}
			seen[m.Name] = true
		}
		// Every descriptor has a value but the network ones (this pod has
		// no namespace) and blkio, which needs I/O on a known device.
		for name := range descs {
			if !seen[name] && !strings.HasPrefix(name, "container_network_") {
				t.Errorf("v2=%v: no value for %s", v2, name)
			}
		}
	}
}
