package streaming

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"k8s.io/klog/v2"
)

// server is the HTTP side: a listener and an http.Server. The URL carries
// the port actually bound, so port "0" works.
type server struct {
	l       net.Listener
	http    *http.Server
	baseURL *url.URL
	done    chan struct{}
}

func listen(opts Options, h http.Handler, log *slog.Logger) (*server, error) {
	port, err := strconv.ParseUint(opts.Port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("streaming server: stream_port %q is not a port number", opts.Port)
	}
	var tlsConf *tls.Config
	if opts.TLS != nil {
		if tlsConf, err = loadTLS(*opts.TLS); err != nil {
			return nil, err
		}
	}
	addr := net.JoinHostPort(opts.Address, strconv.FormatUint(port, 10))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	base := &url.URL{Scheme: "http", Host: urlHost(l.Addr().(*net.TCPAddr))}
	if tlsConf != nil {
		// HTTP/1.1 only (no "h2" in NextProtos): SPDY and WebSocket
		// upgrade an HTTP/1.1 connection.
		base.Scheme = "https"
		l = tls.NewListener(l, tlsConf)
	}
	// The library logs through klog; send that to the daemon's log.
	klog.SetSlogLogger(log)
	s := &server{
		l: l, baseURL: base, done: make(chan struct{}),
		http: &http.Server{
			Handler: h,
			// Headers arrive at once from a real client; a slow one only
			// holds a connection.
			ReadHeaderTimeout: 10 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("streaming server stopped", "error", err)
		}
	}()
	return s, nil
}

// url is the URL of one stream.
func (s *server) url(kind, token string) string {
	return s.baseURL.JoinPath(kind, token).String()
}

// urlHost is the host:port clients are told. A wildcard address is not
// one they can connect to; the loopback address of its family is, from
// the node (where the kubelet, which proxies streams, runs).
func urlHost(a *net.TCPAddr) string {
	ip := a.IP
	if ip.IsUnspecified() {
		if ip.To4() != nil {
			ip = net.IPv4(127, 0, 0, 1)
		} else {
			ip = net.IPv6loopback
		}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}

// close stops accepting and closes the connections http.Server knows;
// hijacked ones (every stream) end through the service's context.
func (s *server) close() error {
	err := s.http.Close()
	<-s.done
	return err
}

// loadTLS reads the certificate and key, and the client CA if any.
func loadTLS(f TLSFiles) (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("streaming server: stream_enable_tls needs stream_tls_cert and stream_tls_key")
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("streaming server: stream_tls_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("streaming server: stream_tls_ca %s holds no PEM certificate", f.CA)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}
