package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// conmon's attach socket protocol: the socket is SOCK_SEQPACKET; each
// message from conmon is one stream byte followed by up to 8192 bytes of
// output; what the client writes goes to the container's stdin as is.
const (
	attachStdout  = 2
	attachStderr  = 3
	attachBufSize = 8192 + 1
)

// AttachOptions describe an attach to a container's main process.
type AttachOptions struct {
	ID     string
	Bundle string
	// Stdin, when set, is copied to the container's stdin (if it was
	// created with one). Its EOF detaches, unless the container closes
	// its stdin on detach (StdinOnce) or has a terminal, in which case
	// the attach lasts until the output ends.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Terminal       bool
	StdinOnce      bool
	Resize         <-chan TerminalSize
}

// Attach connects the caller's streams to a running container's stdio
// through its conmon. It returns when the container's output ends (it
// exited), when stdin ends (see AttachOptions), or when ctx ends.
func (r *Runtime) Attach(ctx context.Context, o AttachOptions) error {
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: r.AttachSocket(o.ID), Net: "unixpacket"})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("attach to %s: %w", o.ID, ErrMonitorGone)
		}
		return fmt.Errorf("attach to %s: %w", o.ID, err)
	}
	// Closing the connection ends both copiers, whichever way we return.
	defer conn.Close()

	stopResize := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(stopResize)
		wg.Wait()
	}()
	if o.Resize != nil {
		wg.Go(func() {
			for {
				select {
				case sz, ok := <-o.Resize:
					if !ok {
						return
					}
					// A failed resize (conmon just exited) is not worth
					// ending the session for.
					_ = Resize(o.Bundle, sz.Width, sz.Height)
				case <-stopResize:
					return
				}
			}
		})
	}

	outDone := make(chan error, 1)
	go func() { outDone <- demuxAttach(conn, o.Stdout, o.Stderr) }()
	stdinDone := make(chan error, 1)
	if o.Stdin != nil {
		go func() {
			_, err := io.Copy(conn, o.Stdin)
			// Half-close: conmon sees EOF and, for a StdinOnce container,
			// closes the container's stdin.
			_ = conn.CloseWrite()
			stdinDone <- err
		}()
	}
	select {
	case err := <-outDone:
		return attachErr(o.ID, err)
	case <-stdinDone:
		if !o.StdinOnce && !o.Terminal {
			return nil
		}
		select {
		case err := <-outDone:
			return attachErr(o.ID, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

func attachErr(id string, err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("attach to %s: %w", id, err)
}

// demuxAttach copies conmon's messages to the stream their first byte
// names, until conmon closes the connection.
func demuxAttach(conn *net.UnixConn, stdout, stderr io.Writer) error {
	buf := make([]byte, attachBufSize)
	for {
		n, err := conn.Read(buf)
		if n > 1 {
			var dst io.Writer
			switch buf[0] {
			case attachStdout:
				dst = stdout
			case attachStderr:
				dst = stderr
			}
			if dst != nil {
				if _, werr := dst.Write(buf[1:n]); werr != nil {
					return werr
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if n == 0 {
			return nil // EOF on a SOCK_SEQPACKET socket
		}
	}
}
