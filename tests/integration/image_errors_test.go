package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A registry that cannot be reached is never reported as gRPC Unavailable
// (which clients read as "the runtime is down"): each cause has a code and a
// message that says what happened.
func TestPullUnreachableRegistryCodes(t *testing.T) {
	reg := startTestRegistry(t) // plain HTTP, and not marked insecure below
	reg.push("it/busybox", "latest", newTestImage(t, imageOpts{}))

	// A loopback port that was free a moment ago: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	dir := TempDir(t)
	regConf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(regConf, []byte(fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", closed)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := StartDaemon(t, Options{Dir: dir, Env: []string{"CONTAINERS_REGISTRIES_CONF=" + regConf}})

	for _, tc := range []struct {
		cause, image string
		code         codes.Code
		says         []string
	}{
		{"connection refused", closed + "/it/busybox:latest", codes.FailedPrecondition, []string{closed, "connection refused"}},
		{"DNS failure", "registry.invalid/it/busybox:latest", codes.FailedPrecondition, []string{"registry.invalid", "does not resolve"}},
		{"TLS failure", reg.Host + "/it/busybox:latest", codes.FailedPrecondition, []string{reg.Host, "TLS failed", "insecure = true"}},
	} {
		_, err := d.Image().PullImage(Context(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: tc.image}})
		if status.Code(err) != tc.code {
			t.Errorf("%s: code %v, want %v: %v", tc.cause, status.Code(err), tc.code, err)
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(status.Convert(err).Message(), s) {
				t.Errorf("%s: message %q does not mention %q", tc.cause, status.Convert(err).Message(), s)
			}
		}
	}
	// Through all of this crio itself stays up and answering.
	if _, err := d.Runtime().Version(Context(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Errorf("Version after failed pulls: %v", err)
	}
}
