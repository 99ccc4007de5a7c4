package image

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

func TestParseUser(t *testing.T) {
	for _, tc := range []struct {
		in   string
		uid  int64
		hasU bool
		name string
	}{
		{"", 0, true, ""},
		{"1002", 1002, true, ""},
		{"1003:1004", 1003, true, ""},
		{"www-data", 0, false, "www-data"},
		{"www-data:1004", 0, false, "www-data"},
		{"0:0", 0, true, ""},
	} {
		uid, name := parseUser(tc.in)
		if (uid != nil) != tc.hasU || (uid != nil && *uid != tc.uid) || name != tc.name {
			t.Errorf("parseUser(%q) = %v, %q; want uid %d (set %v), %q", tc.in, uid, name, tc.uid, tc.hasU, tc.name)
		}
	}
}

func TestNamesOf(t *testing.T) {
	d1 := digest.FromString("list")
	d2 := digest.FromString("instance")
	img := &storage.Image{
		ID:      "abc",
		Digest:  d2,
		Digests: []digest.Digest{d1, d2},
		Names: []string{
			"quay.io/a/b:1",
			"quay.io/a/b:2",
			"registry.k8s.io/pause@" + d1.String(),
			"not a reference",
		},
	}
	tags, digests := namesOf(img)
	wantTags := []string{"quay.io/a/b:1", "quay.io/a/b:2"}
	// Pulled by digest: exactly that name. Pulled by tag only: repo@manifest.
	wantDigests := []string{"registry.k8s.io/pause@" + d1.String(), "quay.io/a/b@" + d2.String()}
	if fmt.Sprint(tags) != fmt.Sprint(wantTags) {
		t.Errorf("tags = %v, want %v", tags, wantTags)
	}
	if fmt.Sprint(digests) != fmt.Sprint(wantDigests) {
		t.Errorf("digests = %v, want %v", digests, wantDigests)
	}
}

func TestPinMatcher(t *testing.T) {
	m := newPinMatcher([]string{"registry.k8s.io/pause:3.10", "quay.io/team/*", "*critical*", "busybox"})
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"registry.k8s.io/pause:3.10", true},
		{"registry.k8s.io/pause:3.9", false},
		{"quay.io/team/app:1", true},
		{"quay.io/other/app:1", false},
		{"example.com/very-critical-thing:1", true},
		{"docker.io/library/busybox:latest", true},
	} {
		if got := m.pinned([]string{tc.name}); got != tc.want {
			t.Errorf("pinned(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// writeRegistriesConf writes a registries.conf for sysregistriesv2.
func writeRegistriesConf(t *testing.T, body string) *types.SystemContext {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return &types.SystemContext{
		SystemRegistriesConfPath:    p,
		SystemRegistriesConfDirPath: filepath.Join(dir, "none.d"),
		UserShortNameAliasConfPath:  filepath.Join(dir, "aliases.conf"),
		ShortNameMode:               ptr(types.ShortNameModeDisabled),
	}
}

func TestPullCandidates(t *testing.T) {
	one := writeRegistriesConf(t, `unqualified-search-registries = ["r1.example.com"]`)
	two := writeRegistriesConf(t, `unqualified-search-registries = ["r1.example.com", "r2.example.com"]
[aliases]
"aliased" = "r2.example.com/team/aliased"
`)
	none := writeRegistriesConf(t, ``)

	cands, err := pullCandidates(one, "busybox", ShortNameEnforcing)
	if err != nil || len(cands) != 1 || cands[0].String() != "r1.example.com/busybox:latest" {
		t.Fatalf("single search registry: %v %v", cands, err)
	}
	_, err = pullCandidates(two, "busybox:1", ShortNameEnforcing)
	if !errors.Is(err, ErrInvalidReference) || !strings.Contains(err.Error(), "r1.example.com/busybox:1") ||
		!strings.Contains(err.Error(), "r2.example.com/busybox:1") || !strings.Contains(err.Error(), "fully qualified") {
		t.Fatalf("ambiguous short name under enforcing: %v", err)
	}
	cands, err = pullCandidates(two, "busybox:1", ShortNameDisabled)
	if err != nil || len(cands) != 2 {
		t.Fatalf("disabled mode: %v %v", cands, err)
	}
	cands, err = pullCandidates(two, "aliased", ShortNameEnforcing)
	if err != nil || len(cands) != 1 || cands[0].String() != "r2.example.com/team/aliased:latest" {
		t.Fatalf("alias: %v %v", cands, err)
	}
	cands, err = pullCandidates(two, "quay.io/x/y@sha256:"+strings.Repeat("a", 64), ShortNameEnforcing)
	if err != nil || len(cands) != 1 {
		t.Fatalf("qualified digest: %v %v", cands, err)
	}
	for _, bad := range []string{"", "UPPER/case", "a b", strings.Repeat("ab", 32), "sha256:" + strings.Repeat("c", 64)} {
		if _, err := pullCandidates(one, bad, ShortNameEnforcing); !errors.Is(err, ErrInvalidReference) {
			t.Errorf("pullCandidates(%q): %v, want ErrInvalidReference", bad, err)
		}
	}
	if _, err := pullCandidates(none, "busybox", ShortNameEnforcing); !errors.Is(err, ErrInvalidReference) {
		t.Errorf("short name without search registries: %v", err)
	}
}

func TestAuthConfig(t *testing.T) {
	a := &AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("alice:s3:cret"))}
	da, _, err := a.dockerAuth()
	if err != nil || da.Username != "alice" || da.Password != "s3:cret" {
		t.Fatalf("auth field: %+v %v", da, err)
	}
	if _, _, err := (&AuthConfig{Auth: "!!"}).dockerAuth(); !errors.Is(err, ErrInvalidReference) {
		t.Fatalf("bad base64: %v", err)
	}
	da, tok, err := (&AuthConfig{RegistryToken: "tok"}).dockerAuth()
	if err != nil || da != nil || tok != "tok" {
		t.Fatalf("registry token: %+v %q %v", da, tok, err)
	}
	var nilAuth *AuthConfig
	if !nilAuth.empty() || nilAuth.key() != "" {
		t.Fatal("nil auth must be empty")
	}
	if (&AuthConfig{Password: "a"}).key() == (&AuthConfig{Password: "b"}).key() {
		t.Fatal("different credentials must not share a pull")
	}
}

func TestClassifyPullError(t *testing.T) {
	named, _ := reference.ParseNormalizedNamed("quay.io/a/b:1")
	f := pullFailure{named: named, policyPath: "/p.json", authSource: "x", timeout: "1s"}
	ctx := context.Background()
	for _, tc := range []struct {
		err  error
		kind error
	}{
		{docker.ErrUnauthorizedForCredentials{Err: errors.New("x")}, ErrUnauthenticated},
		{fmt.Errorf("reading manifest: %w", errcode.ErrorCodeUnauthorized.WithMessage("authentication required")), ErrUnauthenticated},
		{fmt.Errorf("reading manifest: %w", v2.ErrorCodeManifestUnknown.WithMessage("manifest unknown")), ErrNotFound},
		{fmt.Errorf("x: %w", signature.PolicyRequirementError("A signature was required, but no signature exists")), ErrDenied},
		// A signature made with another key: the library's error for the signature itself.
		{fmt.Errorf("Source image rejected: %w", signature.InvalidSignatureError{}), ErrDenied},
		{fmt.Errorf("pinging: %w", &os.SyscallError{Syscall: "connect", Err: errConnRefused}), ErrUnreachable},
		{fmt.Errorf("pinging: %w", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "r.invalid", IsNotFound: true}}), ErrUnreachable},
		{fmt.Errorf("pinging: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("network is unreachable")}), ErrUnreachable},
		{errors.New(`pinging container registry 127.0.0.1:5000: Get "https://127.0.0.1:5000/v2/": http: server gave HTTP response to HTTPS client`), ErrRegistryTLS},
		{fmt.Errorf("pinging: %w", x509.UnknownAuthorityError{}), ErrRegistryTLS},
		{docker.UnexpectedHTTPStatusError{StatusCode: 502}, ErrRegistryFailed},
		{errors.New(`no image found in image index for architecture "amd64", variant "", OS "linux"`), ErrNotFound},
		{docker.ErrTooManyRequests, ErrRegistryFailed},
		{errors.New("something else"), nil},
	} {
		got := classifyPullError(ctx, tc.err, f)
		if KindOf(got) != tc.kind {
			t.Errorf("classify(%v) = %v (kind %v), want kind %v", tc.err, got, KindOf(got), tc.kind)
		}
	}
	cctx, cancel := context.WithCancelCause(ctx)
	cancel(ErrPullStalled)
	if got := classifyPullError(cctx, context.Canceled, f); !errors.Is(got, ErrPullStalled) {
		t.Errorf("stalled: %v", got)
	}
}

func TestFlightGroupSharesOneRun(t *testing.T) {
	g := flightGroup{base: context.Background()}
	var runs atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	ids := make([]string, 10)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], _, _ = g.do(context.Background(), "k", func(context.Context) (string, error) {
				runs.Add(1)
				<-release
				return "id", nil
			})
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if runs.Load() != 1 {
		t.Fatalf("runs = %d, want 1", runs.Load())
	}
	for _, id := range ids {
		if id != "id" {
			t.Fatalf("ids = %v", ids)
		}
	}
}

func TestFlightGroupCancelsWhenAllWaitersLeave(t *testing.T) {
	g := flightGroup{base: context.Background()}
	cancelled := make(chan struct{})
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	fn := func(ctx context.Context) (string, error) {
		<-ctx.Done()
		close(cancelled)
		return "", ctx.Err()
	}
	errs := make(chan error, 2)
	go func() { _, _, err := g.do(ctx1, "k", fn); errs <- err }()
	time.Sleep(20 * time.Millisecond)
	go func() { _, _, err := g.do(ctx2, "k", fn); errs <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel1()
	<-errs
	select {
	case <-cancelled:
		t.Fatal("run cancelled while a waiter remained")
	case <-time.After(50 * time.Millisecond):
	}
	cancel2()
	<-errs
	select {
	case <-cancelled:
	case <-time.After(time.Second):
		t.Fatal("run not cancelled after every waiter left")
	}
}

func TestProgressWatch(t *testing.T) {
	ctx, w, stop := watchProgress(context.Background(), 100*time.Millisecond)
	defer stop()
	// Steady progress keeps the pull alive past the timeout...
	for range 6 {
		time.Sleep(40 * time.Millisecond)
		w.Progress <- types.ProgressProperties{Event: types.ProgressEventRead}
	}
	if ctx.Err() != nil {
		t.Fatal("cancelled despite progress")
	}
	// ...silence does not.
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
		t.Fatal("not cancelled after the timeout")
	}
	if !errors.Is(context.Cause(ctx), ErrPullStalled) {
		t.Fatalf("cause = %v", context.Cause(ctx))
	}
	// A late report must not block.
	done := make(chan struct{})
	go func() { w.Progress <- types.ProgressProperties{}; close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("progress send blocked after the timeout")
	}
}

func TestCombinePullErrors(t *testing.T) {
	nf := newError(ErrNotFound, nil, "a not found")
	ua := newError(ErrUnauthenticated, nil, "b refused")
	if err := combinePullErrors("x", []error{nf, nf}); !errors.Is(err, ErrNotFound) {
		t.Errorf("all not found: %v", err)
	}
	err := combinePullErrors("x", []error{nf, ua})
	if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "a not found") {
		t.Errorf("mixed: %v", err)
	}
}

func TestLocalCandidates(t *testing.T) {
	sys := writeRegistriesConf(t, `unqualified-search-registries = ["r1.example.com"]`)
	got, err := localCandidates(sys, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range got {
		names = append(names, n.String())
	}
	want := []string{"localhost/busybox:latest", "r1.example.com/busybox:latest", "docker.io/library/busybox:latest"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("candidates %v, want %v", names, want)
	}
	got, err = localCandidates(sys, "quay.io/a/b")
	if err != nil || len(got) != 1 || got[0].String() != "quay.io/a/b:latest" {
		t.Fatalf("qualified: %v %v", got, err)
	}
}

func TestPullFailureCategory(t *testing.T) {
	for _, c := range []struct {
		errs []error
		want string
	}{
		{[]error{fmt.Errorf("reading manifest: %w", errcode.Error{Code: v2.ErrorCodeManifestUnknown})}, "MANIFEST_UNKNOWN"},
		{[]error{fmt.Errorf("x: %w", v2.ErrorCodeNameUnknown)}, "NAME_UNKNOWN"},
		{[]error{newError(ErrUnauthenticated, nil, "refused")}, "UNAUTHORIZED"},
		{[]error{errors.New("plain"), fmt.Errorf("dial: %w", syscall.ECONNREFUSED)}, "CONNECTION_REFUSED"},
		{[]error{newError(ErrPullStalled, nil, "stalled")}, "CONNECTION_TIMEOUT"},
		{[]error{errors.New("plain")}, "UNKNOWN"},
	} {
		if got := pullFailureCategory(c.errs); got != c.want {
			t.Errorf("pullFailureCategory(%v) = %s, want %s", c.errs, got, c.want)
		}
	}
}
