package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/signature/signer"
	"go.podman.io/image/v5/signature/sigstore"
	"go.podman.io/image/v5/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The placeholders policy/examples uses; the test replaces exactly these.
const (
	exampleRegistry = "registry.example.com"
	exampleKeyPath  = "/etc/containers/keys/registry.example.com.pub"
)

// startDockerRegistry runs docker-registry (distribution) on a free
// loopback port: unlike the in-memory test registry it accepts pushes, which
// signing needs (the signature is pushed beside the image).
func startDockerRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry not installed (apt-get install docker-registry)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	body := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), host)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &Buffer{}
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Env = []string{"PATH=/usr/bin:/bin"} // it reads any REGISTRY_* variable as configuration
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return host
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry on %s not ready: %v\n%s", host, err, out)
		}
	}
}

// copyImage copies src to dst (both docker references on plain-HTTP
// loopback registries), signing with the sigstore private key when one is
// given; registriesDir says where the signature goes.
func copyImage(t *testing.T, src, dst, privateKey string, passphrase []byte, registriesDir string) {
	t.Helper()
	ref := func(s string) types.ImageReference {
		named, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			t.Fatal(err)
		}
		r, err := docker.NewReference(named)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	opts := &copy.Options{}
	if privateKey != "" {
		sgn, err := sigstore.NewSigner(sigstore.WithPrivateKeyFile(privateKey, passphrase))
		if err != nil {
			t.Fatalf("preparing the signer: %v", err)
		}
		defer sgn.Close()
		opts.Signers = []*signer.Signer{sgn}
	}
	sys := &types.SystemContext{DockerInsecureSkipTLSVerify: types.OptionalBoolTrue, RegistriesDirPath: registriesDir}
	opts.SourceCtx, opts.DestinationCtx = sys, sys
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Destroy()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := copy.Image(ctx, pc, ref(dst), ref(src), opts); err != nil {
		t.Fatalf("copying %s to %s: %v", src, dst, err)
	}
}

// The real daemon with policy/examples as its signature policy and
// registries.d: PullImage of an unsigned image from the registry the
// example names is PermissionDenied, naming the image and the policy; the
// signed image is pulled. The daemon runs in its own mount namespace where
// a test directory is /etc/containers, because registries.d is read only
// from there (CRI-O has no setting for it, and the host's must not change).
func TestPullRequiresSigstoreSignature(t *testing.T) {
	RequireRoot(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := startTestRegistry(t)
	src.push("it/busybox", "latest", newTestImage(t, imageOpts{}))
	reg := startDockerRegistry(t)
	dir := TempDir(t)

	pair, err := sigstore.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	privateKey, publicKey := filepath.Join(dir, "key.private"), filepath.Join(dir, "key.pub")
	if err := os.WriteFile(privateKey, pair.PrivateKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(publicKey, pair.PublicKey, 0o644); err != nil {
		t.Fatal(err)
	}

	// policy/examples with only the registry and the key path replaced.
	subst := strings.NewReplacer(exampleKeyPath, publicKey, exampleRegistry, reg)
	etc := filepath.Join(dir, "etc-containers")
	registriesDir := filepath.Join(etc, "registries.d")
	if err := os.MkdirAll(registriesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	policyPath := filepath.Join(dir, "policy.json")
	examples := filepath.Join(root, "policy", "examples")
	for from, to := range map[string]string{
		filepath.Join(examples, "policy.json"):                           policyPath,
		filepath.Join(examples, "registries.d", exampleRegistry+".yaml"): filepath.Join(registriesDir, "test.yaml"),
	} {
		raw, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		out := subst.Replace(string(raw))
		if out == string(raw) {
			t.Fatalf("%s does not name %s: the example changed, update this test", from, exampleRegistry)
		}
		if err := os.WriteFile(to, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	signed, unsigned := reg+"/team/app:signed", reg+"/team/unsigned:1"
	copyImage(t, src.Host+"/it/busybox:latest", signed, privateKey, []byte("pw"), registriesDir)
	copyImage(t, src.Host+"/it/busybox:latest", unsigned, "", nil, registriesDir)

	regConf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(regConf, []byte(fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", reg)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := StartDaemon(t, Options{
		Dir:     dir,
		DropIns: map[string]string{"50-policy.conf": fmt.Sprintf("[crio.image]\nsignature_policy = %q\n", policyPath)},
		Env:     []string{"CONTAINERS_REGISTRIES_CONF=" + regConf},
		Wrap: []string{"unshare", "--mount", "--propagation", "private", "--",
			"sh", "-c", `mount --bind "$0" /etc/containers && exec "$@"`, etc},
	})

	_, err = d.Image().PullImage(Context(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: unsigned}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("pulling the unsigned %s: code %v, want PermissionDenied: %v", unsigned, status.Code(err), err)
	}
	msg := status.Convert(err).Message()
	for _, want := range []string{unsigned, policyPath, "no signature exists"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not mention %q", msg, want)
		}
	}
	st, err := d.Image().ImageStatus(Context(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: unsigned}})
	if err != nil || st.Image != nil {
		t.Fatalf("the refused image is stored: %v %v", st, err)
	}

	resp, err := d.Image().PullImage(Context(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: signed}})
	if err != nil {
		t.Fatalf("pulling the signed %s: %v", signed, err)
	}
	st, err = d.Image().ImageStatus(Context(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: signed}})
	if err != nil || st.Image == nil || st.Image.Id != resp.ImageRef {
		t.Fatalf("status of the signed image: %v %v (pulled %s)", st, err, resp.ImageRef)
	}
}
