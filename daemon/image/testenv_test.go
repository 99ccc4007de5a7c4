package image

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crio-appliance/crio/internal/testutil"
)

// testEnv is one test's store and configuration files, all under a temp
// dir, so tests can run side by side and leave nothing behind.
type testEnv struct {
	dir  string
	opts Options
	logs *testutil.SyncBuffer
}

const acceptAllPolicy = `{"default": [{"type": "insecureAcceptAnything"}]}`

// newEnv prepares a store location and writes registriesConf and policy
// (acceptAllPolicy when empty).
func newEnv(t *testing.T, registriesConf, policy string) *testEnv {
	t.Helper()
	requireIntegration(t)
	dir := t.TempDir()
	if policy == "" {
		policy = acceptAllPolicy
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, d := range []string{"registries.conf.d", "certs.d", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e := &testEnv{dir: dir, logs: &testutil.SyncBuffer{}}
	e.opts = Options{
		Root:                 filepath.Join(dir, "root"),
		RunRoot:              filepath.Join(dir, "runroot"),
		StorageDriver:        "overlay",
		RegistriesConf:       write("registries.conf", registriesConf),
		RegistriesConfDir:    filepath.Join(dir, "registries.conf.d"),
		RegistryCertsDir:     filepath.Join(dir, "certs.d"),
		SignaturePolicy:      write("policy.json", policy),
		InternalRepair:       true,
		BigFilesTemporaryDir: filepath.Join(dir, "tmp"),
		Logger:               newTestLogger(e.logs),
	}
	return e
}

// open starts a service on the env's store; it is closed at cleanup.
func (e *testEnv) open(t *testing.T) *Service {
	t.Helper()
	s, err := New(e.opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.shutdownForTest() })
	return s
}

// shutdownForTest closes the service and unmounts anything left mounted, so
// the temp dir can be removed.
func (s *Service) shutdownForTest() {
	s.closeOnce.Do(func() {
		s.stopPulls()
		s.flights.wg.Wait()
		_, _ = s.store.Shutdown(true)
		if f, ok := s.store.(interface{ Free() }); ok {
			f.Free()
		}
	})
}

// insecure is a registries.conf entry that lets the tests use plain HTTP.
func insecure(host string) string {
	return "[[registry]]\nlocation = \"" + host + "\"\ninsecure = true\n"
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustPull(t *testing.T, s *Service, ref string, auth *AuthConfig) string {
	t.Helper()
	id, err := s.Pull(testCtx(t), ref, auth)
	if err != nil {
		t.Fatalf("Pull(%s): %v", ref, err)
	}
	if len(id) != 64 {
		t.Fatalf("Pull(%s) returned %q, want an image ID", ref, id)
	}
	return id
}

func wantKind(t *testing.T, err error, kind error, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", kind)
	}
	if KindOf(err) != kind {
		t.Fatalf("error %q has kind %v, want %v", err, KindOf(err), kind)
	}
	t.Logf("%v: %v", kind, err)
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not mention %q", err, c)
		}
	}
}

func newTestLogger(w *testutil.SyncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// t0 is a context for helper processes, which have no *testing.T.
func t0() context.Context { return context.Background() }
