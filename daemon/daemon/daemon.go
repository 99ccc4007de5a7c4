// Package daemon runs crio: it prepares the directories of a loaded
// configuration, serves the CRI gRPC API and the HTTP API on one unix
// socket, reloads the configuration on SIGHUP and stops gracefully on
// SIGTERM or SIGINT. It wires the other packages together and holds no
// CRI logic itself.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/config"
	"github.com/crio-appliance/crio/daemon/events"
	"github.com/crio-appliance/crio/daemon/httpapi"
	"github.com/crio-appliance/crio/daemon/listener"
	"github.com/crio-appliance/crio/daemon/logging"
	"github.com/crio-appliance/crio/daemon/metrics"
	"github.com/crio-appliance/crio/daemon/server"
	"github.com/crio-appliance/crio/daemon/version"
)

// DefaultStopTimeout bounds a graceful stop. In-flight RPCs get this long to
// finish before their connections are cut.
const DefaultStopTimeout = 10 * time.Second

// Services are the CRI implementations the daemon serves. Zero fields mean
// "not implemented yet": Unimplemented RPCs, network not ready, no container
// known to the HTTP API.
type Services struct {
	Image      runtimeapi.ImageServiceServer
	Network    server.NetworkReadiness
	Sandbox    server.SandboxService
	Container  server.ContainerService
	Containers httpapi.Containers
	// Events feeds GetContainerEvents (crio.runtime.enable_pod_events);
	// nil leaves the RPC Unimplemented. Stop closes it first.
	Events *events.Broadcaster
	// Stats serves the stats and metrics RPCs; Resources the resource
	// updates. Zero values leave them Unimplemented.
	Stats     server.StatsService
	Resources server.ResourceServices
	// Streams serves ExecSync, Exec, Attach and PortForward; nil leaves
	// them Unimplemented.
	Streams server.StreamService
	// Reload, on SIGHUP, makes the services re-read what they cache from
	// files outside crio's configuration (registries.conf and its
	// drop-ins); nil does nothing.
	Reload func()
	// Close releases what the services hold (storage locks, watchers). It
	// runs at stop after both servers have stopped; the clean-shutdown
	// marker is written only when it succeeds.
	Close func(ctx context.Context) error
}

// Env is what a ServiceBuilder gets at start.
type Env struct {
	Config *config.Config
	Logger *slog.Logger
	// PreviousShutdownClean says whether the marker at clean_shutdown_file
	// was present, i.e. the last run stopped gracefully. It is false on the
	// very first start too; storage code uses it to decide on a repair.
	PreviousShutdownClean bool
	// Rebooted says that version_file (on a tmpfs that a reboot clears)
	// was missing at start: every container and pod namespace from before
	// is gone, and crio.internal_wipe decides what happens to their
	// records. It is true on the very first start too, when there are none.
	Rebooted bool
}

// ServiceBuilder constructs the services from the configuration. It runs
// once per start, after the socket is secured (so a second daemon never
// touches storage) and before the socket is served.
type ServiceBuilder func(ctx context.Context, env Env) (Services, error)

// Options configure a Daemon.
type Options struct {
	// Result is the loaded configuration to run with.
	Result *config.Result
	// Sources are re-read on Reload.
	Sources config.Sources
	// Load reloads Sources; nil means config.Load.
	Load func(config.Sources) (*config.Result, error)
	// Level is the logger's level, set from log_level at start and reload.
	Level *slog.LevelVar
	// Logger is the daemon's logger; nil discards.
	Logger *slog.Logger
	// Build constructs the services; nil serves none.
	Build ServiceBuilder
	// StopTimeout bounds Stop; zero means DefaultStopTimeout.
	StopTimeout time.Duration
	// Profile serves pprof on 127.0.0.1:ProfilePort (--profile,
	// --profile-port); off by default.
	Profile     bool
	ProfilePort int
}

// Daemon is one running crio. Create it with New, then Start, then Stop;
// or call Run, which does all three and handles signals.
type Daemon struct {
	opts Options
	log  *slog.Logger

	mu      sync.RWMutex
	current *config.Result // what /config shows; only log_level changes on reload

	mux      *listener.Mux
	grpc     *grpc.Server
	http     *http.Server
	services Services
	metrics  *metrics.Server // nil unless enable_metrics
	profile  *http.Server    // nil unless --profile
	errc     chan error      // a server that failed while running
	stopOnce sync.Once
	stopErr  error
}

// New checks opts and returns a Daemon that has not started.
func New(opts Options) (*Daemon, error) {
	takeSystemdEnv() // before any child process can inherit it
	if opts.Result == nil || opts.Result.Config == nil {
		return nil, errors.New("daemon: no configuration")
	}
	if opts.Load == nil {
		opts.Load = config.Load
	}
	if opts.Level == nil {
		opts.Level = new(slog.LevelVar)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	lvl, err := logging.ParseLevel(opts.Result.Config.Runtime.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("daemon: crio.runtime.log_level: %w", err)
	}
	opts.Level.Set(lvl)
	return &Daemon{opts: opts, log: opts.Logger, current: opts.Result, errc: make(chan error, 2)}, nil
}

// Config returns the running configuration.
func (d *Daemon) Config() *config.Result {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.current
}

// Errors delivers the error of a server that stopped on its own while
// running (not because of Stop).
func (d *Daemon) Errors() <-chan error { return d.errc }

// Start prepares the host and begins serving. On error everything already
// set up is torn down again.
func (d *Daemon) Start(ctx context.Context) (err error) {
	cfg := d.Config().Config
	if err := createDirs(cfg); err != nil {
		return err
	}
	// The socket first: a second daemon must fail before it touches the
	// marker, the version file or storage.
	l, err := listener.Listen(cfg.API.Listen)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	clean, err := consumeCleanShutdownMarker(cfg.CleanShutdownFile)
	if err != nil {
		return err
	}
	d.log.Debug("previous shutdown", "clean", clean, "marker", cfg.CleanShutdownFile)
	// Read before writeVersionFiles replaces it below.
	rebooted := versionFileMissing(cfg.VersionFile)
	if rebooted {
		d.log.Info("version file missing: first start since boot", "version_file", cfg.VersionFile)
	}

	if d.opts.Build != nil {
		d.services, err = d.opts.Build(ctx, Env{Config: cfg, Logger: d.log, PreviousShutdownClean: clean, Rebooted: rebooted})
		if err != nil {
			return fmt.Errorf("start services: %w", err)
		}
		defer func() {
			if err != nil && d.services.Close != nil {
				d.services.Close(context.WithoutCancel(ctx))
			}
		}()
	}

	var evts server.EventSource // a nil *Broadcaster must stay a nil interface
	if d.services.Events != nil {
		evts = d.services.Events
	}
	d.grpc = server.New(server.Options{
		Version:        version.Version,
		CgroupManager:  cfg.Runtime.CgroupManager,
		Network:        d.services.Network,
		Sandbox:        d.services.Sandbox,
		Containers:     d.services.Container,
		Image:          d.services.Image,
		Events:         evts,
		Stats:          d.services.Stats,
		Resources:      d.services.Resources,
		Streams:        d.services.Streams,
		MaxSendMsgSize: clampInt(cfg.API.GRPCMaxSendMsgSize),
		MaxRecvMsgSize: clampInt(cfg.API.GRPCMaxRecvMsgSize),
		Logger:         d.log,
	})
	d.http = &http.Server{
		Handler:           httpapi.New(httpapi.Options{Config: d.Config, Containers: d.services.Containers, Logger: d.log}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
	if cfg.Metrics.EnableMetrics {
		d.metrics, err = metrics.Serve(metrics.OptionsFromConfig(cfg, d.log))
		if err != nil {
			d.shutdownServers(ctx)
			return err
		}
		go func() {
			if err, ok := <-d.metrics.Errors(); ok {
				d.report(err)
			}
		}()
	}
	if d.opts.Profile {
		if d.profile, err = startProfiler(d.opts.ProfilePort, d.log, d.report); err != nil {
			d.shutdownServers(ctx)
			return err
		}
	}
	d.mux = listener.NewMux(l, d.log)
	// Before the first request: a client that sees the socket answer may
	// rely on the version file (the kubelet does not, tests do).
	if err := writeVersionFiles(cfg, version.Version); err != nil {
		d.shutdownServers(ctx)
		return err
	}
	go d.serve("listener", d.mux.Serve)
	go d.serve("gRPC server", func() error { return d.grpc.Serve(d.mux.GRPC()) })
	go d.serve("HTTP server", func() error { return d.http.Serve(d.mux.HTTP()) })
	d.log.Info("crio started", "version", version.Version, "listen", cfg.API.Listen, "pid", os.Getpid())
	notify(d.log, "READY=1")
	return nil
}

// serve runs one server loop and reports an unexpected end.
func (d *Daemon) serve(name string, fn func() error) {
	err := fn()
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return
	}
	d.report(fmt.Errorf("%s: %w", name, err))
}

// report hands a server's failure to Run without blocking.
func (d *Daemon) report(err error) {
	select {
	case d.errc <- err:
	default:
	}
}

// Stop stops serving gracefully: no new connections, in-flight RPCs get
// StopTimeout (or until ctx ends) to finish, then the services close and the
// clean-shutdown marker is written. The socket file is removed. Calling Stop
// more than once returns the first result.
func (d *Daemon) Stop(ctx context.Context) error {
	d.stopOnce.Do(func() {
		notify(d.log, "STOPPING=1")
		d.log.Info("crio stopping")
		ctx, cancel := context.WithTimeout(ctx, d.opts.StopTimeout)
		defer cancel()
		// Event streams never end by themselves, and a graceful stop
		// waits for every open RPC: end them first.
		d.services.Events.Close()
		d.shutdownServers(ctx)
		if d.services.Close != nil {
			if err := d.services.Close(ctx); err != nil {
				d.stopErr = fmt.Errorf("close services: %w", err)
				return
			}
		}
		if err := writeCleanShutdownMarker(d.Config().Config.CleanShutdownFile); err != nil {
			d.stopErr = err
			return
		}
		d.log.Info("crio stopped")
	})
	return d.stopErr
}

// shutdownServers closes the socket, then lets both servers drain.
func (d *Daemon) shutdownServers(ctx context.Context) {
	if d.mux != nil {
		d.mux.Close() // removes the socket file; no new connections
	}
	var wg sync.WaitGroup
	if d.metrics != nil {
		wg.Go(func() { d.metrics.Close(ctx) })
	}
	if d.profile != nil {
		wg.Go(func() {
			if err := d.profile.Shutdown(ctx); err != nil {
				d.profile.Close()
			}
		})
	}
	if d.grpc != nil {
		wg.Go(func() {
			done := make(chan struct{})
			go func() { d.grpc.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				d.log.Warn("RPCs still running at stop timeout; cutting connections")
				d.grpc.Stop()
				<-done
			}
		})
	}
	if d.http != nil {
		wg.Go(func() {
			if err := d.http.Shutdown(ctx); err != nil {
				d.http.Close()
			}
		})
	}
	wg.Wait()
}

// Run starts a daemon and serves until ctx ends, SIGTERM or SIGINT arrives,
// or a server fails; SIGHUP reloads the configuration. A stop by signal or
// ctx returns nil.
func Run(ctx context.Context, opts Options) error {
	// Before anything else: a signal during start must not take the default
	// action (a SIGHUP would kill the process).
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigc)

	d, err := New(opts)
	if err != nil {
		return err
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	stopWatchdog := startWatchdog(d.log, criProbe(d.Config().Config.API.Listen))
	defer stopWatchdog()

	var runErr error
loop:
	for {
		select {
		case sig := <-sigc:
			if sig == syscall.SIGHUP {
				d.log.Info("SIGHUP received; reloading configuration")
				notify(d.log, "RELOADING=1")
				d.Reload() // logs its own outcome; a bad file keeps the old config
				notify(d.log, "READY=1")
				continue
			}
			d.log.Info("signal received", "signal", sig.String())
			break loop
		case <-ctx.Done():
			break loop
		case runErr = <-d.Errors():
			d.log.Error("server failed; stopping", "error", runErr)
			break loop
		}
	}
	// Stop gets a fresh context: ctx may be the reason we are stopping.
	if err := d.Stop(context.WithoutCancel(ctx)); err != nil {
		return errors.Join(runErr, err)
	}
	return runErr
}

func clampInt(v int64) int {
	if v > int64(^uint(0)>>1) {
		return int(^uint(0) >> 1)
	}
	return int(v)
}
