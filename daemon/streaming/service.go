package streaming

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/oci"
	"github.com/crio-appliance/crio/daemon/sandbox"
)

// Containers finds a container and its runtime handler;
// *container.Service implements it.
type Containers interface {
	RuntimeFor(id string) (*container.Container, container.Runtime, error)
}

// Pods finds a pod; *sandbox.Service implements it.
type Pods interface {
	Get(id string) (*sandbox.Sandbox, error)
}

// Execer is what exec and attach need of a runtime handler beyond the
// container lifecycle; *oci.Runtime implements it.
type Execer interface {
	ExecSync(ctx context.Context, o oci.ExecSyncOptions) (*oci.ExecSyncResult, error)
	Exec(ctx context.Context, o oci.ExecOptions) (int, error)
	Attach(ctx context.Context, o oci.AttachOptions) error
}

var _ Execer = (*oci.Runtime)(nil)

// Options configure a Service.
type Options struct {
	// Address and Port are where the streaming server listens
	// (crio.api.stream_address, stream_port); port "0" picks a free one.
	Address, Port string
	// TLS, when set, serves HTTPS (stream_enable_tls).
	TLS *TLSFiles
	// IdleTimeout closes a streaming connection with no traffic for that
	// long (stream_idle_timeout); 0 means the library's default (4h).
	IdleTimeout time.Duration
	Containers  Containers
	Pods        Pods
	// MaxExecOutput bounds each of ExecSync's stdout and stderr; 0 means
	// DefaultMaxExecOutput.
	MaxExecOutput int
	// MaxConcurrentExecSyncs bounds the ExecSyncs running at once (each a
	// runc process of a few MiB and up to twice MaxExecOutput of buffered
	// output); 0 means 64. More wait for a slot.
	MaxConcurrentExecSyncs int
	// MaxConcurrentStreamExecs bounds the streaming execs running at once;
	// 0 means 256. A pool of their own: idle interactive shells must not
	// starve the probes.
	MaxConcurrentStreamExecs int
	Logger                   *slog.Logger
}

// TLSFiles are the streaming server's certificate and key, and the CA
// that client certificates must chain to ("" accepts any client).
type TLSFiles struct {
	Cert, Key, CA string
}

// DefaultMaxExecOutput bounds each of ExecSync's stdout and stderr so
// that both, with the truncation notes, fit in 16 MiB: the largest message
// the kubelet's CRI client accepts. A larger reply would fail there as a
// whole instead of arriving truncated.
const DefaultMaxExecOutput = 8<<20 - 4<<10

// Service answers ExecSync and serves the streams.
type Service struct {
	opts   Options
	log    *slog.Logger
	tokens *tokens
	srv    *server

	// ctx ends at Close: every running exec, attach and port-forward
	// derives from it, so Close ends them all.
	ctx    context.Context
	cancel context.CancelFunc
	active sync.WaitGroup
	// syncSlots and streamSlots are semaphores (see Options).
	syncSlots, streamSlots chan struct{}
}

// New starts listening and serving the streaming server.
func New(opts Options) (*Service, error) {
	if opts.Containers == nil || opts.Pods == nil {
		return nil, errors.New("streaming: containers and pods are required")
	}
	if opts.MaxExecOutput <= 0 {
		opts.MaxExecOutput = DefaultMaxExecOutput
	}
	if opts.MaxConcurrentExecSyncs <= 0 {
		opts.MaxConcurrentExecSyncs = 64
	}
	if opts.MaxConcurrentStreamExecs <= 0 {
		opts.MaxConcurrentStreamExecs = 256
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		opts: opts, log: log.With("component", "streaming"),
		syncSlots:   make(chan struct{}, opts.MaxConcurrentExecSyncs),
		streamSlots: make(chan struct{}, opts.MaxConcurrentStreamExecs),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.tokens = newTokens()
	srv, err := listen(opts, s.handler(), s.log)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.srv = srv
	s.log.Info("streaming server listening", "url", srv.baseURL.String())
	return s, nil
}

// URL is the streaming server's base URL.
func (s *Service) URL() string { return s.srv.baseURL.String() }

// closeWait bounds the wait at Close for streams to notice their end.
const closeWait = 10 * time.Second

// Close stops the server, ends every stream (execs are killed) and waits
// for them, up to a bound.
func (s *Service) Close() error {
	err := s.srv.close()
	s.cancel()
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait):
		s.log.Warn("streams still ending at close")
	}
	return err
}

// acquire takes a slot of a pool, waiting while all are taken.
func acquire(ctx context.Context, slots chan struct{}) (func(), error) {
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for one of %d exec slots: %w", cap(slots), ctx.Err())
	}
}

// running finds a running container and its runtime's exec side.
func (s *Service) running(id string) (*container.Container, Execer, error) {
	c, rt, err := s.opts.Containers.RuntimeFor(id)
	if err != nil {
		return nil, nil, err
	}
	if c.State != container.StateRunning {
		return nil, nil, fmt.Errorf("%w: container %s is %s, not running", container.ErrFailedPrecondition, c.ID, c.State)
	}
	ex, ok := rt.(Execer)
	if !ok {
		return nil, nil, fmt.Errorf("%w: the runtime handler of container %s cannot exec", container.ErrUnimplemented, c.ID)
	}
	return c, ex, nil
}

// checkCmd maps a command execve cannot take to InvalidArgument.
func checkCmd(cmd []string) error {
	if err := oci.CheckExecArgs(cmd); err != nil {
		return errdefs.Invalid("cmd", "%v", err)
	}
	return nil
}

// ExecSyncResult is ExecSync's answer. The output notes a truncation at
// the end of stderr, so that someone reading a probe's output learns it.
type ExecSyncResult = oci.ExecSyncResult

// maxTimeoutSeconds is the largest timeout that fits a time.Duration; a
// larger one means "no timeout" in effect and is treated as such.
const maxTimeoutSeconds = math.MaxInt64 / int64(time.Second)

// ExecSync runs cmd in a running container and returns its output and
// exit code. timeoutSeconds 0 means no timeout; at the timeout the process
// is killed and the error wraps context.DeadlineExceeded.
func (s *Service) ExecSync(ctx context.Context, id string, cmd []string, timeoutSeconds int64) (*ExecSyncResult, error) {
	if err := checkCmd(cmd); err != nil {
		return nil, err
	}
	if timeoutSeconds < 0 {
		return nil, errdefs.Invalid("timeout", "%d is negative", timeoutSeconds)
	}
	timeout := time.Duration(0)
	if timeoutSeconds < maxTimeoutSeconds {
		timeout = time.Duration(timeoutSeconds) * time.Second
	}
	c, ex, err := s.running(id)
	if err != nil {
		return nil, err
	}
	p, err := oci.ExecProcess(c.Bundle, cmd, false)
	if err != nil {
		return nil, err
	}
	release, err := acquire(ctx, s.syncSlots)
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := ex.ExecSync(ctx, oci.ExecSyncOptions{
		ID: c.ID, Bundle: c.Bundle, Process: p, Timeout: timeout, MaxOutput: s.opts.MaxExecOutput,
	})
	if err != nil {
		return nil, err
	}
	for _, t := range []struct {
		name string
		cut  bool
	}{{"stdout", res.StdoutTruncated}, {"stderr", res.StderrTruncated}} {
		if t.cut {
			res.Stderr = fmt.Appendf(res.Stderr, "\n[crio: %s truncated to its first %d bytes]\n", t.name, s.opts.MaxExecOutput)
			s.log.Warn("exec output truncated", "container", c.ID, "stream", t.name, "limit", s.opts.MaxExecOutput)
		}
	}
	return res, nil
}

// Exec checks an exec request and returns the URL to stream it from.
func (s *Service) Exec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if err := checkCmd(req.GetCmd()); err != nil {
		return nil, err
	}
	if err := checkStreams(req.GetTty(), req.GetStdin(), req.GetStdout(), req.GetStderr()); err != nil {
		return nil, err
	}
	c, _, err := s.running(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	tok, err := s.tokens.insert(&execReq{
		id: c.ID, cmd: append([]string(nil), req.GetCmd()...),
		stdin: req.GetStdin(), stdout: req.GetStdout(), stderr: req.GetStderr(), tty: req.GetTty(),
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecResponse{Url: s.srv.url("exec", tok)}, nil
}

// Attach checks an attach request and returns the URL to stream it from.
func (s *Service) Attach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if err := checkStreams(req.GetTty(), req.GetStdin(), req.GetStdout(), req.GetStderr()); err != nil {
		return nil, err
	}
	c, _, err := s.running(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	tok, err := s.tokens.insert(&attachReq{
		id: c.ID, stdin: req.GetStdin(), stdout: req.GetStdout(), stderr: req.GetStderr(), tty: req.GetTty(),
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.AttachResponse{Url: s.srv.url("attach", tok)}, nil
}

// PortForward checks a port-forward request and returns the URL to stream
// it from. The ports come with the stream, each checked there.
func (s *Service) PortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	for i, p := range req.GetPort() {
		if p <= 0 || p > math.MaxUint16 {
			return nil, errdefs.Invalid(fmt.Sprintf("port[%d]", i), "%d is not a TCP port", p)
		}
	}
	sb, err := s.pod(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if _, err := netnsOf(sb); err != nil {
		return nil, err
	}
	tok, err := s.tokens.insert(&portForwardReq{podID: sb.ID, ports: append([]int32(nil), req.GetPort()...)})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PortForwardResponse{Url: s.srv.url("portforward", tok)}, nil
}

func checkStreams(tty, stdin, stdout, stderr bool) error {
	if tty && stderr {
		return errdefs.Invalid("stderr", "a terminal has no separate stderr (tty and stderr are both set)")
	}
	if !stdin && !stdout && !stderr {
		return errdefs.Invalid("stdin", "none of stdin, stdout and stderr is set")
	}
	return nil
}
