package oci

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
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
// By default it runs "runc exec" directly; with Config.ExecSyncWithMonitor
// it runs conmon in exec mode instead, as CRI-O does. runc alone needs
// less memory per call (one helper instead of two) and is as fast: see
// the benchmark in exec_bench_test.go.
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
	if r.cfg.ExecSyncWithMonitor {
		return r.execSyncMonitor(ctx, o)
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

// execSyncMonitor runs the exec through conmon's exec mode: conmon runs
// "runtime exec -d", enforces the timeout itself, writes the output to a
// log file in the CRI format, and reports the exit code on the sync pipe.
func (r *Runtime) execSyncMonitor(ctx context.Context, o ExecSyncOptions) (*ExecSyncResult, error) {
	ef, err := newExecFiles(o.Bundle, o.Process)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", o.ID, err)
	}
	defer ef.remove()
	logPath := ef.spec[:len(ef.spec)-len(".json")] + ".log"
	defer os.Remove(logPath)
	// ctx enforces the timeout (and ctx's own deadline) as with runc
	// alone; see -T below.
	ctx, cancel, why := timeoutCtx(ctx, o.Timeout)
	defer cancel()

	syncParent, syncChild, err := socketpair()
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", o.ID, err)
	}
	defer syncParent.Close()
	args := []string{
		"-c", o.ID, "-u", o.ID, "-n", o.ID,
		"-r", r.cfg.RuntimePath,
		"-b", o.Bundle,
		"-p", ef.pid,
		"-e", "--exec-process-spec", ef.spec,
		"-l", logPath,
		// Both streams share the log, and each line gains a CRI prefix
		// of about 40 bytes, so no log size keeps exactly MaxOutput of
		// each stream. conmon empties the file when it fills: past the
		// limit the oldest output is lost, and silently. (One more
		// reason the default is runc alone.)
		"--log-size-max", strconv.Itoa(4*o.MaxOutput + 1<<20),
		"--socket-dir-path", r.cfg.SocketDir,
		"--log-level", "error",
		// conmon stays our child: it can be waited for and killed.
		"--sync",
	}
	if o.Timeout > 0 {
		// A backstop only: conmon counts whole seconds on a timer that
		// can fire up to a second early, so ctx's exact deadline is the
		// one that normally acts.
		secs := int((o.Timeout+time.Second-1)/time.Second) + 1
		args = append(args, "-T", strconv.Itoa(secs))
	}
	args = append(args, r.monitorRuntimeArgs()...)
	cmd := exec.Command(r.cfg.MonitorPath, args...)
	cmd.Dir = o.Bundle
	cmd.Env = append(append([]string{}, r.cfg.MonitorEnv...), "_OCI_SYNCPIPE=3")
	cmd.ExtraFiles = []*os.File{syncChild}
	diag := &capped{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = diag, diag
	cmd.WaitDelay = outputDrain
	h, err := startHelper(cmd, ef.pid, nil)
	syncChild.Close()
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", o.ID, err)
	}
	// conmon reports the exit on the sync pipe and exits; reading the
	// pipe until EOF sees every message however the two interleave.
	msgs := make(chan []byte, 1)
	go func() {
		var all []byte
		buf := make([]byte, 64<<10)
		for {
			n, err := syncParent.Read(buf)
			if n > 0 && len(all) < 1<<20 {
				all = append(all, buf[:n]...)
				all = append(all, '\n')
			}
			if err != nil || n == 0 {
				break
			}
		}
		msgs <- all
	}()
	werr, killed := h.wait(ctx)
	if killed {
		return nil, fmt.Errorf("exec in %s: %w", o.ID, why())
	}
	var last struct {
		ExitCode *int   `json:"exit_code"`
		Message  string `json:"message"`
	}
	for line := range bytes.SplitSeq(<-msgs, []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			_ = json.Unmarshal(line, &last)
		}
	}
	if last.ExitCode == nil {
		// conmon itself exits with the exec's status: only a missing
		// report says it failed.
		return nil, fmt.Errorf("exec in %s: conmon reported no exit code (%v): %s", o.ID, werr, bytes.TrimSpace(diag.buf.Bytes()))
	}
	if *last.ExitCode == -1 {
		if strings.Contains(last.Message, "timed out") {
			// conmon's own timeout, when it fired before ctx's.
			return nil, fmt.Errorf("exec in %s: %w (%s)", o.ID, why(), last.Message)
		}
		// The runtime could not start the process; runc alone reports
		// that as exit status 255 with its error on stderr: do the same.
		msg := []byte(last.Message)
		if len(msg) > o.MaxOutput {
			msg = msg[:o.MaxOutput]
		}
		return &ExecSyncResult{ExitCode: 255, Stderr: msg}, nil
	}
	res := &ExecSyncResult{ExitCode: int32(*last.ExitCode)}
	if err := readCRILog(logPath, o.MaxOutput, res); err != nil {
		return nil, fmt.Errorf("exec in %s: %w", o.ID, err)
	}
	return res, nil
}

// readCRILog splits a log in the kubelet's format ("<time> <stream> <P|F>
// <msg>", P for a line continued in the next record) back into the two
// streams.
func readCRILog(path string, maxOut int, res *ExecSyncResult) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no output at all
	}
	if err != nil {
		return err
	}
	defer f.Close()
	stdout, stderr := &capped{max: maxOut}, &capped{max: maxOut}
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// conmon splits long lines into records far below 64 KiB;
			// a longer one is not conmon's and is skipped.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			continue
		}
		if len(line) > 0 {
			parseCRILine(bytes.TrimSuffix(line, []byte("\n")), stdout, stderr)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	res.Stdout, res.Stderr = stdout.buf.Bytes(), stderr.buf.Bytes()
	res.StdoutTruncated, res.StderrTruncated = stdout.truncated, stderr.truncated
	return nil
}

func parseCRILine(line []byte, stdout, stderr *capped) {
	f := bytes.SplitN(line, []byte(" "), 4)
	if len(f) < 3 {
		return
	}
	var dst *capped
	switch string(f[1]) {
	case "stdout":
		dst = stdout
	case "stderr":
		dst = stderr
	default:
		return
	}
	var msg []byte
	if len(f) == 4 {
		msg = f[3]
	}
	dst.Write(msg)
	if string(f[2]) == "F" {
		dst.Write([]byte{'\n'})
	}
}
