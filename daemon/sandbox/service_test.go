package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/config"
	"github.com/crio-appliance/crio/daemon/events"
	"github.com/crio-appliance/crio/daemon/network"
	"github.com/crio-appliance/crio/internal/testutil"
)

// newService runs a Service on real parts under a temporary directory: no
// CNI network is configured, so tests use host-network pods or fail before
// the network step.
func newService(t *testing.T, dir string, mutate ...func(*Options)) *Service {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	h, err := cgroups.Detect()
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		StateDir: filepath.Join(dir, "state"), VolatileStateDir: filepath.Join(dir, "run-records"), RunDir: filepath.Join(dir, "run"),
		NamespacesDir: filepath.Join(dir, "ns"), LogDir: filepath.Join(dir, "logs"),
		CgroupManager: "cgroupfs", DefaultCgroupParent: "/crio-sandbox-test",
		Network: network.New(network.Options{NetworkDir: filepath.Join(dir, "net.d")}),
		Cgroups: h,
	}
	for _, m := range mutate {
		m(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, r := range h.Roots {
			os.Remove(filepath.Join(r, "crio-sandbox-test")) // fails while another test's pods live below
		}
	})
	return s
}

func hostNetConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "ns", Uid: "uid-" + name},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
				Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_POD,
			}},
			Sysctls: map[string]string{"kernel.msgmax": "9000"},
		},
	}
}

// leftovers lists what exists of a pod's resources.
func leftovers(sb *Sandbox) []string {
	var out []string
	for _, p := range []string{sb.IPCNS, sb.PIDNS, sb.RunDir, sb.LogDir} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	if sb.Cgroup != nil {
		for _, d := range sb.Cgroup.Dirs {
			if _, err := os.Stat(d); err == nil {
				out = append(out, d)
			}
		}
	}
	if sb.Init != nil && sb.Init.Alive() {
		out = append(out, "init process")
	}
	return out
}

func TestHostNetworkPodLifecycle(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir)
	ctx := context.Background()
	sb, err := s.Run(ctx, hostNetConfig("a"), "")
	if err != nil {
		t.Fatal(err)
	}
	if sb.IPCNS == "" || sb.NetNS != "" || sb.Init == nil || !sb.Init.Alive() || !sb.ShmMounted {
		t.Fatalf("pod %+v", sb)
	}
	if len(leftovers(sb)) == 0 {
		t.Fatal("nothing to check")
	}
	// A second service on the same state lists the pod.
	s2 := newService(t, dir)
	if got := s2.List(Filter{}); len(got) != 1 || got[0].ID != sb.ID || !got[0].Ready() {
		t.Errorf("restored list: %v", got)
	}
	if err := s.Remove(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if l := leftovers(sb); len(l) != 0 {
		t.Errorf("left behind: %v", l)
	}
	if _, err := s.Get(sb.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after remove: %v", err)
	}
}

// A daemon that died half-way through RunPodSandbox leaves a record in
// state "creating"; the next start undoes everything it names.
func TestRestoreUndoesHalfCreatedPod(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir)
	sb, err := s.Run(context.Background(), hostNetConfig("half"), "")
	if err != nil {
		t.Fatal(err)
	}
	path := latestRecord(t, dir, sb.ID)
	testutil.SetRecordField(t, path, "state", string(StateCreating))
	s2 := newService(t, dir)
	if got := s2.List(Filter{}); len(got) != 0 {
		t.Errorf("half-created pod listed: %v", got)
	}
	if l := leftovers(sb); len(l) != 0 {
		t.Errorf("left behind: %v", l)
	}
	for _, p := range []string{filepath.Join(dir, "state", sb.ID+".json"), filepath.Join(dir, "run-records", sb.ID+".json")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("record left: %s: %v", p, err)
		}
	}
}

// latestRecord is the file that holds the pod record's latest write, of
// its synced (state) and volatile (run-records) files.
func latestRecord(t *testing.T, dir, id string) string {
	t.Helper()
	return testutil.LatestRecord(t, filepath.Join(dir, "state", id+".json"), filepath.Join(dir, "run-records", id+".json"))
}

// A failure in the middle of RunPodSandbox undoes the steps before it.
func TestRunFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir)
	cfg := hostNetConfig("fail")
	cfg.Linux.Sysctls = map[string]string{"kernel.msgmax": "not-a-number"}
	if _, err := s.Run(context.Background(), cfg, ""); err == nil || !strings.Contains(err.Error(), "msgmax") {
		t.Fatalf("Run: %v", err)
	}
	// A pod network that is not ready fails after namespaces, cgroup, init
	// and shm exist.
	cfg = hostNetConfig("nonet")
	cfg.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_POD
	if _, err := s.Run(context.Background(), cfg, ""); !errors.Is(err, network.ErrNotReady) {
		t.Fatalf("Run without network: %v", err)
	}
	for _, sub := range []string{"state", "run", "logs", "ns/netns", "ns/ipcns", "ns/utsns", "ns/pidns"} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range entries {
			if e.Name() != "init-root" { // shared by all pods, kept
				t.Errorf("%s/%s left", sub, e.Name())
			}
		}
	}
	for _, d := range []string{"/sys/fs/cgroup/memory/crio-sandbox-test", "/sys/fs/cgroup/pids/crio-sandbox-test"} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() {
				t.Errorf("cgroup %s/%s left", d, e.Name())
			}
		}
	}
}

// A pod whose namespaces or init died while crio was down is listed as
// not ready; after a reboot with Wipe, pods are removed with all they own.
func TestRestoreDeadAndWipedPods(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir)
	ctx := context.Background()
	dead, err := s.Run(ctx, hostNetConfig("dead"), "")
	if err != nil {
		t.Fatal(err)
	}
	live, err := s.Run(ctx, hostNetConfig("live"), "")
	if err != nil {
		t.Fatal(err)
	}
	// What a reboot does to one pod: its init is gone, its IPC namespace
	// no longer pinned.
	if err := dead.Init.Stop(initStopTimeout); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(dead.IPCNS, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	s2 := newService(t, dir)
	st := map[string]State{}
	for _, sb := range s2.List(Filter{}) {
		st[sb.ID] = sb.State
	}
	if st[dead.ID] != StateNotReady || st[live.ID] != StateReady {
		t.Errorf("after restart: %v", st)
	}
	ev := &recorder{}
	s3 := newService(t, dir, func(o *Options) { o.Wipe, o.Events = true, ev })
	if got := s3.List(Filter{}); len(got) != 0 {
		t.Errorf("wiped pods listed: %v", got)
	}
	for _, sb := range []*Sandbox{dead, live} {
		if l := leftovers(sb); len(l) != 0 {
			t.Errorf("left behind: %v", l)
		}
		if _, err := os.Stat(filepath.Join(dir, "state", sb.ID+".json")); !os.IsNotExist(err) {
			t.Errorf("record left: %v", err)
		}
	}
	if len(ev.got) != 0 {
		t.Errorf("events at restore: %v", ev.got)
	}
}

type recorder struct{ got []events.Event }

func (r *recorder) Publish(e events.Event) { r.got = append(r.got, e) }

// A pod's own events: created and started, stopped once, deleted.
func TestPodEvents(t *testing.T) {
	dir := t.TempDir()
	ev := &recorder{}
	s := newService(t, dir, func(o *Options) { o.Events = ev })
	ctx := context.Background()
	sb, err := s.Run(ctx, hostNetConfig("ev"), "")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Stop(ctx, sb.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	var kinds []events.Kind
	for _, e := range ev.got {
		if e.ID != sb.ID || e.PodID != sb.ID || e.At == 0 {
			t.Errorf("event %+v", e)
		}
		kinds = append(kinds, e.Kind)
		if rec, ok := e.Record.(*Sandbox); !ok || rec.Ready() != (e.Kind == events.Created || e.Kind == events.Started) {
			t.Errorf("%v: record %+v", e.Kind, e.Record)
		}
	}
	want := []events.Kind{events.Created, events.Started, events.Stopped, events.Deleted}
	if !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
}

// A pod record written by a later crio (a newer recordVersion) is not
// restored, and the service still starts; the record is left for that
// crio, and a crio that reads it again finds the pod.
func TestRestoreRefusesNewerRecord(t *testing.T) {
	dir := t.TempDir()
	s := newService(t, dir)
	ctx := context.Background()
	sb, err := s.Run(ctx, hostNetConfig("future"), "")
	if err != nil {
		t.Fatal(err)
	}
	path := latestRecord(t, dir, sb.ID)
	setVersion := func(v int) { testutil.SetRecordField(t, path, "recordVersion", v) }
	setVersion(99)
	s2 := newService(t, dir) // fails the test if New fails
	if got := s2.List(Filter{}); len(got) != 0 {
		t.Errorf("a record of a later format was restored: %v", got)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the newer record was not left in place: %v", err)
	}
	setVersion(1)
	s3 := newService(t, dir)
	if got := s3.List(Filter{}); len(got) != 1 || got[0].ID != sb.ID {
		t.Fatalf("restored list: %v", got)
	}
	if err := s3.Remove(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
}

// TestVolatileStateDir: records keep volatile writes on the run root only
// while a reboot removes every pod anyway (internal_wipe, the default).
func TestVolatileStateDir(t *testing.T) {
	cfg := config.Default()
	cfg.RunRoot = "/run/x"
	if got := VolatileStateDir(cfg, "recs"); got != "/run/x/recs" {
		t.Errorf("with internal_wipe: %q, want /run/x/recs", got)
	}
	cfg.InternalWipe = false
	if got := VolatileStateDir(cfg, "recs"); got != "" {
		t.Errorf("without internal_wipe: %q, want every write synced (\"\")", got)
	}
}
