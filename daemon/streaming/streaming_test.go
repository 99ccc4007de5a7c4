package streaming

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/crio-appliance/crio/daemon/config"
	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/oci"
	"github.com/crio-appliance/crio/daemon/sandbox"
)

func TestTokens(t *testing.T) {
	tk := newTokens()
	now := time.Now()
	tk.now = func() time.Time { return now }
	a, err := tk.insert("a")
	if err != nil || len(a) < 20 {
		t.Fatalf("token %q %v", a, err)
	}
	if v, ok := tk.consume(a); !ok || v != "a" {
		t.Fatalf("consume: %v %v", v, ok)
	}
	if _, ok := tk.consume(a); ok {
		t.Fatal("a token was used twice")
	}
	b, _ := tk.insert("b")
	now = now.Add(tokenTTL + time.Second)
	if _, ok := tk.consume(b); ok {
		t.Fatal("an expired token was accepted")
	}
	tk.max = 3
	for range 3 {
		if _, err := tk.insert("x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tk.insert("y"); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("full cache: %v", err)
	}
	// Expired entries make room.
	now = now.Add(tokenTTL + time.Second)
	if _, err := tk.insert("z"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

func TestStatusOf(t *testing.T) {
	if s := statusOf(nil); s.Status != "Success" {
		t.Fatalf("%+v", s)
	}
	s := statusOf(utilexec.CodeExitError{Err: errors.New("x"), Code: 3})
	if s.Status != "Failure" || s.Reason != "NonZeroExitCode" || s.Details.Causes[0].Message != "3" || s.Details.Causes[0].Type != "ExitCode" {
		t.Fatalf("%+v", s)
	}
	if s := statusOf(errors.New("boom")); s.Reason != "InternalError" || !strings.Contains(s.Message, "boom") {
		t.Fatalf("%+v", s)
	}
}

func TestURLHost(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5": "127.0.0.1:5", "0.0.0.0:5": "127.0.0.1:5", "[::]:5": "[::1]:5", "[fd00::1]:5": "[fd00::1]:5",
	} {
		a, _ := net.ResolveTCPAddr("tcp", in)
		if got := urlHost(a); got != want {
			t.Errorf("urlHost(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestOptionsFromConfig(t *testing.T) {
	cfg := &config.Config{API: config.APIConfig{StreamAddress: "::1", StreamPort: "", StreamIdleTimeout: "90s", StreamEnableTLS: true, StreamTLSCert: "/c", StreamTLSKey: "/k", GRPCMaxSendMsgSize: 1 << 20}}
	o, err := OptionsFromConfig(cfg, nil)
	if err != nil || o.Port != "0" || o.IdleTimeout != 90*time.Second || o.TLS == nil || o.TLS.Cert != "/c" || o.MaxExecOutput != (1<<20-64<<10)/2 {
		t.Fatalf("%+v %v", o, err)
	}
	cfg.API.StreamIdleTimeout = "soon"
	if _, err := OptionsFromConfig(cfg, nil); err == nil {
		t.Fatal("bad idle timeout accepted")
	}
}

// fakes for the request checks.
type fakeCtrs map[string]*container.Container

type fakeRuntime struct{ container.Runtime }

func (fakeRuntime) ExecSync(context.Context, oci.ExecSyncOptions) (*oci.ExecSyncResult, error) {
	return &oci.ExecSyncResult{Stdout: []byte("out"), StdoutTruncated: true}, nil
}
func (fakeRuntime) Exec(context.Context, oci.ExecOptions) (int, error) { return 0, nil }
func (fakeRuntime) Attach(context.Context, oci.AttachOptions) error    { return nil }

func (f fakeCtrs) RuntimeFor(id string) (*container.Container, container.Runtime, error) {
	c, ok := f[id]
	if !ok {
		return nil, nil, fmt.Errorf("%w: container %q", container.ErrNotFound, id)
	}
	return c, fakeRuntime{}, nil
}

type fakePods map[string]*sandbox.Sandbox

func (f fakePods) Get(id string) (*sandbox.Sandbox, error) {
	sb, ok := f[id]
	if !ok {
		return nil, sandbox.ErrNotFound
	}
	return sb, nil
}

func newTestService(t *testing.T) *Service {
	t.Helper()
	bundle := t.TempDir()
	if err := writeSpec(bundle); err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{
		Address: "127.0.0.1", Port: "0", MaxExecOutput: 10,
		Containers: fakeCtrs{
			"run":  {ID: "run", State: container.StateRunning, Bundle: bundle, Config: &runtimeapi.ContainerConfig{}},
			"done": {ID: "done", State: container.StateExited, Bundle: bundle},
		},
		Pods: fakePods{
			"ready":   {ID: "ready", State: sandbox.StateReady, NetNS: "/nonexistent", Config: &runtimeapi.PodSandboxConfig{}},
			"stopped": {ID: "stopped", State: sandbox.StateNotReady},
			"nonet":   {ID: "nonet", State: sandbox.StateReady, Config: &runtimeapi.PodSandboxConfig{}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func writeSpec(dir string) error {
	return os.WriteFile(dir+"/config.json", []byte(`{"process":{"args":["sh"],"cwd":"/"}}`), 0o600)
}

func TestRequestChecks(t *testing.T) {
	s := newTestService(t)
	ctx := context.Background()
	var inv *errdefs.InvalidArgumentError
	if _, err := s.ExecSync(ctx, "run", []string{"a\x00"}, 1); !errors.As(err, &inv) {
		t.Errorf("NUL: %v", err)
	}
	if _, err := s.ExecSync(ctx, "run", []string{"true"}, -1); !errors.As(err, &inv) {
		t.Errorf("negative timeout: %v", err)
	}
	if _, err := s.ExecSync(ctx, "nope", []string{"true"}, 1); !errors.Is(err, container.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	if _, err := s.ExecSync(ctx, "done", []string{"true"}, 1); !errors.Is(err, container.ErrFailedPrecondition) {
		t.Errorf("exited: %v", err)
	}
	res, err := s.ExecSync(ctx, "run", []string{"true"}, 1<<62)
	if err != nil || !strings.Contains(string(res.Stderr), "stdout truncated to its first 10 bytes") {
		t.Errorf("truncation note: %+v %v", res, err)
	}

	if _, err := s.Exec(&runtimeapi.ExecRequest{ContainerId: "run", Cmd: []string{"sh"}}); !errors.As(err, &inv) {
		t.Errorf("no streams: %v", err)
	}
	if _, err := s.Attach(&runtimeapi.AttachRequest{ContainerId: "run", Tty: true, Stderr: true}); !errors.As(err, &inv) {
		t.Errorf("tty and stderr: %v", err)
	}
	if _, err := s.Attach(&runtimeapi.AttachRequest{ContainerId: "done", Stdout: true}); !errors.Is(err, container.ErrFailedPrecondition) {
		t.Errorf("attach to exited: %v", err)
	}
	resp, err := s.Exec(&runtimeapi.ExecRequest{ContainerId: "run", Cmd: []string{"sh"}, Stdout: true})
	if err != nil || !strings.HasPrefix(resp.Url, s.URL()+"/exec/") {
		t.Fatalf("exec URL %v %v", resp, err)
	}
	// The URL works once; a made-up one and a reused one are 404.
	tok := resp.Url[strings.LastIndex(resp.Url, "/")+1:]
	if _, ok := s.tokens.consume(tok); !ok {
		t.Error("token not stored")
	}
	r, err := http.Get(resp.Url)
	if err != nil || r.StatusCode != http.StatusNotFound {
		t.Errorf("reused URL: %v %v", r, err)
	}
	if r, err := http.Get(s.URL() + "/attach/../exec/x"); err != nil || r.StatusCode == http.StatusOK {
		t.Errorf("odd path: %v %v", r, err)
	}

	for id, want := range map[string]error{"nope": container.ErrNotFound, "stopped": container.ErrFailedPrecondition, "nonet": container.ErrFailedPrecondition} {
		if _, err := s.PortForward(&runtimeapi.PortForwardRequest{PodSandboxId: id}); !errors.Is(err, want) {
			t.Errorf("port-forward to %s: %v, want %v", id, err, want)
		}
	}
	if _, err := s.PortForward(&runtimeapi.PortForwardRequest{PodSandboxId: "ready", Port: []int32{0}}); !errors.As(err, &inv) {
		t.Errorf("port 0: %v", err)
	}
	if err := s.portForward(ctx, "ready", 80, nil); err == nil || !strings.Contains(err.Error(), "enter net namespace") {
		t.Errorf("missing netns file: %v", err)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	s := newTestService(t)
	ctx, done := s.streamCtx(context.Background())
	go s.Close()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a stream's context")
	}
	done()
}

func TestExecSlots(t *testing.T) {
	slots := make(chan struct{}, 1)
	release, err := acquire(context.Background(), slots)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := acquire(ctx, slots); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("full pool: %v", err)
	}
	release()
	if release, err = acquire(context.Background(), slots); err != nil {
		t.Fatal(err)
	}
	release()
}
