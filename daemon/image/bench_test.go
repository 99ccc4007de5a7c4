package image

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkColdPull pulls a ~100 MiB image of 6 layers (busybox and five
// 20 MiB incompressible layers) into an empty store, with this service and
// with skopeo (the same libraries) for comparison:
//
//	go test -tags containers_image_openpgp,exclude_graphdriver_btrfs \
//	    -run '^$' -bench ColdPull -benchtime 5x ./daemon/image
func BenchmarkColdPull(b *testing.B) {
	reg := startRegistry(b, registryOpts{})
	img := buildImage(b, imageSpec{files: map[string]string{"id": "bench"}, big: 20 << 20, bigN: 5})
	reg.push(b, "bench/big", "1", img)
	ref := reg.Host + "/bench/big:1"

	b.Run("crio", func(b *testing.B) {
		for i := range b.N {
			b.StopTimer()
			dir := b.TempDir()
			conf := filepath.Join(dir, "registries.conf")
			policy := filepath.Join(dir, "policy.json")
			writeFile(b, conf, insecure(reg.Host))
			writeFile(b, policy, acceptAllPolicy)
			s, err := New(Options{
				Root: filepath.Join(dir, fmt.Sprint("root", i)), RunRoot: filepath.Join(dir, "run"),
				StorageDriver: "overlay", RegistriesConf: conf, RegistriesConfDir: filepath.Join(dir, "none"),
				SignaturePolicy: policy, BigFilesTemporaryDir: dir,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := s.Pull(b.Context(), ref, nil); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			s.shutdownForTest()
		}
	})
	b.Run("skopeo", func(b *testing.B) {
		if _, err := exec.LookPath("skopeo"); err != nil {
			b.Skip("skopeo not installed")
		}
		for range b.N {
			b.StopTimer()
			dir := b.TempDir()
			policy := filepath.Join(dir, "policy.json")
			writeFile(b, policy, acceptAllPolicy)
			dest := fmt.Sprintf("containers-storage:[overlay@%s+%s]%s", filepath.Join(dir, "root"), filepath.Join(dir, "run"), ref)
			cmd := exec.Command("skopeo", "--policy", policy, "copy", "--src-tls-verify=false", "-q", "docker://"+ref, dest)
			cmd.Env = append(os.Environ(), "TMPDIR="+dir)
			b.StartTimer()
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("skopeo: %v\n%s", err, out)
			}
			b.StopTimer()
			// skopeo leaves the overlay home bind-mounted.
			_ = unix.Unmount(filepath.Join(dir, "root", "overlay"), unix.MNT_DETACH)
		}
	})
}

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
