package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPullByTagAndDigest(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	for _, format := range []string{formatOCI, formatDocker} {
		t.Run(format, func(t *testing.T) {
			img := buildImage(t, imageSpec{format: format, user: "1002:1004", files: map[string]string{"id": format}})
			repo := "app-" + format
			d := reg.push(t, repo, "v1", img)
			env := newEnv(t, insecure(reg.Host), "")
			s := env.open(t)

			ref := reg.Host + "/" + repo + ":v1"
			id := mustPull(t, s, ref, nil)
			st, err := s.Status(testCtx(t), ref, true)
			if err != nil {
				t.Fatal(err)
			}
			if st.ID != id || !slices.Equal(st.RepoTags, []string{ref}) ||
				!slices.Equal(st.RepoDigests, []string{reg.Host + "/" + repo + "@" + d.String()}) {
				t.Fatalf("status = %+v", st)
			}
			if st.UID == nil || *st.UID != 1002 || st.Username != "" || st.Size == 0 {
				t.Fatalf("user/size: uid %v username %q size %d", st.UID, st.Username, st.Size)
			}
			var info struct {
				Layers []struct{ Digest string } `json:"layers"`
				Spec   struct {
					Config struct{ User string }
				} `json:"imageSpec"`
			}
			if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || len(info.Layers) != 2 || info.Spec.Config.User != "1002:1004" {
				t.Fatalf("verbose info %q: %v", st.Info["info"], err)
			}

			// By digest: same image, recorded under the digest name.
			dref := reg.Host + "/" + repo + "@" + d.String()
			if id2 := mustPull(t, s, dref, nil); id2 != id {
				t.Fatalf("pull by digest gave %s, want %s", id2, id)
			}
			// Every way of naming it finds the same image.
			for _, name := range []string{id, "sha256:" + id, id[:12], ref, dref} {
				got, err := s.Status(testCtx(t), name, false)
				if err != nil || got.ID != id {
					t.Errorf("Status(%s) = %v, %v", name, got, err)
				}
			}
		})
	}
}

func TestPullDigestOnlyReportsThatDigest(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	host := buildImage(t, imageSpec{files: map[string]string{"id": "digest-only"}})
	other := buildImage(t, imageSpec{noBase: true, files: map[string]string{"arch": "other"}, arch: otherArch().Architecture, variant: otherArch().Variant})
	idx := reg.pushIndex(t, "multi", "v1", formatOCI, other, host)
	s := newEnv(t, insecure(reg.Host), "").open(t)
	ref := reg.Host + "/multi@" + idx.String()
	mustPull(t, s, ref, nil)
	st, err := s.Status(testCtx(t), ref, false)
	if err != nil {
		t.Fatal(err)
	}
	// critest: pulled by digest only -> no tags, exactly that digest.
	if len(st.RepoTags) != 0 || !slices.Equal(st.RepoDigests, []string{ref}) {
		t.Fatalf("tags %v digests %v", st.RepoTags, st.RepoDigests)
	}
}

func TestPullMultiArchPicksHostPlatform(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	for _, format := range []string{formatOCI, formatDocker} {
		t.Run(format, func(t *testing.T) {
			other := buildImage(t, imageSpec{format: format, noBase: true, files: map[string]string{"arch": "other"},
				arch: otherArch().Architecture, variant: otherArch().Variant})
			host := buildImage(t, imageSpec{format: format, files: map[string]string{"arch": "host"}})
			repo := "multi-" + format
			reg.pushIndex(t, repo, "v1", format, other, host) // the other arch comes first
			s := newEnv(t, insecure(reg.Host), "").open(t)
			id := mustPull(t, s, reg.Host+"/"+repo+":v1", nil)
			cfg, err := s.Config(testCtx(t), id)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Architecture != hostPlatform().Architecture {
				t.Fatalf("pulled %s image, want %s", cfg.Architecture, hostPlatform().Architecture)
			}
			got := reg.blobGETs(t, repo)
			if got[other.config.digest().String()] != 0 || got[host.config.digest().String()] != 1 {
				t.Fatalf("blob GETs %v: want only the host image", got)
			}
		})
	}
}

func TestPullShortNames(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	img := buildImage(t, imageSpec{files: map[string]string{"id": "short"}})
	reg.push(t, "second/shorty", "1", img)

	// One search registry: no ambiguity, even when enforcing.
	conf := fmt.Sprintf("unqualified-search-registries = [%q]\n", reg.Host) + insecure(reg.Host)
	s := newEnv(t, conf, "").open(t)
	id := mustPull(t, s, "second/shorty:1", nil)
	st, err := s.Status(testCtx(t), "second/shorty:1", false)
	if err != nil || st.ID != id || !slices.Equal(st.RepoTags, []string{reg.Host + "/second/shorty:1"}) {
		t.Fatalf("status by short name: %+v %v", st, err)
	}

	// Two search registries: enforcing refuses and names both candidates.
	two := fmt.Sprintf("unqualified-search-registries = [%q, %q]\n", "first.invalid", reg.Host) + insecure(reg.Host)
	env := newEnv(t, two, "")
	s2 := env.open(t)
	_, err = s2.Pull(testCtx(t), "second/shorty:1", nil)
	wantKind(t, err, ErrInvalidReference, "first.invalid/second/shorty:1", reg.Host+"/second/shorty:1", "fully qualified")

	// Disabled: try them in order; the first does not resolve.
	env.opts.ShortNameMode = ShortNameDisabled
	env.opts.Root += "2"
	env.opts.RunRoot += "2"
	s3 := env.open(t)
	if got := mustPull(t, s3, "second/shorty:1", nil); got != id {
		t.Fatalf("disabled mode pulled %s, want %s", got, id)
	}
}

func TestPullThroughMirror(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	img := buildImage(t, imageSpec{files: map[string]string{"id": "mirror"}})
	reg.push(t, "mirror/team/app", "1", img)
	conf := fmt.Sprintf(`[[registry]]
prefix = "upstream.invalid"
location = "upstream.invalid"
[[registry.mirror]]
location = "%s/mirror"
insecure = true
`, reg.Host)
	s := newEnv(t, conf, "").open(t)
	mark := reg.mark(t)
	id := mustPull(t, s, "upstream.invalid/team/app:1", nil)
	st, err := s.Status(testCtx(t), "upstream.invalid/team/app:1", false)
	if err != nil || st.ID != id {
		t.Fatalf("status: %+v %v", st, err)
	}
	if n := reg.requestsSince(t, mark, "mirror/team/app"); n == 0 {
		t.Fatal("the mirror saw no requests")
	}
}

func TestPullBlockedRegistry(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	reg.push(t, "blocked/app", "1", buildImage(t, imageSpec{files: map[string]string{"id": "blocked"}}))
	conf := insecure(reg.Host) + fmt.Sprintf("[[registry]]\nprefix = %q\nlocation = %q\nblocked = true\n", reg.Host+"/blocked", reg.Host+"/blocked")
	s := newEnv(t, conf, "").open(t)
	mark := reg.mark(t)
	_, err := s.Pull(testCtx(t), reg.Host+"/blocked/app:1", nil)
	wantKind(t, err, ErrDenied, "blocked = true", reg.Host+"/blocked")
	if n := reg.requestsSince(t, mark, "blocked/app"); n != 0 {
		t.Fatalf("a blocked registry got %d requests", n)
	}
}

func TestPullAuth(t *testing.T) {
	reg := startRegistry(t, registryOpts{user: "alice", password: "s3cret"})
	img := buildImage(t, imageSpec{files: map[string]string{"id": "auth"}})
	reg.push(t, "private/app", "1", img)
	ref := reg.Host + "/private/app:1"
	env := newEnv(t, insecure(reg.Host), "")
	s := env.open(t)

	_, err := s.Pull(testCtx(t), ref, &AuthConfig{Username: "alice", Password: "wrong"})
	wantKind(t, err, ErrUnauthenticated, reg.Host, "imagePullSecrets")
	_, err = s.Pull(testCtx(t), ref, nil)
	wantKind(t, err, ErrUnauthenticated)

	mustPull(t, s, ref, &AuthConfig{Username: "alice", Password: "s3cret"})
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	mustPull(t, s, ref, &AuthConfig{Auth: auth})

	// global_auth_file serves requests without credentials.
	authFile := filepath.Join(env.dir, "auth.json")
	if err := os.WriteFile(authFile, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, auth)), 0o600); err != nil {
		t.Fatal(err)
	}
	env.opts.GlobalAuthFile = authFile
	env.opts.Root += "2"
	env.opts.RunRoot += "2"
	mustPull(t, env.open(t), ref, nil)
}

func TestPullSignaturePolicy(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	img := buildImage(t, imageSpec{files: map[string]string{"id": "policy"}})
	reg.push(t, "signed/app", "1", img)
	reg.push(t, "open/app", "1", img)
	dir := t.TempDir()
	key := filepath.Join(dir, "key.gpg")
	if err := os.WriteFile(key, []byte("not a real key"), 0o644); err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf(`{
  "default": [{"type": "insecureAcceptAnything"}],
  "transports": {"docker": {%q: [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": %q}]}}
}`, reg.Host+"/signed", key)
	s := newEnv(t, insecure(reg.Host), policy).open(t)
	_, err := s.Pull(testCtx(t), reg.Host+"/signed/app:1", nil)
	wantKind(t, err, ErrDenied, "signature", reg.Host+"/signed", "signedBy")
	if _, err := s.Status(testCtx(t), reg.Host+"/signed/app:1", false); KindOf(err) != ErrNotFound {
		t.Fatalf("rejected image is stored: %v", err)
	}
	mustPull(t, s, reg.Host+"/open/app:1", nil)
}

func TestPullErrors(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := newEnv(t, insecure(reg.Host)+insecure(dead), "").open(t)

	_, err := s.Pull(testCtx(t), reg.Host+"/nothing/here:1", nil)
	wantKind(t, err, ErrNotFound, "not found")
	// Each way a registry cannot be reached has its own kind and message.
	// Connection refused: a closed loopback port.
	_, err = s.Pull(testCtx(t), dead+"/app:1", nil)
	wantKind(t, err, ErrUnreachable, dead, "connection refused")
	// DNS failure: .invalid never resolves (RFC 2606).
	_, err = s.Pull(testCtx(t), "registry.invalid/app:1", nil)
	wantKind(t, err, ErrUnreachable, "registry.invalid", "does not resolve")
	// TLS failure: the plain-HTTP registry, not marked insecure.
	secure := newEnv(t, "", "").open(t)
	_, err = secure.Pull(testCtx(t), reg.Host+"/nothing/here:1", nil)
	wantKind(t, err, ErrRegistryTLS, reg.Host, "TLS failed", "insecure = true")
	_, err = s.Pull(testCtx(t), "Not A Reference!", nil)
	wantKind(t, err, ErrInvalidReference)
}

func TestConcurrentPullsShareOneDownload(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	img := buildImage(t, imageSpec{files: map[string]string{"id": "concurrent"}, big: 8 << 20})
	reg.push(t, "conc/app", "1", img)
	s := newEnv(t, insecure(reg.Host), "").open(t)

	var wg sync.WaitGroup
	ids := make([]string, 10)
	errs := make([]error, 10)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = s.Pull(testCtx(t), reg.Host+"/conc/app:1", nil)
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("pull %d: %s %v", i, ids[i], errs[i])
		}
	}
	gets := reg.blobGETs(t, "conc/app")
	want := append([]blob{img.config}, img.layers...)
	for _, b := range want {
		if n := gets[b.digest().String()]; n != 1 {
			t.Errorf("blob %s fetched %d times, want 1 (all: %v)", b.digest(), n, gets)
		}
	}
}

func TestPullProgressTimeout(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	img := buildImage(t, imageSpec{files: map[string]string{"id": "stall"}, big: 1 << 20})
	reg.push(t, "stall/app", "1", img)
	proxy := newStallProxy(t, reg.Host, img.layers[len(img.layers)-1].digest().String())
	env := newEnv(t, insecure(proxy.Host), "")
	env.opts.PullProgressTimeout = time.Second
	s := env.open(t)
	start := time.Now()
	_, err := s.Pull(testCtx(t), proxy.Host+"/stall/app:1", nil)
	wantKind(t, err, ErrPullStalled, "pull_progress_timeout")
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("stalled pull took %v to give up", d)
	}
}

func TestPullHonoursCallerDeadline(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	img := buildImage(t, imageSpec{files: map[string]string{"id": "deadline"}})
	reg.push(t, "deadline/app", "1", img)
	s := newEnv(t, insecure(reg.Host), "").open(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err := s.Pull(ctx, reg.Host+"/deadline/app:1", nil)
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("want a deadline error, got %v", err)
	}
}
