package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// registries.conf is read once and cached; SIGHUP (systemctl reload crio)
// makes the next pull read it again, as CRI-O does, and nothing else does.
func TestSIGHUPReloadsRegistries(t *testing.T) {
	reg := startTestRegistry(t) // plain HTTP: a pull works only once it is marked insecure
	reg.push("it/busybox", "latest", newTestImage(t, imageOpts{}))
	image := reg.Host + "/it/busybox:latest"

	dir := TempDir(t)
	regConf := filepath.Join(dir, "registries.conf")
	write := func(insecure bool) {
		t.Helper()
		body := fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = %v\n", reg.Host, insecure)
		if err := os.WriteFile(regConf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var d *Daemon
	pull := func() error {
		_, err := d.Image().PullImage(Context(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: image}})
		return err
	}
	write(false)
	d = StartDaemon(t, Options{Dir: dir, Env: []string{"CONTAINERS_REGISTRIES_CONF=" + regConf}})

	if err := pull(); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("pull over TLS from a plain HTTP registry: %v, want FailedPrecondition", err)
	}
	// Rewritten, but not reloaded: the cached configuration still holds.
	write(true)
	if err := pull(); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("pull after rewriting registries.conf without SIGHUP: %v, want the old FailedPrecondition", err)
	}
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := pull()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pull after SIGHUP still fails: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
