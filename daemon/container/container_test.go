package container

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/image"
)

func TestLogPath(t *testing.T) {
	id := strings.Repeat("a", 64)
	for rel, want := range map[string]string{
		"":               "/logs/pod/" + id + ".log",
		"c/0.log":        "/logs/pod/c/0.log",
		"c/./x/../0.log": "/logs/pod/c/0.log",
		"ctr_1.log":      "/logs/pod/ctr_1.log",
	} {
		got, err := logPath("/logs/pod", rel, id)
		if err != nil || got != want {
			t.Errorf("logPath(%q) = %q, %v; want %q", rel, got, err, want)
		}
	}
	for _, rel := range []string{"../x.log", "c/../../x.log", "/etc/passwd", "..", ".", "dir/", "a\x00b", "a\nb"} {
		_, err := logPath("/logs/pod", rel, id)
		var ie *errdefs.InvalidArgumentError
		if !errors.As(err, &ie) || ie.Field != "config.log_path" {
			t.Errorf("logPath(%q): %v, want invalid config.log_path", rel, err)
		}
	}
	if _, err := logPath("", "x.log", id); !errors.Is(err, ErrFailedPrecondition) {
		t.Errorf("no log dir: %v", err)
	}
}

func TestValidateRequest(t *testing.T) {
	ok := func() *runtimeapi.ContainerConfig {
		return &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}}
	}
	if err := validateRequest(ok()); err != nil {
		t.Fatal(err)
	}
	for field, mutate := range map[string]func(*runtimeapi.ContainerConfig){
		"config.metadata":      func(c *runtimeapi.ContainerConfig) { c.Metadata = nil },
		"config.metadata.name": func(c *runtimeapi.ContainerConfig) { c.Metadata.Name = "a/b" },
		"config.image.image":   func(c *runtimeapi.ContainerConfig) { c.Image.Image = "" },
		"config.labels":        func(c *runtimeapi.ContainerConfig) { c.Labels = map[string]string{"": "x"} },
		"config.annotations": func(c *runtimeapi.ContainerConfig) {
			c.Annotations = map[string]string{"k": strings.Repeat("x", 300<<10)}
		},
		"config.CDI_devices": func(c *runtimeapi.ContainerConfig) { c.CDIDevices = []*runtimeapi.CDIDevice{{Name: "x"}} },
	} {
		c := ok()
		mutate(c)
		var ie *errdefs.InvalidArgumentError
		if err := validateRequest(c); !errors.As(err, &ie) || ie.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	if err := validateRequest(nil); err == nil {
		t.Error("nil config accepted")
	}
}

func TestImageNames(t *testing.T) {
	img := &image.Image{ID: "ff", RepoTags: []string{"docker.io/library/busybox:latest", "quay.io/x/busybox:1"}, RepoDigests: []string{"docker.io/library/busybox@sha256:aa"}}
	name, ref := imageNames("quay.io/x/busybox:1", img)
	if name != "quay.io/x/busybox:1" || ref != "docker.io/library/busybox@sha256:aa" {
		t.Errorf("%q %q", name, ref)
	}
	if name, _ := imageNames("busybox", img); name != "docker.io/library/busybox:latest" {
		t.Errorf("short name: %q", name)
	}
	if name, ref := imageNames("ff", &image.Image{ID: "ff"}); name != "ff" || ref != "ff" {
		t.Errorf("untagged: %q %q", name, ref)
	}
}

func TestMatches(t *testing.T) {
	c := &Container{ID: "abcdef", PodID: "123456", State: StateCreating, Config: &runtimeapi.ContainerConfig{Labels: map[string]string{"a": "1"}}}
	for f, want := range map[*Filter]bool{
		{}:                                    true,
		{ID: "abc"}:                           true,
		{ID: "abd"}:                           false,
		{PodID: "123"}:                        true,
		{State: StateCreated}:                 true, // creating shows as created
		{State: StateRunning}:                 false,
		{Labels: map[string]string{"a": "1"}}: true,
		{Labels: map[string]string{"a": "2"}}: false,
	} {
		if got := matches(c, *f); got != want {
			t.Errorf("%+v: %v", *f, got)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st := newStore(dir, filepath.Join(t.TempDir(), "run"))
	id := strings.Repeat("b", 64)
	c := &Container{ID: id, Name: "k8s_x", State: StateRunning, ExitCode: 3, SupplementalGroups: []int64{1, 2},
		Mounts: []MountRecord{{ContainerPath: "/a", HostPath: "/b"}},
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "x"}, Envs: []*runtimeapi.KeyValue{{Key: "K", Value: []byte("v\nw")}}}}
	if err := st.SaveVolatile(c); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, strings.Repeat("c", 64)+".json"), []byte("{torn"), 0o600)
	os.WriteFile(filepath.Join(dir, "other.json"), []byte(`{"id":"`+id+`","config":{}}`), 0o600)
	got, errs := st.LoadAll()
	if len(got) != 1 || len(errs) != 2 {
		t.Fatalf("loaded %d, errors %v", len(got), errs)
	}
	g := got[0]
	if g.ID != id || g.State != StateRunning || g.ExitCode != 3 || len(g.SupplementalGroups) != 2 || g.Mounts[0].HostPath != "/b" ||
		g.Config.GetMetadata().GetName() != "x" || string(g.Config.Envs[0].Value) != "v\nw" {
		t.Errorf("round trip: %+v", g)
	}
	if err := st.Delete(id); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(id); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

// Stop kills only the init of a container with a PID namespace of its own
// (the kernel then kills the rest), and every process of its cgroup when
// the namespace is shared: the record says which.
func TestOwnPIDNamespace(t *testing.T) {
	withNS := func(ns ...rspec.LinuxNamespace) *rspec.Spec {
		return &rspec.Spec{Linux: &rspec.Linux{Namespaces: ns}}
	}
	for _, tc := range []struct {
		name string
		spec *rspec.Spec
		want bool
	}{
		{"new pid namespace", withNS(rspec.LinuxNamespace{Type: rspec.NetworkNamespace, Path: "/run/netns/x"}, rspec.LinuxNamespace{Type: rspec.PIDNamespace}), true},
		{"the pod's", withNS(rspec.LinuxNamespace{Type: rspec.PIDNamespace, Path: "/run/crio/ns/pidns/p"}), false},
		{"the host's (no pid entry)", withNS(rspec.LinuxNamespace{Type: rspec.MountNamespace}), false},
		{"no linux section", &rspec.Spec{}, false},
		{"no spec", nil, false},
	} {
		if got := ownPIDNamespace(tc.spec); got != tc.want {
			t.Errorf("%s: ownPIDNamespace = %v, want %v", tc.name, got, tc.want)
		}
	}
}
