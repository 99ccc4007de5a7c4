package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"
)

// DefaultProfilePort is CRI-O's --profile-port default.
const DefaultProfilePort = 6060

// startProfiler serves net/http/pprof on 127.0.0.1 only: profiles expose
// memory contents and a CPU profile costs CPU, so nothing off the node may
// reach them. Its own mux keeps pprof off every other server.
func startProfiler(port int, log *slog.Logger, report func(error)) (*http.Server, error) {
	if port == 0 {
		port = DefaultProfilePort
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("profiler: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			report(fmt.Errorf("profiler: %w", err))
		}
	}()
	log.Info("serving pprof", "address", l.Addr().String())
	return srv, nil
}
