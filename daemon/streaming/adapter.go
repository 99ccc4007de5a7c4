package streaming

import (
	"context"
	"fmt"
	"io"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/crio-appliance/crio/daemon/oci"
)

// executor is the library's Executor, Attacher and PortForwarder: it runs
// the streams a URL was handed out for. The request was checked when the
// URL was made, but the container may have gone since, so everything is
// looked up again.
type executor struct {
	s *Service
}

var (
	_ remotecommand.Executor    = (*executor)(nil)
	_ remotecommand.Attacher    = (*executor)(nil)
	_ portforward.PortForwarder = (*executor)(nil)
)

// streamCtx ends with the client's connection or at Close, and counts the
// stream as active until done is called.
func (s *Service) streamCtx(ctx context.Context) (context.Context, func()) {
	s.active.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
		s.active.Done()
	}
}

// ExecInContainer runs cmd with the client's streams. A non-zero exit is reported as
// an ExitError, which the library sends to the client as the exit code.
func (a *executor) ExecInContainer(ctx context.Context, _, _, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	s := a.s
	ctx, done := s.streamCtx(ctx)
	defer done()
	if err := checkCmd(cmd); err != nil {
		return err
	}
	c, ex, err := s.running(id)
	if err != nil {
		return err
	}
	p, err := oci.ExecProcess(c.Bundle, cmd, tty)
	if err != nil {
		return err
	}
	release, err := acquire(ctx, s.streamSlots)
	if err != nil {
		return err
	}
	defer release()
	o := oci.ExecOptions{ID: c.ID, Bundle: c.Bundle, Process: p, Resize: resizes(ctx, resize)}
	// The library's unset streams are nil interfaces; keep them nil.
	if in != nil {
		o.Stdin = in
	}
	if out != nil {
		o.Stdout = out
	}
	if errw != nil {
		o.Stderr = errw
	}
	code, err := ex.Exec(ctx, o)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

// AttachContainer connects the client's streams to the container's main process.
func (a *executor) AttachContainer(ctx context.Context, _, _, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	s := a.s
	ctx, done := s.streamCtx(ctx)
	defer done()
	c, ex, err := s.running(id)
	if err != nil {
		return err
	}
	o := oci.AttachOptions{
		ID: c.ID, Bundle: c.Bundle,
		Terminal: c.Config.GetTty(), StdinOnce: c.Config.GetStdinOnce(),
		Resize: resizes(ctx, resize),
	}
	// Input for a container created without stdin would go nowhere, and
	// its end would end the attach: leave it out.
	if in != nil && c.Config.GetStdin() {
		o.Stdin = in
	}
	if out != nil {
		o.Stdout = out
	}
	if errw != nil {
		o.Stderr = errw
	}
	return ex.Attach(ctx, o)
}

// PortForward copies between the client's stream and a connection to
// port inside the pod's network namespace.
func (a *executor) PortForward(ctx context.Context, podID, _ string, port int32, stream io.ReadWriteCloser) error {
	s := a.s
	ctx, done := s.streamCtx(ctx)
	defer done()
	return s.portForward(ctx, podID, port, stream)
}

// resizes converts the library's resize events to oci's, until ctx ends.
func resizes(ctx context.Context, in <-chan remotecommand.TerminalSize) <-chan oci.TerminalSize {
	if in == nil {
		return nil
	}
	out := make(chan oci.TerminalSize)
	go func() {
		defer close(out)
		for {
			select {
			case sz, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- oci.TerminalSize{Width: sz.Width, Height: sz.Height}:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
