package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Image volumes: an image mounted read-only (but executable) into a
// container, whole or a sub path of it, reported with the image's id;
// bad requests refused without leaving storage behind; removal releases
// the volume's storage.
func TestImageVolumes(t *testing.T) {
	e := startCtrDaemon(t, nil)
	e.warmUp(t)
	before := takeCtrFootprint(t, e.d, nil)
	storageBefore := storageContainers(t, e.d)
	imgStatus, err := e.d.Image().ImageStatus(Context(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: e.image}})
	if err != nil {
		t.Fatal(err)
	}
	imageID := imgStatus.GetImage().GetId()
	podID, pod := e.pod(t, "image-volume", nil)
	volume := func(path, sub string) *runtimeapi.Mount {
		return &runtimeapi.Mount{ContainerPath: path, Readonly: true, Image: &runtimeapi.ImageSpec{Image: e.image}, ImageSubPath: sub}
	}

	cfg := e.ctrConfig("iv", "sh", "-c", `/mnt/iv/bin/busybox true || exit 10
touch /mnt/iv/written 2>/dev/null && exit 11
test -f /mnt/etc/passwd || exit 12
test -e /mnt/etc/etc && exit 13
echo ok`)
	cfg.Mounts = []*runtimeapi.Mount{volume("/mnt/iv", ""), volume("/mnt/etc", "etc")}
	id := e.create(t, podID, pod, cfg)
	if n := storageContainers(t, e.d) - storageBefore; n != 3 {
		t.Errorf("storage containers: %d, want the rootfs and 2 volumes", n)
	}
	e.start(t, id)
	st := e.waitExited(t, id, 30*time.Second)
	if st.ExitCode != 0 {
		t.Errorf("checks inside the container failed: exit %d, log %v", st.ExitCode, logLines(t, st.LogPath))
	}
	got := map[string]*runtimeapi.Mount{}
	for _, m := range st.Mounts {
		got[m.ContainerPath] = m
	}
	if m := got["/mnt/iv"]; m.GetImage().GetImageRef() != imageID || m.GetImage().GetImage() != e.image || !m.Readonly {
		t.Errorf("status of /mnt/iv: %v", m)
	}
	if m := got["/mnt/etc"]; m.GetImageSubPath() != "etc" || m.GetImage().GetImageRef() != imageID {
		t.Errorf("status of /mnt/etc: %v", m)
	}

	for _, bad := range []struct {
		m    *runtimeapi.Mount
		code codes.Code
	}{
		{&runtimeapi.Mount{ContainerPath: "/mnt/w", Image: &runtimeapi.ImageSpec{Image: e.image}}, codes.InvalidArgument},
		{volume("/mnt/x", "not-existing"), codes.InvalidArgument},
		{volume("/mnt/x", "../../etc"), codes.InvalidArgument},
		{volume("/mnt/x", "/etc"), codes.InvalidArgument},
		{&runtimeapi.Mount{ContainerPath: "/mnt/x", Readonly: true, Image: &runtimeapi.ImageSpec{Image: e.reg.Host + "/it/absent:1"}}, codes.NotFound},
	} {
		cfg := e.ctrConfig("iv-bad", "true")
		cfg.Mounts = []*runtimeapi.Mount{volume("/mnt/ok", ""), bad.m}
		_, err := e.d.Runtime().CreateContainer(Context(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
		if status.Code(err) != bad.code {
			t.Errorf("mount %v: %v, want %v", bad.m, err, bad.code)
		}
	}
	if n, f := storageContainers(t, e.d)-storageBefore, takeCtrFootprint(t, e.d, nil); n != 3 || f.Records-before.Records != 1 {
		t.Errorf("refused creations left %d storage containers, %+v (before %+v)", n, f, before)
	}

	if _, err := e.d.Runtime().RemoveContainer(Context(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	removePod(t, e.d, podID)
	if after := takeCtrFootprint(t, e.d, nil); after != before || storageContainers(t, e.d) != storageBefore {
		t.Errorf("left behind: before %+v, after %+v, %d storage containers", before, after, storageContainers(t, e.d)-storageBefore)
	}
}

// storageContainers counts the containers in containers/storage's index.
func storageContainers(t *testing.T, d *Daemon) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(d.Dir, "root", "overlay-containers", "containers.json"))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	var ctrs []json.RawMessage
	if err := json.Unmarshal(data, &ctrs); err != nil {
		t.Fatalf("containers.json: %v", err)
	}
	return len(ctrs)
}
