package streaming

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/wsstream"
	utilexec "k8s.io/utils/exec"
)

// WebSocket exec and attach, protocol v5.channel.k8s.io: each message is
// a channel byte (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize) and
// data; v5 adds a CLOSE message (255, channel) by which the client ends
// its stdin. The final status goes to the error channel as JSON, as in v4.
// The library's server stops at v4, which today's WebSocket clients
// (client-go, so crictl and kubectl) no longer offer.
const v5Protocol = "v5.channel.k8s.io"

const (
	chStdin = iota
	chStdout
	chStderr
	chError
	chResize
)

type v5Streams struct {
	stdin          io.Reader
	stdout, stderr io.WriteCloser
	resize         <-chan remotecommand.TerminalSize
}

// status is the JSON the client decodes as a Kubernetes Status.
type status struct {
	Status  string         `json:"status,omitempty"`
	Message string         `json:"message,omitempty"`
	Reason  string         `json:"reason,omitempty"`
	Details *statusDetails `json:"details,omitempty"`
	Code    int32          `json:"code,omitempty"`
}

type statusDetails struct {
	Causes []statusCause `json:"causes,omitempty"`
}

type statusCause struct {
	Type    string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

func serveV5(w http.ResponseWriter, r *http.Request, opts *remotecommand.Options, idle time.Duration, run func(*v5Streams) error) {
	channel := func(on bool, kind wsstream.ChannelType) wsstream.ChannelType {
		if on {
			return kind
		}
		return wsstream.IgnoreChannel
	}
	channels := []wsstream.ChannelType{
		chStdin:  channel(opts.Stdin, wsstream.ReadChannel),
		chStdout: channel(opts.Stdout, wsstream.WriteChannel),
		chStderr: channel(opts.Stderr, wsstream.WriteChannel),
		chError:  wsstream.WriteChannel,
		chResize: channel(opts.TTY, wsstream.ReadChannel),
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{v5Protocol: {Binary: true, Channels: channels}})
	conn.SetIdleTimeout(idle)
	_, streams, err := conn.Open(w, r)
	if err != nil {
		// Open has answered the client.
		return
	}
	defer conn.Close()
	// An empty message on the first writable channel tells the client the
	// streams are up (the library does the same).
	switch {
	case opts.Stdout:
		streams[chStdout].Write(nil)
	case opts.Stderr:
		streams[chStderr].Write(nil)
	default:
		streams[chError].Write(nil)
	}
	st := &v5Streams{}
	if opts.Stdin {
		st.stdin = streams[chStdin]
	}
	if opts.Stdout {
		st.stdout = streams[chStdout]
	}
	if opts.Stderr {
		st.stderr = streams[chStderr]
	}
	if opts.TTY {
		ch := make(chan remotecommand.TerminalSize)
		st.resize = ch
		go decodeResizes(r, streams[chResize], ch)
	}
	err = run(st)
	b, _ := json.Marshal(statusOf(err))
	streams[chError].Write(b)
}

// decodeResizes feeds the resize channel until the stream or the request
// ends.
func decodeResizes(r *http.Request, stream io.Reader, ch chan<- remotecommand.TerminalSize) {
	defer close(ch)
	dec := json.NewDecoder(io.LimitReader(stream, 1<<20))
	for {
		var sz remotecommand.TerminalSize
		if err := dec.Decode(&sz); err != nil {
			return
		}
		select {
		case ch <- sz:
		case <-r.Context().Done():
			return
		}
	}
}

// statusOf is the final status of an exec or attach.
func statusOf(err error) status {
	if err == nil {
		return status{Status: "Success"}
	}
	var ee utilexec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return status{
			Status: "Failure", Reason: remotecommand.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", err),
			Details: &statusDetails{Causes: []statusCause{{Type: remotecommand.ExitCodeCauseType, Message: strconv.Itoa(ee.ExitStatus())}}},
		}
	}
	return status{Status: "Failure", Reason: "InternalError", Code: http.StatusInternalServerError,
		Message: fmt.Sprintf("Internal error occurred: %v", err)}
}

// Port-forward through a WebSocket: the client (client-go's
// SPDY-over-WebSocket dialer) asks for the subprotocol
// "SPDY/3.1+portforward.k8s.io" and then speaks plain SPDY port-forward
// inside binary WebSocket messages. tunnel hands the library's SPDY
// code a request that looks like a SPDY upgrade and a ResponseWriter
// whose 101 answer upgrades the WebSocket instead and whose Hijack
// returns the tunnel as a net.Conn.
func tunnel(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request) {
	var offered []string
	for _, p := range websocket.Subprotocols(r) {
		if rest, ok := strings.CutPrefix(p, tunnelPrefix); ok {
			offered = append(offered, rest)
		}
	}
	r2 := r.Clone(r.Context())
	r2.Header.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	r2.Header.Set(httpstream.HeaderUpgrade, "SPDY/3.1")
	r2.Header.Del(httpstream.HeaderProtocolVersion)
	for _, p := range offered {
		r2.Header.Add(httpstream.HeaderProtocolVersion, p)
	}
	return &tunnelWriter{w: w, r: r, header: http.Header{}}, r2
}

const tunnelPrefix = "SPDY/3.1+"

type tunnelWriter struct {
	w      http.ResponseWriter
	r      *http.Request
	header http.Header
	ws     *websocket.Conn
	wrote  bool
}

func (t *tunnelWriter) Header() http.Header { return t.header }

// WriteHeader answers 101 with the WebSocket upgrade, naming the
// subprotocol the SPDY handshake chose; any other answer goes out as is.
func (t *tunnelWriter) WriteHeader(code int) {
	if t.wrote {
		return
	}
	t.wrote = true
	if code != http.StatusSwitchingProtocols {
		for k, v := range t.header {
			t.w.Header()[k] = v
		}
		t.w.WriteHeader(code)
		return
	}
	up := websocket.Upgrader{
		Subprotocols:     []string{tunnelPrefix + t.header.Get(httpstream.HeaderProtocolVersion)},
		HandshakeTimeout: 10 * time.Second,
	}
	ws, err := up.Upgrade(t.w, t.r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	t.ws = ws
}

func (t *tunnelWriter) Write(b []byte) (int, error) {
	if !t.wrote {
		t.WriteHeader(http.StatusOK)
	}
	if t.ws != nil {
		return 0, errors.New("write after upgrade")
	}
	return t.w.Write(b)
}

func (t *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if t.ws == nil {
		return nil, nil, errors.New("websocket upgrade failed")
	}
	c := &tunnelConn{ws: t.ws}
	return c, bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)), nil
}

// tunnelConn is a byte stream over binary WebSocket messages.
type tunnelConn struct {
	ws  *websocket.Conn
	rmu sync.Mutex
	cur io.Reader
	wmu sync.Mutex
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.cur == nil {
			typ, rd, err := c.ws.NextReader()
			if err != nil {
				if websocket.IsCloseError(err, websocket.CloseNormalClosure) {
					return 0, io.EOF
				}
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				continue
			}
			c.cur = rd
		}
		n, err := c.cur.Read(p)
		if errors.Is(err, io.EOF) {
			c.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// Write sends one message; gorilla allows one writer at a time.
func (c *tunnelConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *tunnelConn) Close() error                       { return c.ws.Close() }
func (c *tunnelConn) LocalAddr() net.Addr                { return c.ws.LocalAddr() }
func (c *tunnelConn) RemoteAddr() net.Addr               { return c.ws.RemoteAddr() }
func (c *tunnelConn) SetDeadline(t time.Time) error      { return c.ws.NetConn().SetDeadline(t) }
func (c *tunnelConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *tunnelConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }
