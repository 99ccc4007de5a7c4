package streaming

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/nsfile"
	"github.com/crio-appliance/crio/daemon/sandbox"
)

// dialTimeout bounds the connection to the pod's port.
const dialTimeout = 10 * time.Second

// pod finds a ready pod.
func (s *Service) pod(podID string) (*sandbox.Sandbox, error) {
	sb, err := s.opts.Pods.Get(podID)
	if err != nil {
		// The pod kind of "not found" maps to the same gRPC code.
		return nil, fmt.Errorf("%w: %w", container.ErrNotFound, err)
	}
	if !sb.Ready() {
		return nil, fmt.Errorf("%w: pod %s is not ready", container.ErrFailedPrecondition, sb.ID)
	}
	return sb, nil
}

// podNetns returns the pod's pinned network namespace file, or "" for a
// pod on the host's network.
func (s *Service) podNetns(podID string) (string, error) {
	sb, err := s.pod(podID)
	if err != nil {
		return "", err
	}
	return netnsOf(sb)
}

func netnsOf(sb *sandbox.Sandbox) (string, error) {
	hostNet := sb.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
	if hostNet {
		return "", nil
	}
	if sb.NetNS == "" {
		// Never fall back to the host's namespace for a pod that has its
		// own.
		return "", fmt.Errorf("%w: pod %s has no network namespace", container.ErrFailedPrecondition, sb.ID)
	}
	return sb.NetNS, nil
}

func (s *Service) portForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	if port <= 0 || port > math.MaxUint16 {
		return errdefs.Invalid("port", "%d is not a TCP port", port)
	}
	netns, err := s.podNetns(podID)
	if err != nil {
		return err
	}
	conn, err := dialPod(ctx, netns, int(port))
	if err != nil {
		return fmt.Errorf("port-forward to pod %s port %d: %w", podID, port, err)
	}
	defer conn.Close()
	return pipe(ctx, conn, stream)
}

// pipe copies both ways until the pod's side has said all it will (the
// client's stream is then closed by the library), the client's side fails,
// or ctx ends.
func pipe(ctx context.Context, conn *net.TCPConn, stream io.ReadWriteCloser) error {
	fromPod := make(chan error, 1)
	toPod := make(chan error, 1)
	go func() {
		_, err := io.Copy(stream, conn)
		fromPod <- err
	}()
	go func() {
		_, err := io.Copy(conn, stream)
		// The client finished sending (a request, say): let the pod's
		// side see EOF and answer.
		_ = conn.CloseWrite()
		toPod <- err
	}()
	// Closing conn (deferred by the caller) ends both copiers: the reader
	// at once, the writer at its next write.
	for {
		select {
		case err := <-fromPod:
			if errors.Is(err, net.ErrClosed) {
				err = nil
			}
			return err
		case err := <-toPod:
			if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
				return err
			}
			toPod = nil // keep waiting for the pod's answer
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// dialPod connects to 127.0.0.1:port, or [::1]:port when nothing listens
// on IPv4, inside the network namespace at netns ("" for the host's).
// nsfile.Do makes the socket on a thread that enters the namespace and
// then dies, so no other code runs in the pod's namespace; a socket
// belongs to the namespace it was made in for good, so the connection
// works from any thread afterwards.
func dialPod(ctx context.Context, netns string, port int) (*net.TCPConn, error) {
	if netns == "" {
		return dialLoopback(ctx, port)
	}
	var c *net.TCPConn
	err := nsfile.Do(netns, nsfile.Net, func() (err error) {
		c, err = dialLoopback(ctx, port)
		return err
	})
	return c, err // nsfile.Do's own errors name the namespace
}

// dialLoopback dials on the calling thread. Literal addresses: no
// resolver goroutine, so the socket is made right here.
func dialLoopback(ctx context.Context, port int) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	p := strconv.Itoa(port)
	c, err := d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", p))
	if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
		if c6, err6 := d.DialContext(ctx, "tcp6", net.JoinHostPort("::1", p)); err6 == nil {
			return c6.(*net.TCPConn), nil
		}
	}
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}
