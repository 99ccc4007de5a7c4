package image

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
)

// shippedShortNameDropIn is the registries.conf drop-in crio installs as
// /etc/containers/registries.conf.d/10-crio.conf.
const shippedShortNameDropIn = "../../policy/registries.conf.d/10-crio.conf"

// installShortNameDropIn copies the shipped drop-in, byte for byte, into
// the env's registries.conf.d, plus extra drop-ins (name to content) that
// sort after it, as an operator's would.
func installShortNameDropIn(t *testing.T, env *testEnv, extra map[string]string) {
	t.Helper()
	raw, err := os.ReadFile(shippedShortNameDropIn)
	if err != nil {
		t.Fatalf("reading the shipped drop-in: %v", err)
	}
	files := map[string]string{"10-crio.conf": string(raw)}
	for name, body := range extra {
		files[name] = body
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(env.opts.RegistriesConfDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The shipped drop-in makes "busybox" mean docker.io/library/busybox, as
// Kubernetes users expect. Docker Hub is replaced here by a mirror on
// loopback (the way a node behind a pull-through cache is set up), so the
// pull goes through crio's image service, name resolution included, with
// no traffic beyond 127.0.0.1.
func TestShippedDropInResolvesShortNamesToDockerHub(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	img := buildImage(t, imageSpec{files: map[string]string{"id": "hub busybox"}})
	reg.push(t, "hub/library/busybox", "latest", img)

	// An empty main registries.conf: everything comes from the drop-ins.
	env := newEnv(t, "", "")
	installShortNameDropIn(t, env, map[string]string{"50-mirror.conf": fmt.Sprintf(`[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "%s/hub"
insecure = true
`, reg.Host)})
	s := env.open(t)

	mark := reg.mark(t)
	id := mustPull(t, s, "busybox", nil)
	if want := img.config.digest().Encoded(); id != want {
		t.Fatalf("pulled image %s, want the mirror's %s", id, want)
	}
	st, err := s.Status(testCtx(t), "busybox", false)
	if err != nil || st.ID != id || !slices.Equal(st.RepoTags, []string{"docker.io/library/busybox:latest"}) {
		t.Fatalf("status of busybox: %+v %v; want it stored as docker.io/library/busybox:latest", st, err)
	}
	// The bytes came from the mirror: every layer was fetched there.
	gets := reg.blobGETs(t, "hub/library/busybox")
	for _, l := range img.layers {
		if gets[l.digest().String()] == 0 {
			t.Errorf("layer %s was not fetched from the mirror (blob GETs there: %v)", l.digest(), gets)
		}
	}
	if n := reg.requestsSince(t, mark, "hub/library/busybox"); n == 0 {
		t.Fatal("the mirror saw no requests")
	}
}

// The shipped drop-in sets short-name-mode = "enforcing" for every
// containers tool on the node, and crio (enforcing by default) refuses a
// short name that a later drop-in makes ambiguous instead of pulling from
// whichever registry answers first.
func TestShippedDropInShortNamesEnforcing(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	reg.push(t, "busybox", "latest", buildImage(t, imageSpec{files: map[string]string{"id": "impostor"}}))

	env := newEnv(t, "", "")
	installShortNameDropIn(t, env, nil)
	sys := &types.SystemContext{
		SystemRegistriesConfPath:    env.opts.RegistriesConf,
		SystemRegistriesConfDirPath: env.opts.RegistriesConfDir,
	}
	mode, err := sysregistriesv2.GetShortNameMode(sys)
	if err != nil || mode != types.ShortNameModeEnforcing {
		t.Fatalf("short-name-mode with the shipped drop-in: %v %v, want enforcing", mode, err)
	}
	search, err := sysregistriesv2.UnqualifiedSearchRegistries(sys)
	if err != nil || !slices.Equal(search, []string{"docker.io"}) {
		t.Fatalf("unqualified-search-registries with the shipped drop-in: %v %v, want [docker.io]", search, err)
	}

	// A later drop-in adds a second search registry, which serves an image
	// called busybox. (A fresh env: the library caches parsed
	// registries.conf per path until crio reloads it on SIGHUP.)
	env = newEnv(t, "", "")
	installShortNameDropIn(t, env, map[string]string{"50-second.conf": fmt.Sprintf(
		"unqualified-search-registries = [\"docker.io\", %q]\n", reg.Host) + insecure(reg.Host)})
	s := env.open(t)
	mark := reg.mark(t)
	_, err = s.Pull(testCtx(t), "busybox", nil)
	wantKind(t, err, ErrInvalidReference, "ambiguous", "docker.io/library/busybox:latest", reg.Host+"/busybox:latest")
	if n := reg.requestsSince(t, mark, "busybox"); n != 0 {
		t.Fatalf("an ambiguous short name reached the second registry (%d requests)", n)
	}
	if _, err := s.Status(testCtx(t), "busybox", false); KindOf(err) != ErrNotFound {
		t.Fatalf("an image was stored for the ambiguous short name: %v", err)
	}
}
