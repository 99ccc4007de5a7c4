package metrics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crio-appliance/crio/daemon/config"
)

// Path is where the metrics are served, as in CRI-O.
const Path = "/metrics"

// Options configure Serve; OptionsFromConfig fills them from [crio.metrics].
type Options struct {
	// Host and Port give the TCP address; Socket, when set, a unix socket
	// served beside it (CRI-O serves both).
	Host   string
	Port   int64
	Socket string
	// Cert and Key, both set, serve HTTPS.
	Cert, Key string
	// Collectors are the keys to export; empty means all.
	Collectors []string
	Logger     *slog.Logger
}

// OptionsFromConfig reads [crio.metrics].
func OptionsFromConfig(cfg *config.Config, log *slog.Logger) Options {
	m := cfg.Metrics
	return Options{
		Host: m.MetricsHost, Port: m.MetricsPort, Socket: m.MetricsSocket,
		Cert: m.MetricsCert, Key: m.MetricsKey,
		Collectors: m.MetricsCollectors, Logger: log,
	}
}

// Server is the running metrics endpoint.
type Server struct {
	srv       *http.Server
	listeners []net.Listener
	errc      chan error
}

// omitted are CRI-O's collectors that crio cannot produce truthfully and
// CRI-O's deprecated names: accepted in metrics_collectors, never exported.
var omitted = map[string]bool{
	"containers_seccomp_notifier_count_total": true, // no seccomp notifier
	"resources_stalled_at_stage":              true, // no staged resource cache
	"containers_stopped_monitor_count":        true, // CRI-O's conmon bookkeeping
	// Deprecated in CRI-O in favour of the names crio exports.
	"operations": true, "operations_latency_microseconds_total": true,
	"operations_latency_microseconds": true, "operations_errors": true,
	"image_pulls_by_digest": true, "image_pulls_by_name": true,
	"image_pulls_by_name_skipped": true, "image_pulls_failures": true,
	"image_pulls_successes": true, "image_layer_reuse": true,
	"containers_oom": true,
}

// Registry builds a registry holding the collectors keys selects (all
// when empty). A key CRI-O knows but crio omits is skipped with a warning;
// any other unknown key is an error: the schema lets any string through,
// and a typo must not silently hide a metric.
func Registry(keys []string, log *slog.Logger) (*prometheus.Registry, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	chosen := map[string]bool{}
	for _, k := range keys {
		n := normalize(k)
		if omitted[n] {
			// A CRI-O configuration lists them (crio config of CRI-O
			// prints them all): a migrated node must still start.
			log.Warn("metrics_collectors: crio does not export this CRI-O collector (see the README)", "collector", k)
			continue
		}
		if _, ok := all[n]; !ok {
			known := Keys()
			slices.Sort(known)
			return nil, fmt.Errorf("crio.metrics.metrics_collectors: unknown collector %q (known: %v)", k, known)
		}
		chosen[n] = true
	}
	for k, c := range all {
		if len(keys) > 0 && !chosen[k] {
			continue
		}
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register collector %s: %w", k, err)
		}
	}
	return reg, nil
}

// Serve starts the endpoint; it returns once it listens on every
// configured address, or an error (a port in use fails the daemon's
// start, as the CRI socket does).
func Serve(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	reg, err := Registry(opts.Collectors, opts.Logger)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}))
	s := &Server{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		},
		errc: make(chan error, 2),
	}
	if (opts.Cert == "") != (opts.Key == "") {
		return nil, errors.New("crio.metrics: metrics_cert and metrics_key go together; set both for TLS or neither")
	}
	var tlsConf *tls.Config
	if opts.Cert != "" {
		// Loaded once at start: a bad pair fails the start instead of
		// every scrape.
		pair, err := tls.LoadX509KeyPair(opts.Cert, opts.Key)
		if err != nil {
			return nil, fmt.Errorf("crio.metrics: load metrics_cert/metrics_key: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	addr := net.JoinHostPort(opts.Host, strconv.FormatInt(opts.Port, 10))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("crio.metrics: listen on %s: %w", addr, err)
	}
	s.listeners = append(s.listeners, l)
	if opts.Socket != "" {
		// A stale socket from a crashed run would fail the bind.
		if err := os.Remove(opts.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.Close()
			return nil, fmt.Errorf("crio.metrics: remove stale metrics_socket: %w", err)
		}
		ul, err := net.Listen("unix", opts.Socket)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("crio.metrics: listen on %s: %w", opts.Socket, err)
		}
		s.listeners = append(s.listeners, ul)
	}
	for _, l := range s.listeners {
		if tlsConf != nil {
			l = tls.NewListener(l, tlsConf)
		}
		go func() {
			if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.errc <- fmt.Errorf("metrics server: %w", err)
			}
		}()
	}
	opts.Logger.Info("serving metrics", "address", addr, "socket", opts.Socket, "tls", tlsConf != nil)
	return s, nil
}

// Errors delivers a serve loop's failure.
func (s *Server) Errors() <-chan error { return s.errc }

// Close stops serving; a nil Server is fine.
func (s *Server) Close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}
