package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TerminalSize is a terminal's size in character cells.
type TerminalSize struct {
	Width, Height uint16
}

// ExecOptions describe an exec attached to the caller's streams (kubectl
// exec).
type ExecOptions struct {
	ID     string
	Bundle string
	// Process is what to run (see ExecProcess); Process.Terminal gives it
	// a pseudo-terminal, whose output goes to Stdout.
	Process *rspec.Process
	// Stdin is the process's input; nil gives it none (/dev/null). Its
	// end (EOF) closes the process's stdin.
	Stdin io.Reader
	// Stdout and Stderr receive the output; nil discards it.
	Stdout, Stderr io.Writer
	// Resize delivers terminal size changes (with a terminal only).
	Resize <-chan TerminalSize
}

// Exec runs a process in a running container with its stdio connected to
// the caller's streams and returns its exit code. When ctx ends the process
// (and its process group) is killed and ctx's error returned.
func (r *Runtime) Exec(ctx context.Context, o ExecOptions) (int, error) {
	if o.Process == nil {
		return -1, errors.New("exec: no process")
	}
	if err := CheckExecArgs(o.Process.Args); err != nil {
		return -1, err
	}
	var size *TerminalSize
	if o.Process.Terminal {
		// runc resizes the container's terminal only after the process
		// started, so a process that asks at once (stty size, a shell's
		// first prompt) would see 0x0. The spec's consoleSize is applied
		// before the process runs: take the client's first size for it.
		if size = firstSize(ctx, o.Resize); size != nil {
			p := *o.Process
			p.ConsoleSize = &rspec.Box{Height: uint(size.Height), Width: uint(size.Width)}
			o.Process = &p
		}
	}
	ef, err := newExecFiles(o.Bundle, o.Process)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", o.ID, err)
	}
	defer ef.remove()
	var code int
	if o.Process.Terminal {
		code, err = r.execTerminal(ctx, o, ef, size)
	} else {
		code, err = r.execPipes(ctx, o, ef)
	}
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", o.ID, err)
	}
	return code, nil
}

// execPipes gives runc (and so the process, which inherits them) pipes
// for stdio.
func (r *Runtime) execPipes(ctx context.Context, o ExecOptions, ef execFiles) (int, error) {
	args := append(r.globalArgs(), "exec", "--process", ef.spec, "--pid-file", ef.pid, o.ID)
	cmd := exec.Command(r.cfg.RuntimePath, args...)
	// os/exec copies the output and, with WaitDelay, stops waiting for a
	// background child that keeps the pipes open.
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	cmd.WaitDelay = outputDrain
	var stdinW *os.File
	if o.Stdin != nil {
		// Not cmd.Stdin = o.Stdin: os/exec would make Wait wait for the
		// client's stream to end, which it does not after the process
		// exits.
		pr, pw, err := os.Pipe()
		if err != nil {
			return -1, err
		}
		cmd.Stdin, stdinW = pr, pw
		defer pr.Close()
	}
	h, err := startHelper(cmd, ef.pid, nil)
	if err != nil {
		if stdinW != nil {
			stdinW.Close()
		}
		return -1, err
	}
	if stdinW != nil {
		cmd.Stdin.(*os.File).Close()
		// The copier ends at the client's EOF (closing the process's
		// stdin) or at the first write after stdinW is closed below.
		go func() {
			_, _ = io.Copy(stdinW, o.Stdin)
			stdinW.Close()
		}()
		defer stdinW.Close()
	}
	werr, killed := h.wait(ctx)
	if killed {
		return -1, ctx.Err()
	}
	code, ok := exitCode(werr)
	if !ok && !errors.Is(werr, exec.ErrWaitDelay) {
		return -1, werr
	}
	return code, nil
}

// firstSize waits for a terminal client's first size. Every terminal
// client (kubectl, crictl) sends it at once, but on a loaded node it can
// take a while to arrive; nil when none came within initialSizeWait.
func firstSize(ctx context.Context, resize <-chan TerminalSize) *TerminalSize {
	if resize == nil {
		return nil
	}
	select {
	case sz, ok := <-resize:
		if ok && sz.Width > 0 && sz.Height > 0 {
			return &sz
		}
	case <-time.After(initialSizeWait):
	case <-ctx.Done():
	}
	return nil
}

// initialSizeWait bounds how long an exec with a terminal waits for the
// client's first size before it starts without one.
const initialSizeWait = 2 * time.Second

// execTerminal gives the process a terminal. runc hands a terminal's
// master over a console socket only when it detaches, and a detached
// process's exit status would go to whoever reaps it, not to crio. So runc
// runs attached, on a pseudo-terminal of crio's as its controlling
// terminal: runc allocates the container's own terminal, copies between
// the two (putting crio's side in raw mode), and on SIGWINCH - which the
// kernel sends when crio resizes its side - resizes the container's.
func (r *Runtime) execTerminal(ctx context.Context, o ExecOptions, ef execFiles, size *TerminalSize) (int, error) {
	master, slave, err := openPty()
	if err != nil {
		return -1, err
	}
	defer master.Close()
	// runc copies this terminal's size to the container's on start and on
	// every SIGWINCH: start it with the size the process got.
	if size != nil {
		_ = setWinsize(master, *size)
	}
	args := append(r.globalArgs(), "exec", "--tty", "--process", ef.spec, "--pid-file", ef.pid, o.ID)
	cmd := exec.Command(r.cfg.RuntimePath, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	h, err := startHelper(cmd, ef.pid, &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0})
	slave.Close() // runc holds it now; the master reads EIO once runc is gone
	if err != nil {
		return -1, err
	}

	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		dst := o.Stdout
		if dst == nil {
			dst = io.Discard
		}
		// Ends with EIO once runc exited.
		_, _ = io.Copy(dst, master)
	}()
	if o.Stdin != nil {
		// Ends at the client's EOF, or at its first write after the
		// master is closed below.
		go func() { _, _ = io.Copy(master, o.Stdin) }()
	}
	stopResize := make(chan struct{})
	var resizers sync.WaitGroup
	if o.Resize != nil {
		resizers.Go(func() {
			for {
				select {
				case sz, ok := <-o.Resize:
					if !ok {
						return
					}
					_ = setWinsize(master, sz)
				case <-stopResize:
					return
				}
			}
		})
	}
	werr, killed := h.wait(ctx)
	close(stopResize)
	resizers.Wait()
	select {
	case <-outDone:
	case <-time.After(outputDrain):
	}
	master.Close()
	if killed {
		return -1, ctx.Err()
	}
	code, ok := exitCode(werr)
	if !ok {
		return -1, werr
	}
	return code, nil
}

// openPty opens a new pseudo-terminal pair. The master is non-blocking so
// that Close wakes a reader.
func openPty() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open terminal: %w", err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("unlock terminal: %w", err)
	}
	// TIOCGPTPEER opens the slave through the master, immune to a
	// /dev/pts path being swapped.
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		unix.Close(m)
		return nil, nil, fmt.Errorf("open terminal peer: %w", errno)
	}
	return os.NewFile(uintptr(m), "pty-master"), os.NewFile(s, "pty-slave"), nil
}

// setWinsize resizes a terminal without putting its fd in blocking mode
// (as File.Fd would).
func setWinsize(f *os.File, sz TerminalSize) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
	})
	if err != nil {
		return err
	}
	return ierr
}
