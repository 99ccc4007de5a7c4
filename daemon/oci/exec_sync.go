package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// DefaultMaxExecOutput bounds each of an ExecSync's stdout and stderr: the
// reply must fit in one gRPC message (80 MiB by default) and in the
// daemon's memory while many probes run at once.
const DefaultMaxExecOutput = 16 << 20

// ExecSyncOptions describe one synchronous exec.
type ExecSyncOptions struct {
	ID     string
	Bundle string
	// Process is what to run (see ExecProcess); Terminal must be false.
	Process *rspec.Process
	// Timeout kills the process when it runs longer; 0 means no limit
	// other than ctx.
	Timeout time.Duration
	// MaxOutput bounds each of stdout and stderr; 0 means
	// DefaultMaxExecOutput. Output beyond it is read and dropped, so the
	// process never blocks on a full pipe.
	MaxOutput int
}

// ExecSyncResult is a finished exec.
type ExecSyncResult struct {
	Stdout, Stderr []byte
	// StdoutTruncated and StderrTruncated say that output past MaxOutput
	// was dropped.
	StdoutTruncated, StderrTruncated bool
	ExitCode                         int32
}

// ErrExecTimeout is wrapped (with context.DeadlineExceeded) by the error
// of an exec killed at its timeout.
var ErrExecTimeout = errdefs.New(errdefs.ErrDeadlineExceeded, "exec timed out")

// ExecSync runs a process in a running container and waits for it. At the
// timeout, or when ctx ends, the process (and its process group) is killed
// and the error wraps context.DeadlineExceeded (or ctx's error).
//
// It runs the runtime's exec directly, where CRI-O runs conmon in exec
// mode: one helper instead of two costs less memory per call and is as
// fast (measured with exec_bench_test.go when the choice was made).
func (r *Runtime) ExecSync(ctx context.Context, o ExecSyncOptions) (*ExecSyncResult, error) {
	if o.Process == nil || o.Process.Terminal {
		return nil, errors.New("exec sync: a process without a terminal is required")
	}
	if err := CheckExecArgs(o.Process.Args); err != nil {
		return nil, err
	}
	if o.MaxOutput <= 0 {
		o.MaxOutput = DefaultMaxExecOutput
	}
	return r.execSyncRuntime(ctx, o)
}

// timeoutCtx applies an exec's timeout. The returned check turns the end
// of the derived context into the error to report.
func timeoutCtx(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc, func() error) {
	if timeout <= 0 {
		c, cancel := context.WithCancel(ctx)
		return c, cancel, func() error { return ctx.Err() }
	}
	c, cancel := context.WithTimeout(ctx, timeout)
	return c, cancel, func() error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w after %s: %w", ErrExecTimeout, timeout, context.DeadlineExceeded)
	}
}

// outputDrain bounds the wait for output after the process exited: a
// child it left in the background may hold the pipes open forever.
const outputDrain = 2 * time.Second

func (r *Runtime) execSyncRuntime(ctx context.Context, o ExecSyncOptions) (*ExecSyncResult, error) {
	ef, err := newExecFiles(o.Bundle, o.Process)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", o.ID, err)
	}
	defer ef.remove()
	ctx, cancel, why := timeoutCtx(ctx, o.Timeout)
	defer cancel()

	args := append(r.globalArgs(), "exec", "--process", ef.spec, "--pid-file", ef.pid, o.ID)
	cmd := exec.Command(r.cfg.RuntimePath, args...)
	stdout, stderr := &capped{max: o.MaxOutput}, &capped{max: o.MaxOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = outputDrain
	h, err := startHelper(cmd, ef.pid, nil)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", o.ID, err)
	}
	werr, killed := h.wait(ctx)
	if killed {
		return nil, fmt.Errorf("exec in %s: %w", o.ID, why())
	}
	code, ok := exitCode(werr)
	if !ok && !errors.Is(werr, exec.ErrWaitDelay) {
		return nil, fmt.Errorf("exec in %s: %w", o.ID, werr)
	}
	return &ExecSyncResult{
		Stdout: stdout.buf.Bytes(), Stderr: stderr.buf.Bytes(),
		StdoutTruncated: stdout.truncated, StderrTruncated: stderr.truncated,
		ExitCode: int32(code),
	}, nil
}

// capped keeps the first max bytes written and drops the rest, always
// reporting success so the writer keeps draining.
type capped struct {
	max       int
	buf       bytes.Buffer
	truncated bool
}

func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	if room := c.max - c.buf.Len(); room < len(p) {
		p = p[:max(room, 0)]
		c.truncated = true
	}
	c.buf.Write(p)
	return n, nil
}
