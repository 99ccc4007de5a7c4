// Package listener opens crio's unix socket and splits it between the CRI
// gRPC server and the small HTTP/1.1 API that the kubelet's cAdvisor and
// `crio status` use. CRI-O serves both on one socket, so clients expect that.
package listener

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// SocketMode is the permission of the socket file: root and its group may
// connect, nobody else (the socket controls every container on the node).
const SocketMode fs.FileMode = 0o660

// ErrInUse says that a live process already answers on the socket.
var ErrInUse = errors.New("socket in use")

// probeTimeout bounds the liveness probe of an existing socket. A live
// daemon's kernel backlog accepts at once, so this is only reached when
// the peer is wedged, which also counts as "in use".
const probeTimeout = time.Second

// Listen opens a unix socket at path for serving. The parent directory is
// created. An existing socket file is probed first: if something answers, the
// start is refused with an error wrapping ErrInUse (two daemons must never
// share a socket); if nothing answers, it is a leftover of a crash and is
// replaced. A path that exists and is not a socket is never removed.
//
// Closing the returned listener removes the socket file.
func Listen(path string) (*net.UnixListener, error) {
	if path == "" {
		return nil, errors.New("listen: empty socket path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen: create socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, SocketMode); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen: set mode of %s: %w", path, err)
	}
	return l, nil
}

// removeStale removes path if it is a socket nobody answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("listen: %s exists and is not a socket (%s); refusing to replace it", path, fi.Mode().Type())
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	switch {
	case err == nil:
		conn.Close()
		return fmt.Errorf("%w: a process is already serving on %s (is another crio running?)", ErrInUse, path)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, fs.ErrNotExist):
		// Nobody listens: a leftover of a daemon that did not stop cleanly.
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s accepts connections but does not answer in %s (is another crio running?)", ErrInUse, path, probeTimeout)
	default:
		return fmt.Errorf("listen: probe existing socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("listen: remove stale socket: %w", err)
	}
	return nil
}
