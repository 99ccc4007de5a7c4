package streaming

import (
	"net/http"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// The stored requests: the checked fields of the RPC, nothing the client
// could change afterwards.
type execReq struct {
	id                         string
	cmd                        []string
	stdin, stdout, stderr, tty bool
}

type attachReq struct {
	id                         string
	stdin, stdout, stderr, tty bool
}

type portForwardReq struct {
	podID string
	ports []int32
}

// handler routes /exec/<token>, /attach/<token> and /portforward/<token>
// (GET or POST, as clients use either) to the library's protocol code,
// with two additions the library lacks: WebSocket exec and attach with
// the v5 protocol (what crictl's and current kubectl's WebSocket clients
// speak), and port-forward with SPDY tunneled through a WebSocket.
func (s *Service) handler() http.Handler {
	mux := http.NewServeMux()
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		mux.HandleFunc(m+" /exec/{token}", s.serveExec)
		mux.HandleFunc(m+" /attach/{token}", s.serveAttach)
		mux.HandleFunc(m+" /portforward/{token}", s.servePortForward)
	}
	return mux
}

func (s *Service) idleTimeout() time.Duration {
	if s.opts.IdleTimeout > 0 {
		return s.opts.IdleTimeout
	}
	return defaultIdleTimeout
}

// defaultIdleTimeout is the library's: an interactive shell may sit idle
// for a long time.
const defaultIdleTimeout = 4 * time.Hour

func (s *Service) serveExec(w http.ResponseWriter, r *http.Request) {
	v, ok := s.tokens.consume(r.PathValue("token"))
	req, isExec := v.(*execReq)
	if !ok || !isExec {
		http.NotFound(w, r)
		return
	}
	opts := &remotecommand.Options{Stdin: req.stdin, Stdout: req.stdout, Stderr: req.stderr, TTY: req.tty}
	ex := &executor{s: s}
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		serveV5(w, r, opts, s.idleTimeout(), func(st *v5Streams) error {
			return ex.ExecInContainer(r.Context(), "", "", req.id, req.cmd, st.stdin, st.stdout, st.stderr, req.tty, st.resize, 0)
		})
		return
	}
	remotecommand.ServeExec(w, r, ex, "", "", req.id, req.cmd, opts,
		s.idleTimeout(), remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func (s *Service) serveAttach(w http.ResponseWriter, r *http.Request) {
	v, ok := s.tokens.consume(r.PathValue("token"))
	req, isAttach := v.(*attachReq)
	if !ok || !isAttach {
		http.NotFound(w, r)
		return
	}
	opts := &remotecommand.Options{Stdin: req.stdin, Stdout: req.stdout, Stderr: req.stderr, TTY: req.tty}
	at := &executor{s: s}
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		serveV5(w, r, opts, s.idleTimeout(), func(st *v5Streams) error {
			return at.AttachContainer(r.Context(), "", "", req.id, st.stdin, st.stdout, st.stderr, req.tty, st.resize)
		})
		return
	}
	remotecommand.ServeAttach(w, r, at, "", "", req.id, opts,
		s.idleTimeout(), remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func (s *Service) servePortForward(w http.ResponseWriter, r *http.Request) {
	v, ok := s.tokens.consume(r.PathValue("token"))
	req, isPF := v.(*portForwardReq)
	if !ok || !isPF {
		http.NotFound(w, r)
		return
	}
	pf := &executor{s: s}
	if wsstream.IsWebSocketRequestWithTunnelingProtocol(r) {
		w, r = tunnel(w, r)
	}
	opts, err := portforward.BuildV4Options(req.ports)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	portforward.ServePortForward(w, r, pf, req.podID, "", opts,
		s.idleTimeout(), remotecommand.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
}
