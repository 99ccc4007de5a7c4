package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/crio-appliance/crio/daemon/metrics"
)

// ErrNotExist is returned when the runtime does not know the container.
var ErrNotExist = errors.New("container does not exist in the runtime")

// Config describes one runtime handler.
type Config struct {
	// Name is the handler's name ([crio.runtime.runtimes.<name>]).
	Name string
	// RuntimePath is the OCI runtime binary; "" looks Name up in PATH.
	RuntimePath string
	// RuntimeRoot is the runtime's state directory (--root); "" leaves the
	// runtime's default.
	RuntimeRoot string
	// SystemdCgroup runs the runtime with --systemd-cgroup (and conmon
	// with its --systemd-cgroup): containers' cgroupsPath is then
	// "slice:prefix:name" and each container is a systemd scope.
	SystemdCgroup bool
	// MonitorPath is conmon; "" looks "conmon" up in PATH.
	MonitorPath string
	// MonitorEnv is conmon's whole environment.
	MonitorEnv []string
	// ExitDir receives conmon's exit files (<ExitDir>/<id>).
	ExitDir string
	// SocketDir holds the attach sockets (<SocketDir>/<id>/attach).
	SocketDir string
	// LogSizeMax is passed to conmon as --log-size-max when positive.
	LogSizeMax int64
	// NoSyncLog skips conmon's fsync of the log at exit.
	NoSyncLog bool
	// CommandTimeout bounds one runtime invocation (start, kill, state,
	// delete); 0 means 2 minutes.
	CommandTimeout time.Duration
	Logger         *slog.Logger
}

// Runtime is one handler: a runtime binary and its monitor.
type Runtime struct {
	cfg Config
	log *slog.Logger
}

// New resolves the binaries and makes the exit and socket directories.
func New(cfg Config) (*Runtime, error) {
	if cfg.Name == "" {
		return nil, errors.New("oci: handler has no name")
	}
	bin := cfg.RuntimePath
	if bin == "" {
		bin = cfg.Name
	}
	p, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("runtime handler %s: runtime binary %q: %w", cfg.Name, bin, err)
	}
	cfg.RuntimePath = p
	mon := cfg.MonitorPath
	if mon == "" {
		mon = "conmon"
	}
	if cfg.MonitorPath, err = exec.LookPath(mon); err != nil {
		return nil, fmt.Errorf("runtime handler %s: monitor %q: %w", cfg.Name, mon, err)
	}
	for _, d := range []string{cfg.ExitDir, cfg.SocketDir} {
		if d == "" {
			return nil, fmt.Errorf("runtime handler %s: exit and socket directories are required", cfg.Name)
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("runtime handler %s: %w", cfg.Name, err)
		}
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = 2 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runtime{cfg: cfg, log: log.With("runtime", cfg.Name)}, nil
}

// Name is the handler's name.
func (r *Runtime) Name() string { return r.cfg.Name }

// Path is the runtime binary.
func (r *Runtime) Path() string { return r.cfg.RuntimePath }

// ExitDir is where conmon writes exit files.
func (r *Runtime) ExitDir() string { return r.cfg.ExitDir }

// Root is the runtime's state directory ("" for its default); exec and
// other runtime commands must pass it too.
func (r *Runtime) Root() string { return r.cfg.RuntimeRoot }

// AttachSocket is the unixpacket socket conmon serves for attaching to
// container id's stdio (frames carry a stream byte).
func (r *Runtime) AttachSocket(id string) string {
	return filepath.Join(r.cfg.SocketDir, id, "attach")
}

// run invokes the runtime binary with the global flags first.
func (r *Runtime) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.cfg.RuntimePath, append(r.globalArgs(), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "does not exist") || strings.Contains(msg, "not found") && strings.Contains(msg, "container") {
			return nil, fmt.Errorf("%s %s: %w: %s", filepath.Base(r.cfg.RuntimePath), args[0], ErrNotExist, msg)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", filepath.Base(r.cfg.RuntimePath), args[0], ctx.Err())
		}
		return nil, fmt.Errorf("%s %s: %w: %s", filepath.Base(r.cfg.RuntimePath), args[0], err, msg)
	}
	return stdout.Bytes(), nil
}

// Start runs the created container's process.
func (r *Runtime) Start(ctx context.Context, id string) error {
	defer metrics.Runtime(metrics.ActionStart, time.Now())
	_, err := r.run(ctx, "start", id)
	return err
}

// Kill sends sig ("SIGTERM", "KILL", "15") to the container's init, or
// with all to every process in its cgroup (needed when the container
// shares a PID namespace: its other processes survive the init).
func (r *Runtime) Kill(ctx context.Context, id, sig string, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := r.run(ctx, append(args, id, sig)...)
	return err
}

// Delete removes the runtime's state of a container (and kills what is
// left of it). A container the runtime does not know is already deleted.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	_, err := r.run(ctx, "delete", "--force", id)
	if errors.Is(err, ErrNotExist) {
		return nil
	}
	return err
}

// State is the runtime's view of a container.
type State struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"` // creating, created, running, paused, stopped
	Bundle string `json:"bundle"`
}

// State asks the runtime; ErrNotExist when it has no such container.
func (r *Runtime) State(ctx context.Context, id string) (*State, error) {
	out, err := r.run(ctx, "state", id)
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("%s state %s: %w", filepath.Base(r.cfg.RuntimePath), id, err)
	}
	return &st, nil
}

// Cleanup removes what conmon leaves outside the bundle: the exit file and
// the attach socket directory link. It is idempotent.
func (r *Runtime) Cleanup(id string) error {
	var errs []error
	for _, p := range []string{filepath.Join(r.cfg.ExitDir, id), filepath.Join(r.cfg.SocketDir, id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Exit is a container's recorded end.
type Exit struct {
	Code int
	At   time.Time
}

// ReadExit reads <exit dir>/<id>. ok is false while there is no complete
// exit file.
func ReadExit(exitDir, id string) (Exit, bool, error) {
	p := filepath.Join(exitDir, id)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return Exit{}, false, nil
	}
	if err != nil {
		return Exit{}, false, fmt.Errorf("exit file of %s: %w", id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Exit{}, false, fmt.Errorf("exit file of %s: %w", id, err)
	}
	var buf [32]byte
	n, _ := f.Read(buf[:])
	s := strings.TrimSpace(string(buf[:n]))
	if s == "" {
		return Exit{}, false, nil // written but not yet filled
	}
	code, err := strconv.Atoi(s)
	if err != nil {
		return Exit{}, false, fmt.Errorf("exit file of %s: %q is not an exit code", id, s)
	}
	return Exit{Code: code, At: fi.ModTime()}, true, nil
}

// OOMKilled reports whether conmon saw the container killed by the kernel
// for exceeding its memory limit.
func OOMKilled(bundle string) bool {
	_, err := os.Stat(filepath.Join(bundle, "oom"))
	return err == nil
}
