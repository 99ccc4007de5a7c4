package cgroups

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParsePath(t *testing.T) {
	cases := []struct {
		manager, in, want string
		ok                bool
	}{
		{"cgroupfs", "/kubepods/burstable/pod1", "/kubepods/burstable/pod1", true},
		{"cgroupfs", "/kubepods//x/", "/kubepods/x", true},
		{"cgroupfs", "kubepods", "", false},
		{"cgroupfs", "/kubepods/../..", "", false},
		{"cgroupfs", "/a/./b", "", false},
		{"cgroupfs", "/a\nb", "", false},
		{"systemd", "kubepods-besteffort-pod1.slice", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice", true},
		{"systemd", "-.slice", "/", true},
		{"systemd", "a--b.slice", "", false},
		{"systemd", "/kubepods/x", "", false},
		{"systemd", "kubepods.slice/x.slice", "", false},
		{"systemd", "kube pods.slice", "", false},
		{"systemd", "kubepods-burstable-pod12ab_34cd.slice", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12ab_34cd.slice", true},
		{"systemd", "..slice", "", false},
	}
	for _, c := range cases {
		got, err := ParsePath(c.manager, c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParsePath(%s, %q) = %q, %v", c.manager, c.in, got, err)
		}
	}
}

func TestSystemdNames(t *testing.T) {
	if got := ContainerCgroupsPath("kubepods-pod1.slice", "abc"); got != "kubepods-pod1.slice:crio:abc" {
		t.Errorf("ContainerCgroupsPath = %q", got)
	}
	if got := ContainerScopePath("/kubepods.slice/kubepods-pod1.slice", "abc"); got != "/kubepods.slice/kubepods-pod1.slice/crio-abc.scope" {
		t.Errorf("ContainerScopePath = %q", got)
	}
	h := &Host{V2: true, Roots: []string{"/sys/fs/cgroup"}}
	s := &Systemd{Host: h}
	cg, err := s.Create("/crio.slice/crio-init-x.scope")
	if err != nil || cg.Unit != "crio-init-x.scope" || cg.Slice != "crio.slice" || !cg.pending || cg.Dirs[0] != "/sys/fs/cgroup/crio.slice/crio-init-x.scope" {
		t.Errorf("scope: %+v %v", cg, err)
	}
	for _, bad := range []string{"/crio.slice/pod-init", "/a/b.scope", "/crio.slice/x y.scope"} {
		if _, err := s.Create(bad); err == nil {
			t.Errorf("Create(%q) succeeded", bad)
		}
	}
	for shares, weight := range map[uint64]uint64{2: 1, 1024: 39, 262144: 10000} {
		if got := SharesToWeight(shares); got != weight {
			t.Errorf("SharesToWeight(%d) = %d, want %d", shares, got, weight)
		}
	}
}

func TestCreateRemove(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	h, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	// A shared ancestor made by the first pod stays while a second pod
	// lives below it, and the pods' own directories always go.
	a, err := h.Create("/crio-cgtest/a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Create("/crio-cgtest/b")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Created) != 2*len(h.Roots) || len(b.Created) != len(h.Roots) {
		t.Errorf("created %v / %v", a.Created, b.Created)
	}
	for _, r := range h.Roots {
		if cpus, err := os.ReadFile(filepath.Join(r, "crio-cgtest/a/cpuset.cpus")); err == nil && len(cpus) <= 1 {
			t.Errorf("cpuset.cpus not initialised in %s", r)
		}
	}
	if err := Remove(a); err != nil {
		t.Fatalf("remove a while b lives: %v", err)
	}
	if err := Remove(b); err != nil {
		t.Fatal(err)
	}
	for _, r := range h.Roots {
		if _, err := os.Stat(filepath.Join(r, "crio-cgtest/a")); !os.IsNotExist(err) {
			t.Errorf("a left in %s", r)
		}
		os.Remove(filepath.Join(r, "crio-cgtest")) // the shared ancestor, left by design
	}
	if err := Remove(a); err != nil {
		t.Errorf("second remove: %v", err)
	}
}

// The v2 code path, on this host's cgroup2 mount (the unified hierarchy of
// a hybrid host, or /sys/fs/cgroup on a v2 host).
func TestCreateRemoveV2(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root := ""
	for _, r := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(r, "cgroup.controllers")); err == nil {
			root = r
			break
		}
	}
	if root == "" {
		t.Skip("no cgroup2 mount")
	}
	h := &Host{V2: true, Roots: []string{root}}
	cg, err := h.Create("/crio-cgtest-v2/pod")
	if err != nil {
		t.Fatal(err)
	}
	if len(cg.Dirs) != 1 || cg.Dirs[0] != filepath.Join(root, "crio-cgtest-v2/pod") {
		t.Errorf("dirs %v", cg.Dirs)
	}
	if _, err := os.Stat(filepath.Join(cg.Dirs[0], "cgroup.procs")); err != nil {
		t.Error(err)
	}
	if err := Remove(cg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "crio-cgtest-v2")); !os.IsNotExist(err) {
		t.Errorf("v2 cgroup left: %v", err)
	}
}

func TestHybridRootAndRemove(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root, err := hybridRoot("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if root == "" {
		t.Skip("not a hybrid cgroup host")
	}
	pod := filepath.Join(root, "crio-hybrid-test", "pod-x")
	if err := os.MkdirAll(filepath.Join(pod, "crio-c1"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(root, "crio-hybrid-test")) })
	for _, bad := range []string{"", "/", "crio-hybrid-test/pod-x", "/crio-hybrid-test/../crio-hybrid-test/pod-x"} {
		if err := RemoveHybrid(bad); err != nil {
			t.Errorf("RemoveHybrid(%q): %v", bad, err)
		}
	}
	if _, err := os.Stat(pod); err != nil {
		t.Fatalf("a bad path removed something: %v", err)
	}
	if err := RemoveHybrid("/crio-hybrid-test/pod-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pod); !os.IsNotExist(err) {
		t.Errorf("pod directory left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "crio-hybrid-test")); err != nil {
		t.Errorf("the parent went too: %v", err)
	}
	if err := RemoveHybrid("/crio-hybrid-test/pod-x"); err != nil {
		t.Errorf("second remove: %v", err)
	}
}
