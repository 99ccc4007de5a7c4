package listener

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// http2Preface opens every HTTP/2 connection, hence every gRPC connection
// (RFC 9113, section 3.4). No HTTP/1.x request can start with it.
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// DefaultSniffTimeout bounds how long a new connection may stay silent
// before the mux gives up on it. Every legitimate client speaks first.
const DefaultSniffTimeout = 10 * time.Second

// Mux splits one listener into two by looking at the first bytes each client
// sends: the HTTP/2 preface goes to GRPC(), anything else to HTTP(). The
// bytes read while deciding are replayed to the server that gets the
// connection.
type Mux struct {
	root         net.Listener
	sniffTimeout time.Duration
	log          *slog.Logger
	grpc, http   *child

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup // routing goroutines
}

// NewMux wraps root. Call Serve to start routing. A nil logger discards.
func NewMux(root net.Listener, log *slog.Logger) *Mux {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Mux{
		root:         root,
		sniffTimeout: DefaultSniffTimeout,
		log:          log,
		grpc:         newChild(root.Addr()),
		http:         newChild(root.Addr()),
		closed:       make(chan struct{}),
	}
}

// GRPC is the listener of HTTP/2 (gRPC) connections.
func (m *Mux) GRPC() net.Listener { return m.grpc }

// HTTP is the listener of every other connection (HTTP/1.x).
func (m *Mux) HTTP() net.Listener { return m.http }

// Serve accepts connections on the root listener until it is closed. It
// returns nil after Close, otherwise the accept error. Either way both
// child listeners are closed on return, so servers on them stop too.
func (m *Mux) Serve() error {
	defer m.closeChildren()
	var backoff time.Duration
	for {
		conn, err := m.root.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return nil
			default:
			}
			// EMFILE and friends: wait and retry rather than die, as
			// net/http does.
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				m.log.Warn("accept failed; retrying", "error", err, "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.route(conn)
		}()
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// Close closes the root listener (which removes a unix socket file) and both
// children. Connections already handed to a server stay open; stopping them
// is that server's job.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.closed)
		err = m.root.Close()
		m.closeChildren()
	})
	m.wg.Wait()
	return err
}

func (m *Mux) closeChildren() {
	m.grpc.Close()
	m.http.Close()
}

// route reads just enough of conn to tell HTTP/2 from HTTP/1 and hands it on.
// It runs in its own goroutine so one silent client cannot stall Accept.
func (m *Mux) route(conn net.Conn) {
	if err := conn.SetReadDeadline(time.Now().Add(m.sniffTimeout)); err != nil {
		conn.Close()
		return
	}
	buf := make([]byte, len(http2Preface))
	n := 0
	var target *child
	for target == nil {
		k, err := conn.Read(buf[n:])
		n += k
		switch {
		case !bytes.Equal(buf[:n], http2Preface[:n]):
			target = m.http
		case n == len(http2Preface):
			target = m.grpc
		case err != nil:
			// Closed or silent before saying anything useful, such as
			// another daemon's liveness probe of this socket.
			if n > 0 {
				m.log.Debug("dropping connection before protocol was known", "error", err, "bytes", n)
			}
			conn.Close()
			return
		}
	}
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		conn.Close()
		return
	}
	target.deliver(&peekedConn{Conn: conn, peeked: buf[:n]})
}

// child is one side of the mux: a net.Listener fed by route.
type child struct {
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newChild(addr net.Addr) *child {
	return &child{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// deliver blocks until a server accepts conn or the child is closed. The
// channel is unbuffered so that no connection is stranded in it at Close.
func (c *child) deliver(conn net.Conn) {
	select {
	case c.conns <- conn:
	case <-c.closed:
		conn.Close()
	}
}

func (c *child) Accept() (net.Conn, error) {
	select {
	case conn := <-c.conns:
		return conn, nil
	case <-c.closed:
		return nil, net.ErrClosed
	}
}

func (c *child) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *child) Addr() net.Addr { return c.addr }

// peekedConn replays the bytes route consumed before reading on.
type peekedConn struct {
	net.Conn
	peeked []byte
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if len(c.peeked) > 0 {
		n := copy(p, c.peeked)
		c.peeked = c.peeked[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite keeps half-close available (net/http uses it when it can).
func (c *peekedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// Unwrap gives the underlying connection, e.g. to read SO_PEERCRED.
func (c *peekedConn) Unwrap() net.Conn { return c.Conn }
