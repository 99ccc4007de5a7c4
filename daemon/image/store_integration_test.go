package image

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.podman.io/storage"

	"github.com/crio-appliance/crio/internal/testutil"
)

func TestRemove(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	img := buildImage(t, imageSpec{files: map[string]string{"id": "remove"}})
	reg.push(t, "rm/app", "1", img)
	reg.push(t, "rm/app", "2", img)
	other := buildImage(t, imageSpec{files: map[string]string{"id": "remove-other"}})
	reg.push(t, "rm/other", "1", other)
	s := newEnv(t, insecure(reg.Host), "").open(t)
	ctx := testCtx(t)
	tag1, tag2 := reg.Host+"/rm/app:1", reg.Host+"/rm/app:2"

	t.Run("by tag removes the image with all its tags", func(t *testing.T) {
		id := mustPull(t, s, tag1, nil)
		if mustPull(t, s, tag2, nil) != id {
			t.Fatal("two tags of one image gave two IDs")
		}
		st, _ := s.Status(ctx, id, false)
		if len(st.RepoTags) != 2 {
			t.Fatalf("tags %v", st.RepoTags)
		}
		if err := s.Remove(ctx, tag1); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{tag1, tag2, id} {
			if _, err := s.Status(ctx, n, false); KindOf(err) != ErrNotFound {
				t.Errorf("Status(%s) after remove: %v", n, err)
			}
		}
		wantKind(t, s.Remove(ctx, tag1), ErrNotFound)
	})

	t.Run("untag keeps the other tag", func(t *testing.T) {
		id := mustPull(t, s, tag1, nil)
		mustPull(t, s, tag2, nil)
		if err := s.Untag(ctx, tag1); err != nil {
			t.Fatal(err)
		}
		st, err := s.Status(ctx, id, false)
		if err != nil || !slices.Equal(st.RepoTags, []string{tag2}) {
			t.Fatalf("after untag: %+v %v", st, err)
		}
		if err := s.Untag(ctx, tag2); err != nil { // the last name: the image goes
			t.Fatal(err)
		}
		if _, err := s.Status(ctx, id, false); KindOf(err) != ErrNotFound {
			t.Fatalf("image survived losing its last tag: %v", err)
		}
	})

	t.Run("by ID", func(t *testing.T) {
		id := mustPull(t, s, tag1, nil)
		keep := mustPull(t, s, reg.Host+"/rm/other:1", nil)
		if err := s.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
		list, err := s.List(ctx, "")
		if err != nil || len(list) != 1 || list[0].ID != keep {
			t.Fatalf("list after remove: %v %v", list, err)
		}
	})

	t.Run("in use", func(t *testing.T) {
		id := mustPull(t, s, tag1, nil)
		ctr, err := s.Store().CreateContainer("", []string{"k8s_busy"}, id, "", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		wantKind(t, s.Remove(ctx, tag1), ErrInUse, "k8s_busy", "remove those containers")
		if _, err := s.Status(ctx, id, false); err != nil {
			t.Fatalf("in-use image was removed: %v", err)
		}
		if err := s.Store().DeleteContainer(ctr.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
	})
}

func TestListFilterAndUsers(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	reg.push(t, "users/uid", "1", buildImage(t, imageSpec{user: "1003:1004", files: map[string]string{"u": "1"}}))
	reg.push(t, "users/name", "1", buildImage(t, imageSpec{user: "www-data:1004", files: map[string]string{"u": "2"}}))
	reg.push(t, "users/none", "1", buildImage(t, imageSpec{files: map[string]string{"u": "3"}}))
	env := newEnv(t, insecure(reg.Host), "")
	env.opts.PinnedImages = []string{reg.Host + "/users/none:1"}
	s := env.open(t)
	ctx := testCtx(t)
	for _, r := range []string{"uid", "name", "none"} {
		mustPull(t, s, reg.Host+"/users/"+r+":1", nil)
	}
	list, err := s.List(ctx, "")
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %v %v", list, err)
	}
	byTag := map[string]*Image{}
	for _, img := range list {
		byTag[img.RepoTags[0]] = img
	}
	uid := byTag[reg.Host+"/users/uid:1"]
	name := byTag[reg.Host+"/users/name:1"]
	none := byTag[reg.Host+"/users/none:1"]
	if uid.UID == nil || *uid.UID != 1003 || uid.Username != "" || uid.Pinned {
		t.Errorf("uid image: %+v", uid)
	}
	if name.UID != nil || name.Username != "www-data" {
		t.Errorf("username image: %+v", name)
	}
	if none.UID == nil || *none.UID != 0 || !none.Pinned {
		t.Errorf("no-user image: %+v", none)
	}
	f, err := s.List(ctx, reg.Host+"/users/name:1")
	if err != nil || len(f) != 1 || f[0].ID != name.ID {
		t.Fatalf("filtered list: %v %v", f, err)
	}
	f, err = s.List(ctx, reg.Host+"/users/missing:1")
	if err != nil || len(f) != 0 {
		t.Fatalf("filter matching nothing: %v %v", f, err)
	}
}

func TestFsInfo(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	reg.push(t, "fs/app", "1", buildImage(t, imageSpec{files: map[string]string{"id": "fs"}}))
	env := newEnv(t, insecure(reg.Host), "")
	s := env.open(t)
	ctx := testCtx(t)
	before, err := s.FsInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := mustPull(t, s, reg.Host+"/fs/app:1", nil)
	after, err := s.FsInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The busybox binary alone is about 2 MB.
	if after.Images.UsedBytes < before.Images.UsedBytes+1<<20 || after.Images.InodesUsed <= before.Images.InodesUsed {
		t.Fatalf("image usage %+v -> %+v", before.Images, after.Images)
	}
	if after.Images.Mountpoint != env.opts.Root || after.Containers.Mountpoint != env.opts.Root {
		t.Fatalf("mountpoints %q %q", after.Images.Mountpoint, after.Containers.Mountpoint)
	}
	ctr, err := s.Store().CreateContainer("", nil, id, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	withCtr, err := s.FsInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if withCtr.Containers.InodesUsed <= after.Containers.InodesUsed {
		t.Fatalf("container usage %+v -> %+v", after.Containers, withCtr.Containers)
	}
	// Cached: the same store gives the same answer without a walk, the
	// image layer is kept, and a stale answer is refreshed in the
	// background while the caller gets the old one at once.
	walks := s.fs.walks
	again, err := s.FsInfo(ctx)
	if err != nil || *again != *withCtr || s.fs.walks != walks {
		t.Fatalf("second call walked (%d -> %d) or changed: %+v -> %+v, %v", walks, s.fs.walks, withCtr, again, err)
	}
	img, err := s.Store().Image(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.fs.layers[img.TopLayer]; !ok {
		t.Fatalf("image layer %s not kept: %v", img.TopLayer, s.fs.layers)
	}
	if _, ok := s.fs.layers[ctr.LayerID]; ok {
		t.Fatal("a container's writable layer is kept")
	}
	s.fs.mu.Lock()
	s.fs.at = time.Now().Add(-time.Hour)
	s.fs.mu.Unlock()
	stale, err := s.FsInfo(ctx)
	if err != nil || stale.Images.Timestamp != withCtr.Images.Timestamp {
		t.Fatalf("stale call did not answer from the cache: %+v %v", stale, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.fs.mu.Lock()
		done := s.fs.walks == walks+1 && !s.fs.busy
		s.fs.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no background refresh")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fresh, err := s.FsInfo(ctx)
	if err != nil || !fresh.Images.Timestamp.After(withCtr.Images.Timestamp) || fresh.Images.UsedBytes != withCtr.Images.UsedBytes {
		t.Fatalf("after refresh %+v (before %+v), %v", fresh, withCtr, err)
	}

	if err := s.Store().DeleteContainer(ctr.ID); err != nil {
		t.Fatal(err)
	}
	// The store changed: measured again at once, the container gone.
	gone, err := s.FsInfo(ctx)
	if err != nil || gone.Containers.InodesUsed >= withCtr.Containers.InodesUsed {
		t.Fatalf("after removing the container %+v -> %+v, %v", withCtr.Containers, gone.Containers, err)
	}
}

func TestReopenKeepsImages(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	reg.push(t, "reopen/app", "1", buildImage(t, imageSpec{files: map[string]string{"id": "reopen"}}))
	env := newEnv(t, insecure(reg.Host), "")
	s, err := New(env.opts)
	if err != nil {
		t.Fatal(err)
	}
	id := mustPull(t, s, reg.Host+"/reopen/app:1", nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The daemon found its marker: a clean restart.
	env.opts.PreviousShutdown = ShutdownClean
	s2 := env.open(t)
	list, err := s2.List(testCtx(t), "")
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("after reopen: %v %v", list, err)
	}
	if strings.Contains(env.logs.String(), "not clean") {
		t.Fatalf("clean restart was treated as unclean:\n%s", env.logs)
	}
}

// TestUncleanShutdownRepairsBrokenLayer simulates the power-loss case: the
// daemon dies without the marker and a layer's files are gone. At the next
// start the damaged image is dropped instead of failing every call with
// "layer not known", and pulling it again works.
func TestUncleanShutdownRepairsBrokenLayer(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	reg.push(t, "broken/app", "1", buildImage(t, imageSpec{files: map[string]string{"id": "broken"}}))
	reg.push(t, "broken/ok", "1", buildImage(t, imageSpec{noBase: true, files: map[string]string{"id": "fine"}}))
	env := newEnv(t, insecure(reg.Host), "")
	s, err := New(env.opts)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/broken/app:1"
	id := mustPull(t, s, ref, nil)
	okID := mustPull(t, s, reg.Host+"/broken/ok:1", nil)
	img, err := s.Store().Image(id)
	if err != nil {
		t.Fatal(err)
	}
	// "Crash": release the store; the daemon finds no marker and says so
	// (ShutdownUnclean, the zero value).
	s.shutdownForTest()
	if err := os.RemoveAll(filepath.Join(env.opts.Root, "overlay", img.TopLayer)); err != nil {
		t.Fatal(err)
	}

	s2 := env.open(t)
	if !strings.Contains(env.logs.String(), "not clean") || !strings.Contains(env.logs.String(), "storage damage") {
		t.Fatalf("no check after an unclean stop:\n%s", env.logs)
	}
	list, err := s2.List(testCtx(t), "")
	if err != nil || len(list) != 1 || list[0].ID != okID {
		t.Fatalf("list after repair: %v %v", list, err)
	}
	if got := mustPull(t, s2, ref, nil); got != id {
		t.Fatalf("re-pull gave %s, want %s", got, id)
	}
	report, err := s2.Store().Check(storage.CheckMost())
	if err != nil || len(describeReport(report)) != 0 {
		t.Fatalf("store not consistent after repair and re-pull: %v %v", describeReport(report), err)
	}
}

// helperEnv makes the test binary a pull process (see runHelper).
const helperEnv = "CRIO_IMAGE_TEST_HELPER"

// runHelper pulls one image with the options in the environment; the
// parent test kills it with SIGKILL part way.
func runHelper() int {
	var opts Options
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv)), &opts); err != nil {
		os.Stderr.WriteString("helper: " + err.Error() + "\n")
		return 2
	}
	s, err := New(opts)
	if err != nil {
		os.Stderr.WriteString("helper: " + err.Error() + "\n")
		return 2
	}
	_, err = s.Pull(t0(), os.Getenv(helperEnv+"_REF"), nil)
	if err != nil {
		os.Stderr.WriteString("helper: " + err.Error() + "\n")
		return 1
	}
	return 0
}

// TestKillDuringPull: a crio killed part way through a pull leaves layers
// half unpacked in overlay's staging directories; the next start checks
// the store (it was used before) and removes them, and the pull then
// succeeds.
func TestKillDuringPull(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	first := buildImage(t, imageSpec{files: map[string]string{"id": "first"}})
	reg.push(t, "kill/first", "1", first)
	img := buildImage(t, imageSpec{files: map[string]string{"id": "killed"}, big: 4 << 20})
	reg.push(t, "kill/app", "1", img)
	// Stall the last layer: it is half unpacked when the process dies.
	proxy := newStallProxy(t, reg.Host, img.layers[len(img.layers)-1].digest().String())
	env := newEnv(t, insecure(reg.Host)+insecure(proxy.Host), "")
	s := env.open(t)
	mustPull(t, s, reg.Host+"/kill/first:1", nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(env.opts.Root, "overlay", "staging")

	env.opts.Logger = nil
	optsJSON, err := json.Marshal(env.opts)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(optsJSON), helperEnv+"_REF="+proxy.Host+"/kill/app:1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-proxy.stalled:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper never reached the stalled layer: %s", stderr.String())
	}
	// The stalled layer's half is being unpacked into a staging directory.
	for deadline := time.Now().Add(time.Minute); len(stagedFiles(t, staging)) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("nothing staged under %s: %s", staging, stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(stagedFiles(t, staging)) == 0 {
		t.Fatal("the killed pull left no staging directory: the test would prove nothing")
	}

	env.logs = &testutil.SyncBuffer{}
	env.opts.Logger = newTestLogger(env.logs)
	s = env.open(t)
	if !strings.Contains(env.logs.String(), "not clean") {
		t.Fatalf("killed run not detected:\n%s", env.logs)
	}
	if left := stagedFiles(t, staging); len(left) != 0 || !strings.Contains(env.logs.String(), "left half unpacked") {
		t.Fatalf("staging directories left after the restart: %v\n%s", left, env.logs)
	}
	id := mustPull(t, s, reg.Host+"/kill/app:1", nil)
	list, err := s.List(testCtx(t), "")
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v %v", list, err)
	}
	if !slices.ContainsFunc(list, func(i *Image) bool { return i.ID == id }) {
		t.Fatalf("list %v lacks %s", list, id)
	}
	report, err := s.Store().Check(storage.CheckMost())
	if err != nil || len(describeReport(report)) != 0 {
		t.Fatalf("store not consistent: %v %v", describeReport(report), err)
	}
}

// stagedFiles lists what is under overlay's staging directory.
func stagedFiles(t *testing.T, staging string) []string {
	t.Helper()
	entries, err := os.ReadDir(staging)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestPreviousShutdownFromCaller: the daemon keeps the marker and says how
// the last run ended; only an unclean end checks a used store.
func TestPreviousShutdownFromCaller(t *testing.T) {
	env := newEnv(t, "", "")
	s, err := New(env.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store().CreateLayer("", "", nil, "", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prev      PreviousShutdown
		wantCheck bool
	}{{ShutdownClean, false}, {ShutdownUnclean, true}} {
		env.logs = &testutil.SyncBuffer{}
		env.opts.Logger = newTestLogger(env.logs)
		env.opts.PreviousShutdown = tc.prev
		s, err := New(env.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(env.logs.String(), "not clean"); got != tc.wantCheck {
			t.Errorf("PreviousShutdown %d: checked=%v, want %v\n%s", tc.prev, got, tc.wantCheck, env.logs)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
