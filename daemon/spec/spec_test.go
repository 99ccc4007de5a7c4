package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// fakeHost answers Host questions from fixed data.
type fakeHost struct {
	facts   HostFacts
	devices map[string][]rspec.LinuxDevice
	shared  map[string]bool
	slave   map[string]bool
	created []string
	// apparmor are the AppArmor profiles loaded.
	apparmor map[string]bool
}

func (h *fakeHost) Devices(p string) ([]rspec.LinuxDevice, error) {
	d, ok := h.devices[p]
	if !ok {
		return nil, ErrNotFound
	}
	return d, nil
}

func (h *fakeHost) AllDevices() ([]rspec.LinuxDevice, error) {
	var out []rspec.LinuxDevice
	for _, d := range h.devices {
		out = append(out, d...)
	}
	return out, nil
}

func (h *fakeHost) Propagation(p string) (bool, bool, error) {
	return h.shared[p], h.slave[p], nil
}

func (h *fakeHost) MountSource(p string, create bool) (string, error) {
	if strings.HasPrefix(p, "/missing") {
		if !create {
			return "", ErrNotFound
		}
		h.created = append(h.created, p)
	}
	return p, nil
}

func (h *fakeHost) Facts() HostFacts { return h.facts }

func (h *fakeHost) AppArmorLoaded(name string) bool { return h.apparmor[name] }

var defaultCaps = []string{"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL"}

func newInput(t *testing.T) *Input {
	t.Helper()
	return &Input{
		ID: "c0ffee",
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Image:    &runtimeapi.ImageSpec{Image: "busybox"},
			Command:  []string{"/bin/true"},
		},
		Pod: Pod{
			ID: "pod", Hostname: "podhost", NetNS: "/run/netns/p", IPCNS: "/run/ipcns/p", UTSNS: "/run/utsns/p",
			ResolvPath: "/run/p/resolv.conf", HostsPath: "/run/p/hosts", HostnamePath: "/run/p/hostname",
			ShmPath: "/run/p/shm", CgroupParent: "/crio/pod-p",
		},
		Image:    &imgspecv1.ImageConfig{Env: []string{"PATH=/bin", "FROM_IMAGE=1"}},
		Rootfs:   rootfs(t, "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n", "root:x:0:\napp:x:1001:\nextra:x:50000:app\nother:x:60000:root\n"),
		Defaults: Defaults{Capabilities: defaultCaps},
		Host:     &fakeHost{facts: HostFacts{LastCap: 40}},
	}
}

func rootfs(t *testing.T, passwd, group string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "group"), []byte(group), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func sc(in *Input) *runtimeapi.LinuxContainerSecurityContext {
	if in.Config.Linux == nil {
		in.Config.Linux = &runtimeapi.LinuxContainerConfig{}
	}
	if in.Config.Linux.SecurityContext == nil {
		in.Config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{}
	}
	return in.Config.Linux.SecurityContext
}

func mustGenerate(t *testing.T, in *Input) *Result {
	t.Helper()
	r, err := Generate(in)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return r
}

// wantInvalid checks that err is an InvalidArgumentError naming field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var ie *errdefs.InvalidArgumentError
	if !errors.As(err, &ie) {
		t.Fatalf("want InvalidArgumentError for %s, got %v", field, err)
	}
	if ie.Field != field {
		t.Fatalf("want field %s, got %s (%v)", field, ie.Field, err)
	}
}

func TestCommandRules(t *testing.T) {
	img := &imgspecv1.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"cmd1", "cmd2"}}
	for _, tc := range []struct {
		name          string
		command, args []string
		img           *imgspecv1.ImageConfig
		want          []string
	}{
		{"image only", nil, nil, img, []string{"/ep", "cmd1", "cmd2"}},
		{"args replace Cmd", nil, []string{"a"}, img, []string{"/ep", "a"}},
		{"command drops Cmd", []string{"/c"}, nil, img, []string{"/c"}},
		{"command and args", []string{"/c"}, []string{"a", "b"}, img, []string{"/c", "a", "b"}},
		{"Cmd only image", nil, nil, &imgspecv1.ImageConfig{Cmd: []string{"/bin/sh"}}, []string{"/bin/sh"}},
		{"multi-line script", []string{"sh", "-c", "echo a\necho b"}, nil, nil, []string{"sh", "-c", "echo a\necho b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInput(t)
			in.Config.Command, in.Config.Args, in.Image = tc.command, tc.args, tc.img
			r := mustGenerate(t, in)
			if !slices.Equal(r.Spec.Process.Args, tc.want) {
				t.Fatalf("args %q, want %q", r.Spec.Process.Args, tc.want)
			}
		})
	}
	in := newInput(t)
	in.Config.Command, in.Image = nil, &imgspecv1.ImageConfig{}
	_, err := Generate(in)
	wantInvalid(t, err, "config.command")
	in = newInput(t)
	in.Config.Args = []string{"ok", "bad\x00"}
	_, err = Generate(in)
	wantInvalid(t, err, "config.args[1]")
}

func TestEnv(t *testing.T) {
	in := newInput(t)
	in.Defaults.Env = []string{"FROM_DEFAULT=1", "FROM_IMAGE=overridden-by-default"}
	in.Config.Envs = []*runtimeapi.KeyValue{{Key: "FROM_CRI", Value: []byte("x")}, {Key: "FROM_DEFAULT", Value: []byte("cri")}, {Key: "PEM", Value: []byte("line1\nline2")}}
	in.Config.Tty = true
	r := mustGenerate(t, in)
	env := r.Spec.Process.Env
	for _, want := range []string{"PATH=/bin", "HOSTNAME=podhost", "TERM=xterm", "FROM_IMAGE=overridden-by-default", "FROM_DEFAULT=cri", "FROM_CRI=x", "PEM=line1\nline2", "HOME=/root"} {
		if !slices.Contains(env, want) {
			t.Errorf("env %q lacks %q", env, want)
		}
	}
	for _, bad := range []struct {
		kv    *runtimeapi.KeyValue
		field string
	}{
		{&runtimeapi.KeyValue{Key: "A=B", Value: []byte("x")}, "config.envs[0].key"},
		{&runtimeapi.KeyValue{Key: "", Value: []byte("x")}, "config.envs[0].key"},
		{&runtimeapi.KeyValue{Key: "A\nB", Value: []byte("x")}, "config.envs[0].key"},
		{&runtimeapi.KeyValue{Key: "A", Value: []byte("x\x00y")}, "config.envs[0].value"},
	} {
		in := newInput(t)
		in.Config.Envs = []*runtimeapi.KeyValue{bad.kv}
		_, err := Generate(in)
		wantInvalid(t, err, bad.field)
	}
}

func TestWorkingDir(t *testing.T) {
	in := newInput(t)
	in.Image.WorkingDir = "/srv"
	if r := mustGenerate(t, in); r.Spec.Process.Cwd != "/srv" {
		t.Fatalf("cwd %q", r.Spec.Process.Cwd)
	}
	in.Config.WorkingDir = "/a/../b"
	if r := mustGenerate(t, in); r.Spec.Process.Cwd != "/b" {
		t.Fatalf("cwd %q", r.Spec.Process.Cwd)
	}
	in.Config.WorkingDir = "relative"
	_, err := Generate(in)
	wantInvalid(t, err, "config.working_dir")
}

func TestUsers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		imageUser string
		set       func(*runtimeapi.LinuxContainerSecurityContext)
		uid, gid  int64
		groups    []int64
	}{
		{"root by default", "", nil, 0, 0, []int64{0, 60000}},
		{"image user name", "app", nil, 1000, 1001, []int64{1001, 50000}},
		{"image uid:gid", "1000:7", nil, 1000, 7, []int64{7, 50000}},
		{"image name:group", "app:extra", nil, 1000, 50000, []int64{50000}},
		{"unknown numeric uid", "4242", nil, 4242, 0, []int64{0}},
		{"run_as_user wins over image", "app", func(s *runtimeapi.LinuxContainerSecurityContext) {
			s.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
		}, 1000, 1001, []int64{1001, 50000}},
		{"run_as_username", "", func(s *runtimeapi.LinuxContainerSecurityContext) { s.RunAsUsername = "app" }, 1000, 1001, []int64{1001, 50000}},
		{"run_as_group", "", func(s *runtimeapi.LinuxContainerSecurityContext) {
			s.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
			s.RunAsGroup = &runtimeapi.Int64Value{Value: 1002}
		}, 1000, 1002, []int64{1002, 50000}},
		{"merge supplemental", "", func(s *runtimeapi.LinuxContainerSecurityContext) {
			s.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
			s.SupplementalGroups = []int64{1234, 1001}
		}, 1000, 1001, []int64{1001, 50000, 1234}},
		{"strict supplemental", "", func(s *runtimeapi.LinuxContainerSecurityContext) {
			s.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
			s.SupplementalGroups = []int64{1234}
			s.SupplementalGroupsPolicy = runtimeapi.SupplementalGroupsPolicy_Strict
		}, 1000, 1001, []int64{1001, 1234}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInput(t)
			in.Image.User = tc.imageUser
			if tc.set != nil {
				tc.set(sc(in))
			}
			r := mustGenerate(t, in)
			u := r.Spec.Process.User
			if int64(u.UID) != tc.uid || int64(u.GID) != tc.gid || r.UID != tc.uid || r.GID != tc.gid {
				t.Fatalf("uid/gid %d/%d, want %d/%d", u.UID, u.GID, tc.uid, tc.gid)
			}
			if !slices.Equal(r.SupplementalGroups, tc.groups) {
				t.Fatalf("groups %v, want %v", r.SupplementalGroups, tc.groups)
			}
		})
	}
	in := newInput(t)
	sc(in).RunAsGroup = &runtimeapi.Int64Value{Value: 5}
	_, err := Generate(in)
	wantInvalid(t, err, "config.linux.security_context.run_as_group")
	in = newInput(t)
	sc(in).RunAsUsername = "nobody-here"
	_, err = Generate(in)
	wantInvalid(t, err, "config.linux.security_context.run_as_username")
	in = newInput(t)
	sc(in).RunAsUser = &runtimeapi.Int64Value{Value: -1}
	_, err = Generate(in)
	wantInvalid(t, err, "config.linux.security_context.run_as_user")
}

// TestPasswdSymlinkStaysInRootfs: an image whose /etc/passwd is a symlink
// to an absolute path must be read inside the rootfs, never the host's.
func TestPasswdSymlinkStaysInRootfs(t *testing.T) {
	in := newInput(t)
	dir := in.Rootfs
	os.Remove(filepath.Join(dir, "etc", "passwd"))
	os.MkdirAll(filepath.Join(dir, "elsewhere"), 0o755)
	os.WriteFile(filepath.Join(dir, "elsewhere", "passwd"), []byte("imguser:x:777:777::/:/bin/sh\n"), 0o644)
	// "/elsewhere/passwd" is absolute: on the host it does not exist; in
	// the rootfs it does.
	if err := os.Symlink("/elsewhere/passwd", filepath.Join(dir, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	sc(in).RunAsUsername = "imguser"
	r := mustGenerate(t, in)
	if r.UID != 777 {
		t.Fatalf("uid %d, want 777 from the rootfs", r.UID)
	}
	// A symlink climbing out with .. is clamped at the rootfs root.
	os.Remove(filepath.Join(dir, "etc", "passwd"))
	os.Symlink("../../../../../../../etc/passwd", filepath.Join(dir, "etc", "passwd"))
	sc(in).RunAsUsername = "root"
	if _, err := Generate(in); err == nil {
		// /etc/passwd of the rootfs is now a loop to itself: root must not
		// be found through the host's file.
		t.Fatal("user resolved through a symlink that leaves the rootfs")
	}
}

func TestCapabilities(t *testing.T) {
	in := newInput(t)
	r := mustGenerate(t, in)
	want := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE"}
	slices.SortFunc(want, func(a, b string) int { return capNumbers[a] - capNumbers[b] })
	c := r.Spec.Process.Capabilities
	for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
		if !slices.Equal(set, want) {
			t.Errorf("%s %v, want %v", name, set, want)
		}
	}
	if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
		t.Errorf("inheritable %v ambient %v, want none", c.Inheritable, c.Ambient)
	}

	in = newInput(t)
	sc(in).Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN", "cap_sys_time"}, DropCapabilities: []string{"KILL"}}
	c = mustGenerate(t, in).Spec.Process.Capabilities
	if !slices.Contains(c.Effective, "CAP_NET_ADMIN") || !slices.Contains(c.Effective, "CAP_SYS_TIME") || slices.Contains(c.Effective, "CAP_KILL") {
		t.Errorf("add/drop not applied: %v", c.Effective)
	}

	in = newInput(t)
	sc(in).Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"NET_RAW"}}
	c = mustGenerate(t, in).Spec.Process.Capabilities
	if !slices.Equal(c.Bounding, []string{"CAP_NET_RAW"}) {
		t.Errorf("drop ALL + add NET_RAW: %v", c.Bounding)
	}

	in = newInput(t)
	sc(in).Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"ALL"}}
	c = mustGenerate(t, in).Spec.Process.Capabilities
	if len(c.Bounding) != 41 {
		t.Errorf("add ALL gave %d capabilities, want 41 (0..40)", len(c.Bounding))
	}

	in = newInput(t)
	sc(in).RunAsUser = &runtimeapi.Int64Value{Value: 1000}
	c = mustGenerate(t, in).Spec.Process.Capabilities
	if len(c.Effective) != 0 || len(c.Permitted) != 0 || len(c.Bounding) != 9 {
		t.Errorf("non-root: effective %v permitted %v bounding %v", c.Effective, c.Permitted, c.Bounding)
	}

	// A host whose root lacks CAP_SYS_RESOURCE (24): ALL leaves it out,
	// asking for it by name is refused with the reason.
	in = newInput(t)
	in.Host.(*fakeHost).facts.Grantable = (1<<41 - 1) &^ (1 << 24)
	sc(in).Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"ALL"}}
	c = mustGenerate(t, in).Spec.Process.Capabilities
	if len(c.Bounding) != 40 || slices.Contains(c.Bounding, "CAP_SYS_RESOURCE") {
		t.Errorf("ALL without a grantable CAP_SYS_RESOURCE: %d caps", len(c.Bounding))
	}
	sc(in).Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"SYS_RESOURCE"}}
	_, err := Generate(in)
	wantInvalid(t, err, "config.linux.security_context.capabilities.add_capabilities[0]")

	in = newInput(t)
	sc(in).Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"NOT_A_CAP"}}
	_, err = Generate(in)
	wantInvalid(t, err, "config.linux.security_context.capabilities.add_capabilities[0]")
}

func TestPrivileged(t *testing.T) {
	in := newInput(t)
	sc(in).Privileged = true
	_, err := Generate(in)
	wantInvalid(t, err, "config.linux.security_context.privileged")

	in.Pod.Privileged = true
	zero := os.FileMode(0o666)
	in.Host.(*fakeHost).devices = map[string][]rspec.LinuxDevice{"/dev/null": {{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: &zero}}}
	sc(in).Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	r := mustGenerate(t, in)
	s := r.Spec
	if len(s.Process.Capabilities.Effective) != 41 {
		t.Errorf("privileged effective caps: %d", len(s.Process.Capabilities.Effective))
	}
	if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("privileged kept confinement: seccomp %v masked %v ro %v", s.Linux.Seccomp != nil, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if len(s.Linux.Devices) != 1 || len(s.Linux.Resources.Devices) != 1 || !s.Linux.Resources.Devices[0].Allow {
		t.Errorf("privileged devices: %+v / %+v", s.Linux.Devices, s.Linux.Resources.Devices)
	}
	for _, m := range s.Mounts {
		if m.Destination == "/sys" && !slices.Contains(m.Options, "rw") {
			t.Errorf("privileged /sys not rw: %v", m.Options)
		}
	}
	in.Defaults.PrivilegedWithoutHostDevices = true
	if r := mustGenerate(t, in); len(r.Spec.Linux.Devices) != 0 {
		t.Errorf("privileged_without_host_devices still passed %d devices", len(r.Spec.Linux.Devices))
	}
}

func findMount(s *rspec.Spec, dst string) *rspec.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func TestMounts(t *testing.T) {
	in := newInput(t)
	in.Config.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/data/../etc/hosts", HostPath: "/var/lib/kubelet/hosts"},
		{ContainerPath: "/ro", HostPath: "/srv/ro", Readonly: true},
		{ContainerPath: "/new", HostPath: "/missing/dir"},
	}
	r := mustGenerate(t, in)
	if m := findMount(r.Spec, "/etc/hosts"); m == nil || m.Source != "/var/lib/kubelet/hosts" {
		t.Fatalf("CRI /etc/hosts did not replace the pod's: %+v", m)
	}
	if m := findMount(r.Spec, "/etc/resolv.conf"); m == nil || m.Source != "/run/p/resolv.conf" {
		t.Fatalf("pod resolv.conf: %+v", m)
	}
	if m := findMount(r.Spec, "/dev/shm"); m == nil || m.Source != "/run/p/shm" {
		t.Fatalf("pod shm: %+v", m)
	}
	if m := findMount(r.Spec, "/ro"); m == nil || !slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "rprivate") {
		t.Fatalf("read-only mount: %+v", m)
	}
	if h := in.Host.(*fakeHost); !slices.Contains(h.created, "/missing/dir") {
		t.Fatalf("missing host path not created")
	}
	if r.Mounts[0].ContainerPath != "/etc/hosts" {
		t.Fatalf("reported mount %q not normalised", r.Mounts[0].ContainerPath)
	}
	// Parents come before children.
	idx := func(d string) int {
		return slices.IndexFunc(r.Spec.Mounts, func(m rspec.Mount) bool { return m.Destination == d })
	}
	if idx("/dev") > idx("/dev/shm") || idx("/sys") > idx("/sys/fs/cgroup") {
		t.Fatalf("mount order: %v", r.Spec.Mounts)
	}

	in.Defaults.AbsentMountSourcesToReject = []string{"/missing/dir"}
	_, err := Generate(in)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "config.mounts[2].host_path") {
		t.Fatalf("absent_mount_sources_to_reject: %v", err)
	}

	for _, bad := range []struct {
		m     *runtimeapi.Mount
		field string
	}{
		{&runtimeapi.Mount{ContainerPath: "rel", HostPath: "/x"}, "config.mounts[0].container_path"},
		{&runtimeapi.Mount{ContainerPath: "/a/..", HostPath: "/x"}, "config.mounts[0].container_path"},
		{&runtimeapi.Mount{ContainerPath: "/a", HostPath: "x"}, "config.mounts[0].host_path"},
		{&runtimeapi.Mount{ContainerPath: "/a", HostPath: "/x/../etc"}, "config.mounts[0].host_path"},
		{&runtimeapi.Mount{ContainerPath: "/a\x00", HostPath: "/x"}, "config.mounts[0].container_path"},
		{&runtimeapi.Mount{ContainerPath: "/a", HostPath: "/x", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}, "config.mounts[0].propagation"},
		{&runtimeapi.Mount{ContainerPath: "/a", HostPath: "/x", Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}, "config.mounts[0].propagation"},
		{&runtimeapi.Mount{ContainerPath: "/a", HostPath: "/x", MountOptions: []string{"suid"}}, "config.mounts[0].mount_options[0]"},
	} {
		in := newInput(t)
		in.Config.Mounts = []*runtimeapi.Mount{bad.m}
		_, err := Generate(in)
		wantInvalid(t, err, bad.field)
	}
	for _, m := range []*runtimeapi.Mount{
		{ContainerPath: "/a", HostPath: "/x", UidMappings: []*runtimeapi.IDMapping{{}}},
		{ContainerPath: "/a", Image: &runtimeapi.ImageSpec{Image: "busybox"}, Readonly: true},
		{ContainerPath: "/a", HostPath: "/x", RecursiveReadOnly: true, Readonly: true},
	} {
		in := newInput(t)
		in.Config.Mounts = []*runtimeapi.Mount{m}
		if _, err := Generate(in); !errors.Is(err, ErrUnsupported) {
			t.Errorf("mount %v: %v, want ErrUnsupported", m, err)
		}
	}
	in = newInput(t)
	in.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/a", HostPath: "/x"}, {ContainerPath: "/a/", HostPath: "/y"}}
	_, err = Generate(in)
	wantInvalid(t, err, "config.mounts[1].container_path")
}

// Recursive read-only mounts: only read-only and private, only when the
// handler takes "rro", which then reaches the runtime.
func TestRecursiveReadOnlyMounts(t *testing.T) {
	rro := &runtimeapi.Mount{ContainerPath: "/a", HostPath: "/x", RecursiveReadOnly: true, Readonly: true}
	in := newInput(t)
	in.Defaults.RecursiveReadOnly = true
	in.Config.Mounts = []*runtimeapi.Mount{rro}
	r := mustGenerate(t, in)
	if m := findMount(r.Spec, "/a"); !slices.Contains(m.Options, "rro") || !slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "rprivate") {
		t.Errorf("rro mount options %v", m.Options)
	}
	if len(r.Mounts) != 1 || !r.Mounts[0].RecursiveReadOnly {
		t.Errorf("applied mounts %v", r.Mounts)
	}
	for _, bad := range []*runtimeapi.Mount{
		{ContainerPath: "/a", HostPath: "/x", RecursiveReadOnly: true},
		{ContainerPath: "/a", HostPath: "/x", RecursiveReadOnly: true, Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		{ContainerPath: "/a", HostPath: "/x", RecursiveReadOnly: true, Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
	} {
		in := newInput(t)
		in.Defaults.RecursiveReadOnly = true
		in.Config.Mounts = []*runtimeapi.Mount{bad}
		_, err := Generate(in)
		wantInvalid(t, err, "config.mounts[0].recursive_read_only")
	}
}

// An image volume the caller mounted is bound read-only (but executable);
// one it did not is unsupported; a writable one is refused.
func TestImageMounts(t *testing.T) {
	iv := &runtimeapi.Mount{ContainerPath: "/iv", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "busybox"}, ImageSubPath: "etc"}
	in := newInput(t)
	in.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/a", HostPath: "/x"}, iv}
	in.ImageMounts = map[int]ImageMount{1: {Source: "/storage/merged/etc", ImageRef: "abc"}}
	r := mustGenerate(t, in)
	m := findMount(r.Spec, "/iv")
	if m.Source != "/storage/merged/etc" || !slices.Contains(m.Options, "ro") || slices.Contains(m.Options, "noexec") {
		t.Errorf("image mount %+v", m)
	}
	if len(r.Mounts) != 2 || r.Mounts[1].GetImage().GetImageRef() != "abc" || r.Mounts[1].ImageSubPath != "etc" || r.Mounts[1].HostPath != "" {
		t.Errorf("applied %v", r.Mounts)
	}
	in.ImageMounts = nil
	if _, err := Generate(in); !errors.Is(err, ErrUnsupported) {
		t.Errorf("without a mounted image: %v", err)
	}
	in.ImageMounts = map[int]ImageMount{1: {Source: "/s"}}
	iv.Readonly = false
	_, err := Generate(in)
	wantInvalid(t, err, "config.mounts[1].readonly")
}

func TestPropagation(t *testing.T) {
	in := newInput(t)
	h := in.Host.(*fakeHost)
	h.shared = map[string]bool{"/shared": true}
	h.slave = map[string]bool{"/slave": true}
	in.Config.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/s", HostPath: "/slave", Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
	}
	r := mustGenerate(t, in)
	if r.Spec.Linux.RootfsPropagation != "rslave" || !slices.Contains(findMount(r.Spec, "/s").Options, "rslave") {
		t.Fatalf("rslave: root %q, %v", r.Spec.Linux.RootfsPropagation, findMount(r.Spec, "/s").Options)
	}
	in.Config.Mounts = append(in.Config.Mounts, &runtimeapi.Mount{ContainerPath: "/b", HostPath: "/shared", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL})
	r = mustGenerate(t, in)
	if r.Spec.Linux.RootfsPropagation != "rshared" || !slices.Contains(findMount(r.Spec, "/b").Options, "rshared") {
		t.Fatalf("rshared: root %q, %v", r.Spec.Linux.RootfsPropagation, findMount(r.Spec, "/b").Options)
	}
}

func TestHostNamespacesAndFiles(t *testing.T) {
	in := newInput(t)
	in.Pod.NetNS, in.Pod.UTSNS, in.Pod.IPCNS, in.Pod.ShmPath, in.Pod.HostPID = "", "", "", "", true
	r := mustGenerate(t, in)
	for _, ns := range r.Spec.Linux.Namespaces {
		if ns.Type != rspec.MountNamespace {
			t.Errorf("host pod got namespace %+v", ns)
		}
	}
	if m := findMount(r.Spec, "/sys"); m.Type != "bind" || !slices.Contains(m.Options, "ro") {
		t.Errorf("host network /sys: %+v", m)
	}
	if m := findMount(r.Spec, "/dev/shm"); m.Source != "/dev/shm" {
		t.Errorf("host IPC /dev/shm: %+v", m)
	}
	if r.Spec.Hostname != "" {
		t.Errorf("hostname %q set", r.Spec.Hostname)
	}
}

func TestNamespaces(t *testing.T) {
	in := newInput(t)
	r := mustGenerate(t, in)
	want := map[rspec.LinuxNamespaceType]string{rspec.MountNamespace: "", rspec.NetworkNamespace: "/run/netns/p", rspec.IPCNamespace: "/run/ipcns/p", rspec.UTSNamespace: "/run/utsns/p", rspec.PIDNamespace: ""}
	got := map[rspec.LinuxNamespaceType]string{}
	for _, ns := range r.Spec.Linux.Namespaces {
		got[ns.Type] = ns.Path
	}
	if len(got) != len(want) {
		t.Fatalf("namespaces %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if r.Spec.Linux.CgroupsPath != "/crio/pod-p/crio-c0ffee" {
		t.Errorf("cgroups path %q", r.Spec.Linux.CgroupsPath)
	}

	in.Pod.PIDNS = "/run/pidns/p"
	sc(in).NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}
	r = mustGenerate(t, in)
	if !slices.Contains(r.Spec.Linux.Namespaces, rspec.LinuxNamespace{Type: rspec.PIDNamespace, Path: "/run/pidns/p"}) {
		t.Errorf("shared pid ns not joined: %v", r.Spec.Linux.Namespaces)
	}
	sc(in).NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET}
	_, err := Generate(in)
	wantInvalid(t, err, "config.linux.security_context.namespace_options.target_id")
	sc(in).NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: "x"}
	in.TargetPIDNS = "/proc/42/ns/pid"
	r = mustGenerate(t, in)
	if !slices.Contains(r.Spec.Linux.Namespaces, rspec.LinuxNamespace{Type: rspec.PIDNamespace, Path: "/proc/42/ns/pid"}) {
		t.Errorf("target pid ns not joined: %v", r.Spec.Linux.Namespaces)
	}
	sc(in).NamespaceOptions = &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}}
	if _, err = Generate(in); !errors.Is(err, ErrUnsupported) {
		t.Errorf("user namespace: %v, want ErrUnsupported", err)
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	in := newInput(t)
	r := mustGenerate(t, in)
	if !slices.Contains(r.Spec.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(r.Spec.Linux.ReadonlyPaths, "/proc/sys") {
		t.Fatalf("defaults missing: %v %v", r.Spec.Linux.MaskedPaths, r.Spec.Linux.ReadonlyPaths)
	}
	sc(in).MaskedPaths = []string{"/bin/ls", "/x/../bin/ls"}
	sc(in).ReadonlyPaths = []string{"/tmp"}
	r = mustGenerate(t, in)
	if !slices.Equal(r.Spec.Linux.MaskedPaths, []string{"/bin/ls"}) || !slices.Equal(r.Spec.Linux.ReadonlyPaths, []string{"/tmp"}) {
		t.Fatalf("overrides: %v %v", r.Spec.Linux.MaskedPaths, r.Spec.Linux.ReadonlyPaths)
	}
	sc(in).MaskedPaths = []string{"proc"}
	_, err := Generate(in)
	wantInvalid(t, err, "config.linux.security_context.masked_paths[0]")
}

func TestReadonlyRootfsAndNoNewPrivs(t *testing.T) {
	in := newInput(t)
	r := mustGenerate(t, in)
	if r.Spec.Root.Readonly || r.Spec.Process.NoNewPrivileges {
		t.Fatal("read-only or no_new_privs without asking")
	}
	sc(in).ReadonlyRootfs, sc(in).NoNewPrivs = true, true
	r = mustGenerate(t, in)
	if !r.Spec.Root.Readonly || !r.Spec.Process.NoNewPrivileges || r.Spec.Root.Path != in.Rootfs {
		t.Fatalf("root %+v nnp %v", r.Spec.Root, r.Spec.Process.NoNewPrivileges)
	}
	if m := findMount(r.Spec, "/etc/resolv.conf"); !slices.Contains(m.Options, "ro") {
		t.Fatalf("pod files writable in a read-only container: %v", m.Options)
	}
	in = newInput(t)
	in.Defaults.ReadOnly = true
	if r := mustGenerate(t, in); !r.Spec.Root.Readonly {
		t.Fatal("crio.runtime.read_only not applied")
	}
}

func TestSeccomp(t *testing.T) {
	in := newInput(t)
	if r := mustGenerate(t, in); r.Spec.Linux.Seccomp != nil {
		t.Fatal("no profile requested, but one applied (the CRI says nil is unconfined)")
	}
	sc(in).Seccomp = &runtimeapi.SecurityProfile{}
	r := mustGenerate(t, in)
	s := r.Spec.Linux.Seccomp
	if s == nil || s.DefaultAction != rspec.ActErrno || len(s.Syscalls) < 5 {
		t.Fatalf("RuntimeDefault: %+v", s)
	}
	allowed := func(s *rspec.LinuxSeccomp, name string) bool {
		for _, sc := range s.Syscalls {
			if sc.Action == rspec.ActAllow && len(sc.Args) == 0 && slices.Contains(sc.Names, name) {
				return true
			}
		}
		return false
	}
	if !allowed(s, "read") || allowed(s, "mount") || allowed(s, "io_uring_setup") || allowed(s, "kexec_load") {
		t.Fatal("default profile: read must be allowed; mount, io_uring_setup, kexec_load not")
	}
	if s.Architectures[0] != rspec.ArchX86_64 && s.Architectures[0] != rspec.ArchAARCH64 {
		t.Fatalf("architectures %v", s.Architectures)
	}
	sc(in).Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}}
	if s := mustGenerate(t, in).Spec.Linux.Seccomp; !allowed(s, "mount") || !allowed(s, "clone3") {
		t.Fatal("CAP_SYS_ADMIN did not unlock mount and clone3")
	}

	sc(in).Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
	if r := mustGenerate(t, in); r.Spec.Linux.Seccomp != nil {
		t.Fatal("Unconfined applied a profile")
	}

	dir := t.TempDir()
	prof := filepath.Join(dir, "p.json")
	os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod","fchmodat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644)
	sc(in).Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: prof}
	s = mustGenerate(t, in).Spec.Linux.Seccomp
	if s.DefaultAction != rspec.ActAllow || len(s.Syscalls) != 1 || s.Syscalls[0].Action != rspec.ActErrno {
		t.Fatalf("localhost profile: %+v", s)
	}
	sc(in).Seccomp.LocalhostRef = filepath.Join(dir, "absent.json")
	_, err := Generate(in)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "absent.json") {
		t.Fatalf("missing profile: %v", err)
	}
	os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_SOMETIMES"}`), 0o644)
	sc(in).Seccomp.LocalhostRef = prof
	_, err = Generate(in)
	wantInvalid(t, err, "config.linux.security_context.seccomp.localhost_ref")
	sc(in).Seccomp.LocalhostRef = "relative.json"
	_, err = Generate(in)
	wantInvalid(t, err, "config.linux.security_context.seccomp.localhost_ref")

	sc(in).Seccomp = nil
	//lint:ignore SA1019 the deprecated field is still honoured
	sc(in).SeccompProfilePath = "runtime/default"
	if mustGenerate(t, in).Spec.Linux.Seccomp == nil {
		t.Fatal("legacy runtime/default")
	}
}

func TestEmbeddedProfileParses(t *testing.T) {
	p, err := DefaultProfile()
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64", "s390x", "ppc64le", "riscv64"} {
		s, err := p.Compile(arch, nil)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if len(s.Architectures) == 0 {
			t.Fatalf("%s: no architectures", arch)
		}
	}
}

func TestResources(t *testing.T) {
	in := newInput(t)
	h := in.Host.(*fakeHost)
	h.facts.MinOOMScoreAdj = -500
	h.facts.SwapAccounting = true
	in.Defaults.ContainerMinMemory = 12 << 20
	in.Config.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
		CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 64 << 20,
		OomScoreAdj: -998, CpusetCpus: "0-1", CpusetMems: "0",
		HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 1 << 21}},
	}}
	r := mustGenerate(t, in)
	res := r.Spec.Linux.Resources
	if *res.CPU.Period != 100000 || *res.CPU.Quota != 50000 || *res.CPU.Shares != 512 || res.CPU.Cpus != "0-1" || res.CPU.Mems != "0" {
		t.Fatalf("cpu %+v", res.CPU)
	}
	if *res.Memory.Limit != 64<<20 || *res.Memory.Swap != 64<<20 {
		t.Fatalf("memory %+v", res.Memory)
	}
	if len(res.HugepageLimits) != 0 || len(r.Warnings) < 2 {
		t.Fatalf("hugepages applied without hugetlb (%v), warnings %v", res.HugepageLimits, r.Warnings)
	}
	if *r.Spec.Process.OOMScoreAdj != -500 {
		t.Fatalf("oom_score_adj %d, want clamped to -500", *r.Spec.Process.OOMScoreAdj)
	}
	if len(res.Devices) == 0 || res.Devices[0].Allow {
		t.Fatalf("device cgroup must start with deny-all: %+v", res.Devices)
	}
	h.facts.Hugetlb = true
	if r := mustGenerate(t, in); len(r.Spec.Linux.Resources.HugepageLimits) != 1 {
		t.Fatal("hugepages not applied with hugetlb")
	}
	for _, bad := range []struct {
		set   func(*runtimeapi.LinuxContainerResources)
		field string
	}{
		{func(r *runtimeapi.LinuxContainerResources) { r.MemoryLimitInBytes = 1 << 20 }, "config.linux.resources.memory_limit_in_bytes"},
		{func(r *runtimeapi.LinuxContainerResources) { r.CpusetCpus = "0;rm" }, "config.linux.resources.cpuset_cpus"},
		{func(r *runtimeapi.LinuxContainerResources) { r.OomScoreAdj = 5000 }, "config.linux.resources.oom_score_adj"},
		{func(r *runtimeapi.LinuxContainerResources) { r.Unified = map[string]string{"../../escape": "1"} }, "config.linux.resources.unified"},
		{func(r *runtimeapi.LinuxContainerResources) { r.HugepageLimits[0].PageSize = "../x" }, "config.linux.resources.hugepage_limits[0].page_size"},
	} {
		in := newInput(t)
		in.Defaults.ContainerMinMemory = 12 << 20
		r := &runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}}}
		bad.set(r)
		in.Config.Linux = &runtimeapi.LinuxContainerConfig{Resources: r}
		_, err := Generate(in)
		wantInvalid(t, err, bad.field)
	}
}

func TestDevices(t *testing.T) {
	in := newInput(t)
	mode := os.FileMode(0o666)
	in.Host.(*fakeHost).devices = map[string][]rspec.LinuxDevice{
		"/dev/null": {{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: &mode}},
		"/dev/snd":  {{Path: "/dev/snd/pcm0", Type: "c", Major: 116, Minor: 2}, {Path: "/dev/snd/ctl", Type: "c", Major: 116, Minor: 3}},
	}
	in.Config.Devices = []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/xnull", Permissions: "rw"}, {HostPath: "/dev/snd", ContainerPath: "/dev/sound", Permissions: "r"}}
	r := mustGenerate(t, in)
	paths := []string{}
	for _, d := range r.Spec.Linux.Devices {
		paths = append(paths, d.Path)
	}
	slices.Sort(paths)
	if !slices.Equal(paths, []string{"/dev/sound/ctl", "/dev/sound/pcm0", "/dev/xnull"}) {
		t.Fatalf("devices %v", paths)
	}
	rules := r.Spec.Linux.Resources.Devices
	if len(rules) != 4 || rules[1].Access != "rw" || *rules[1].Major != 1 {
		t.Fatalf("device rules %+v", rules)
	}
	in.Config.Devices = []*runtimeapi.Device{{HostPath: "/dev/null", ContainerPath: "/dev/xnull", Permissions: "rwx"}}
	_, err := Generate(in)
	wantInvalid(t, err, "config.devices[0].permissions")
	in.Config.Devices = []*runtimeapi.Device{{HostPath: "/dev/absent", ContainerPath: "/dev/a"}}
	_, err = Generate(in)
	wantInvalid(t, err, "config.devices[0].host_path")
}

func TestRealHostDevices(t *testing.T) {
	var h RealHost
	d, err := h.Devices("/dev/null")
	if err != nil || len(d) != 1 || d[0].Type != "c" || d[0].Major != 1 || d[0].Minor != 3 {
		t.Fatalf("/dev/null: %+v %v", d, err)
	}
	if _, err := h.Devices("/etc/hostname"); err == nil {
		t.Fatal("a regular file accepted as a device")
	}
	if f := h.Facts(); f.LastCap < 30 {
		t.Fatalf("facts %+v", f)
	}
}

func TestStopSignal(t *testing.T) {
	in := newInput(t)
	if r := mustGenerate(t, in); r.StopSignal != "SIGTERM" {
		t.Fatalf("default %q", r.StopSignal)
	}
	in.Image.StopSignal = "SIGQUIT"
	if r := mustGenerate(t, in); r.StopSignal != "SIGQUIT" {
		t.Fatalf("image %q", r.StopSignal)
	}
	in.Config.StopSignal = runtimeapi.Signal_SIGNAL_SIGUSR1
	if r := mustGenerate(t, in); r.StopSignal != "SIGUSR1" {
		t.Fatalf("cri %q", r.StopSignal)
	}
	for in, want := range map[string]string{"TERM": "SIGTERM", "9": "SIGKILL", "SIGRTMIN+3": "37", "sigint": "SIGINT", "SIGCLD": "SIGCHLD"} {
		if got, ok := ParseSignal(in); !ok || got != want {
			t.Errorf("ParseSignal(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := ParseSignal("SIGNOPE"); ok {
		t.Error("unknown signal accepted")
	}
}

func TestUlimits(t *testing.T) {
	in := newInput(t)
	in.Defaults.Ulimits = []string{"nofile=1024:2048"}
	r := mustGenerate(t, in)
	if len(r.Spec.Process.Rlimits) != 1 || r.Spec.Process.Rlimits[0].Soft != 1024 || r.Spec.Process.Rlimits[0].Hard != 2048 {
		t.Fatalf("rlimits %+v", r.Spec.Process.Rlimits)
	}
	in.Defaults.Ulimits = nil
	if r := mustGenerate(t, in); len(r.Spec.Process.Rlimits) != 0 {
		t.Fatalf("rlimits without asking: %+v", r.Spec.Process.Rlimits)
	}
}
