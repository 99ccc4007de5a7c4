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
		{"systemd", "/kubepods/x", "/kubepods/x", true},
	}
	for _, c := range cases {
		got, err := ParsePath(c.manager, c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParsePath(%s, %q) = %q, %v", c.manager, c.in, got, err)
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
