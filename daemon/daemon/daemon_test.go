package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/config"
	"github.com/crio-appliance/crio/daemon/httpapi"
	"github.com/crio-appliance/crio/daemon/logging"
	"github.com/crio-appliance/crio/internal/testutil"
)

// testResult is the default configuration with every path under one short
// temporary directory (socket paths must stay under 108 bytes).
func testResult(t *testing.T) *config.Result {
	t.Helper()
	dir, err := os.MkdirTemp("", "crd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := config.Default()
	c.Root = filepath.Join(dir, "root")
	c.RunRoot = filepath.Join(dir, "runroot")
	c.LogDir = filepath.Join(dir, "log", "pods")
	c.VersionFile = filepath.Join(dir, "run", "version")
	c.VersionFilePersist = filepath.Join(dir, "lib", "version")
	c.CleanShutdownFile = filepath.Join(dir, "lib", "clean.shutdown")
	c.API.Listen = filepath.Join(dir, "sock", "crio.sock")
	c.Runtime.ContainerExitsDir = filepath.Join(dir, "run", "exits")
	c.Runtime.ContainerAttachSocketDir = filepath.Join(dir, "run")
	c.Runtime.NamespacesDir = filepath.Join(dir, "ns")
	return &config.Result{Config: c, Origin: map[string]string{}}
}

func newTestDaemon(t *testing.T, opts Options) (*Daemon, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	if opts.Level == nil {
		opts.Level = new(slog.LevelVar)
	}
	opts.Logger = logging.New(logs, opts.Level)
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return d, logs
}

func criClient(t *testing.T, socket string) runtimeapi.RuntimeServiceClient {
	t.Helper()
	cc, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return runtimeapi.NewRuntimeServiceClient(cc)
}

func httpGet(t *testing.T, socket, path string) *http.Response {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	resp, err := c.Get("http://crio" + path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestStartServeStop(t *testing.T) {
	res := testResult(t)
	cfg := res.Config
	d, logs := newTestDaemon(t, Options{Result: res})
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			d.Stop(ctx)
		}
	}()

	for _, ds := range dirsFor(cfg) {
		if ds.path == "" {
			continue
		}
		if fi, err := os.Stat(ds.path); err != nil || !fi.IsDir() {
			t.Errorf("%s: directory %s not created: %v", ds.key, ds.path, err)
		}
	}
	if fi, _ := os.Stat(cfg.Root); fi != nil && fi.Mode().Perm() != 0o700 {
		t.Errorf("root mode %v, want 0700", fi.Mode().Perm())
	}
	fi, err := os.Stat(cfg.API.Listen)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket: %v %v", fi, err)
	}
	for _, p := range []string{cfg.VersionFile, cfg.VersionFilePersist} {
		if b, err := os.ReadFile(p); err != nil || strings.TrimSpace(string(b)) == "" {
			t.Errorf("version file %s: %q %v", p, b, err)
		}
	}

	v, err := criClient(t, cfg.API.Listen).Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.RuntimeName != "crio" {
		t.Fatalf("Version = %v, %v", v, err)
	}
	var info httpapi.Info
	if err := json.NewDecoder(httpGet(t, cfg.API.Listen, "/info").Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	if info.StorageRoot != cfg.Root || info.CgroupDriver != "cgroupfs" {
		t.Errorf("/info = %+v", info)
	}

	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if _, err := os.Lstat(cfg.API.Listen); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after Stop: %v", err)
	}
	if _, err := os.Stat(cfg.CleanShutdownFile); err != nil {
		t.Errorf("clean shutdown marker not written: %v", err)
	}
	if !strings.Contains(logs.String(), "crio stopped") {
		t.Errorf("logs: %s", logs)
	}
}

func TestCleanShutdownMarkerReachesBuilder(t *testing.T) {
	res := testResult(t)
	var seen []bool
	closed := 0
	build := func(_ context.Context, env Env) (Services, error) {
		seen = append(seen, env.PreviousShutdownClean)
		return Services{Close: func(context.Context) error { closed++; return nil }}, nil
	}
	for range 2 {
		d, _ := newTestDaemon(t, Options{Result: res, Build: build})
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		// While running there is no marker: a crash now must look unclean.
		if _, err := os.Stat(res.Config.CleanShutdownFile); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("marker present while running: %v", err)
		}
		if err := d.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 2 || seen[0] || !seen[1] {
		t.Errorf("PreviousShutdownClean = %v, want [false true]", seen)
	}
	if closed != 2 {
		t.Errorf("Services.Close called %d times, want 2", closed)
	}
}

func TestFailedServicesCloseLeavesNoMarker(t *testing.T) {
	res := testResult(t)
	d, _ := newTestDaemon(t, Options{Result: res, Build: func(context.Context, Env) (Services, error) {
		return Services{Close: func(context.Context) error { return errors.New("storage busy") }}, nil
	}})
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(context.Background()); err == nil || !strings.Contains(err.Error(), "storage busy") {
		t.Fatalf("Stop = %v", err)
	}
	if _, err := os.Stat(res.Config.CleanShutdownFile); !errors.Is(err, fs.ErrNotExist) {
		t.Error("marker written although services failed to close")
	}
}

func TestBuildErrorReleasesSocket(t *testing.T) {
	res := testResult(t)
	d, _ := newTestDaemon(t, Options{Result: res, Build: func(context.Context, Env) (Services, error) {
		return Services{}, errors.New("no storage")
	}})
	err := d.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no storage") {
		t.Fatalf("Start = %v", err)
	}
	if _, err := os.Lstat(res.Config.API.Listen); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after failed start: %v", err)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	res := testResult(t)
	first, _ := newTestDaemon(t, Options{Result: res})
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer first.Stop(context.Background())
	second, _ := newTestDaemon(t, Options{Result: res})
	if err := second.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "another crio") {
		t.Fatalf("second Start = %v, want refusal", err)
	}
	if _, err := criClient(t, res.Config.API.Listen).Version(context.Background(), &runtimeapi.VersionRequest{}); err != nil {
		t.Errorf("first daemon unreachable after refused second start: %v", err)
	}
}

func TestReloadLogLevel(t *testing.T) {
	res := testResult(t)
	loads := []func() (*config.Result, error){
		func() (*config.Result, error) {
			next := testResult(t)
			next.Config = ptrCopy(res.Config)
			next.Config.Runtime.LogLevel = "debug"
			next.Config.Runtime.CtrStopTimeout = 99 // not reloadable
			next.Origin = map[string]string{logLevelKey: "/etc/crio/crio.conf.d/10-debug.conf:2"}
			return next, nil
		},
		func() (*config.Result, error) { return nil, errors.New("x.conf:2: crio.runtime.log_levl: unknown key") },
	}
	var lv slog.LevelVar
	d, logs := newTestDaemon(t, Options{Result: res, Level: &lv, Load: func(config.Sources) (*config.Result, error) {
		f := loads[0]
		loads = loads[1:]
		return f()
	}})
	registryReloads := 0
	d.services.Reload = func() { registryReloads++ }
	if lv.Level() != slog.LevelInfo {
		t.Fatalf("start level %v", lv.Level())
	}

	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if lv.Level() != slog.LevelDebug {
		t.Errorf("level after reload %v, want debug", lv.Level())
	}
	out := logs.String()
	if !strings.Contains(out, "log_level changed from info to debug") {
		t.Errorf("no change line in logs: %s", out)
	}
	if !strings.Contains(out, "crio.runtime.ctr_stop_timeout") {
		t.Errorf("non-reloadable change not reported: %s", out)
	}
	cur := d.Config()
	if cur.Config.Runtime.LogLevel != "debug" || cur.Origin[logLevelKey] == "" {
		t.Errorf("running config not updated: %s %v", cur.Config.Runtime.LogLevel, cur.Origin)
	}
	if cur.Config.Runtime.CtrStopTimeout != 30 {
		t.Error("non-reloadable key applied")
	}
	if res.Config.Runtime.LogLevel != "info" {
		t.Error("reload mutated the original Result")
	}

	if err := d.Reload(); err == nil {
		t.Fatal("bad reload returned nil")
	}
	if !strings.Contains(logs.String(), "log_levl") || d.Config() != cur || lv.Level() != slog.LevelDebug {
		t.Error("bad reload changed the running configuration or was not logged")
	}
	// The registries are re-read on every SIGHUP, the bad one included.
	if registryReloads != 2 || !strings.Contains(logs.String(), "registries configuration reloaded") {
		t.Errorf("registries reloaded %d times, want 2", registryReloads)
	}
}

func ptrCopy(c *config.Config) *config.Config {
	cp := *c
	return &cp
}

func TestRunStopsOnContextCancel(t *testing.T) {
	res := testResult(t)
	logs := &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Result: res, Logger: logging.New(logs, slog.LevelInfo)})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(res.Config.API.Listen); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("socket never appeared; logs: %s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
	if _, err := os.Lstat(res.Config.API.Listen); !errors.Is(err, fs.ErrNotExist) {
		t.Error("socket left behind")
	}
}

func TestNewRejectsBadLogLevel(t *testing.T) {
	res := testResult(t)
	res.Config.Runtime.LogLevel = "loud"
	if _, err := New(Options{Result: res}); err == nil || !strings.Contains(err.Error(), "log_level") {
		t.Errorf("New = %v", err)
	}
}

func TestChangedKeys(t *testing.T) {
	a := config.Default()
	b := config.Default()
	b.Runtime.LogLevel = "debug"
	b.API.Listen = "/x.sock"
	b.Runtime.Runtimes = map[string]config.RuntimeHandler{"runc": config.DefaultHandler(), "kata": {RuntimeType: "vm"}}
	got := changedKeys(a, b)
	if !slices.Contains(got, "crio.api.listen") {
		t.Errorf("changedKeys misses crio.api.listen: %v", got)
	}
	if !containsPrefix(got, "crio.runtime.runtimes.kata.") {
		t.Errorf("new handler not reported: %v", got)
	}
	if slices.Contains(got, logLevelKey) {
		t.Error("log_level reported as needing restart")
	}
	if len(changedKeys(a, config.Default())) != 0 {
		t.Error("identical configs differ")
	}
}

func containsPrefix(l []string, p string) bool {
	for _, x := range l {
		if strings.HasPrefix(x, p) {
			return true
		}
	}
	return false
}

// A missing version file (a reboot cleared it) reaches the builder as
// Rebooted; the next start, after the daemon wrote it, is not one.
func TestRebootReachesBuilder(t *testing.T) {
	res := testResult(t)
	var seen []bool
	build := func(_ context.Context, env Env) (Services, error) {
		seen = append(seen, env.Rebooted)
		return Services{}, nil
	}
	for i := range 3 {
		if i == 2 {
			if err := os.Remove(res.Config.VersionFile); err != nil {
				t.Fatal(err)
			}
		}
		d, _ := newTestDaemon(t, Options{Result: res, Build: build})
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := d.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 3 || !seen[0] || seen[1] || !seen[2] {
		t.Errorf("Rebooted = %v, want [true false true]", seen)
	}
}
