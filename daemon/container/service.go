package container

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/events"
	"github.com/crio-appliance/crio/daemon/image"
	"github.com/crio-appliance/crio/daemon/oci"
	"github.com/crio-appliance/crio/daemon/reserve"
	"github.com/crio-appliance/crio/daemon/sandbox"
	"github.com/crio-appliance/crio/daemon/spec"
	"github.com/crio-appliance/crio/daemon/state"

	"github.com/crio-appliance/crio/daemon/metrics"
)

// Pods finds the sandbox a container joins; *sandbox.Service implements it.
type Pods interface {
	Get(id string) (*sandbox.Sandbox, error)
	// Hold keeps the pod from being stopped or removed until release
	// (sandbox.Service.Hold).
	Hold(id string, ready bool) (release func(), err error)
}

// Images resolves images; *image.Service implements it.
type Images interface {
	Status(ctx context.Context, name string, verbose bool) (*image.Image, error)
	Config(ctx context.Context, id string) (*imgspecv1.Image, error)
}

// Storage is the part of containers/storage a container's root file
// system needs.
type Storage interface {
	CreateContainer(id string, names []string, image, layer, metadata string, options *storage.ContainerOptions) (*storage.Container, error)
	Mount(id, mountLabel string) (string, error)
	Unmount(id string, force bool) (bool, error)
	DeleteContainer(id string) error
}

// Runtime is what the service needs of a runtime handler; *oci.Runtime
// implements it.
type Runtime interface {
	Create(ctx context.Context, o oci.CreateOptions) (*oci.Created, error)
	Start(ctx context.Context, id string) error
	Kill(ctx context.Context, id, sig string, all bool) error
	Delete(ctx context.Context, id string) error
	State(ctx context.Context, id string) (*oci.State, error)
	Cleanup(id string) error
}

// Handler is one runtime handler and the settings that come with it.
// Cgroups makes a cgroup by its path; *cgroups.Systemd implements it.
type Cgroups interface {
	Create(path string) (*cgroups.Cgroup, error)
}

// Handler is a runtime handler.
type Handler struct {
	Runtime Runtime
	// ContainerMinMemory is the smallest memory limit accepted (bytes).
	ContainerMinMemory int64
	// PrivilegedWithoutHostDevices keeps host devices out of privileged
	// containers.
	PrivilegedWithoutHostDevices bool
	// AllowedAnnotations are CRI annotation prefixes passed on to the
	// runtime in the spec; others are kept by crio only (a runtime may act
	// on annotations, so a pod must not be able to steer it unasked).
	AllowedAnnotations []string
	// MonitorInPod moves conmon into the pod's cgroup (monitor_cgroup =
	// "pod"), accounting it to the pod.
	MonitorInPod bool
	// MonitorSlice, with the systemd cgroup manager, is the slice conmon
	// gets a scope in when it is not the pod's ("" is system.slice).
	MonitorSlice string
	// RecursiveReadOnly: the runtime takes the "rro" mount option.
	RecursiveReadOnly bool
}

// Options configure a Service.
type Options struct {
	// StateDir holds the records (<id>.json), synced; it must survive
	// reboots (storage layers outlive them).
	StateDir string
	// VolatileStateDir holds the records' writes that need not outlive the
	// machine (state.Records); on the run root. Empty: StateDir, synced.
	VolatileStateDir string
	// RunDir holds the bundles (<RunDir>/<id>/).
	RunDir string
	// ExitDir is where conmon writes exit codes (container_exits_dir).
	ExitDir string
	// Handlers by name; DefaultHandler serves pods without one.
	Handlers       map[string]Handler
	DefaultHandler string
	Pods           Pods
	Images         Images
	Storage        Storage
	// Defaults for every spec; the per-handler fields are filled from
	// Handlers.
	Defaults spec.Defaults
	Host     spec.Host
	// ImageVolumes is crio.image.image_volumes: mkdir, bind or ignore.
	ImageVolumes string
	// KillTimeout bounds the wait for a SIGKILLed container to be reported
	// gone (crio.runtime.ctr_stop_timeout); 0 means 30s.
	KillTimeout time.Duration
	// MonitorLogLevel is conmon's --log-level.
	MonitorLogLevel string
	// Cgroups makes conmon's scope with the systemd cgroup manager
	// (SystemdCgroup); nil otherwise.
	Cgroups       Cgroups
	SystemdCgroup bool
	// Events receives the lifecycle events (crio.runtime.enable_pod_events);
	// nil publishes none.
	Events events.Publisher
	Logger *slog.Logger
}

// Service owns every container.
type Service struct {
	opts    Options
	log     *slog.Logger
	store   state.Records[*Container]
	watcher *oci.ExitWatcher

	mu    sync.Mutex
	byID  map[string]*entry
	names *reserve.Names
}

// entry is a container with its locks. exited is closed once the exit is
// recorded.
type entry struct {
	op      sync.Mutex // serialises Create/Start/Remove of this container
	mu      sync.Mutex // guards c and removed
	c       *Container
	removed bool
	exited  chan struct{}
}

// New restores the recorded containers: half-created ones are undone;
// running ones stay running and are watched; exits that happened while
// the daemon was down are read from the exit directory.
func New(opts Options) (*Service, error) {
	if opts.Pods == nil || opts.Images == nil || opts.Storage == nil || opts.Host == nil {
		return nil, errors.New("container service: pods, images, storage and host are required")
	}
	if _, ok := opts.Handlers[opts.DefaultHandler]; !ok {
		return nil, fmt.Errorf("container service: default runtime %q is not a configured handler", opts.DefaultHandler)
	}
	if opts.KillTimeout <= 0 {
		opts.KillTimeout = 30 * time.Second
	}
	switch opts.ImageVolumes {
	case "":
		opts.ImageVolumes = "mkdir"
	case "mkdir", "bind", "ignore":
	default:
		return nil, fmt.Errorf("container service: image_volumes %q is not mkdir, bind or ignore", opts.ImageVolumes)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{opts.StateDir, opts.RunDir, opts.ExitDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("container service: %w", err)
		}
	}
	s := &Service{
		opts: opts, log: log, store: newStore(opts.StateDir, opts.VolatileStateDir),
		byID: map[string]*entry{}, names: reserve.New(),
	}
	// Watch before reading the records: an exit between the two is then
	// seen by one or the other.
	w, err := oci.WatchExits(opts.ExitDir, s.onExit, log)
	if err != nil {
		return nil, fmt.Errorf("container service: %w", err)
	}
	s.watcher = w
	s.restore()
	return s, nil
}

// Close stops watching exits and makes the records' latest writes durable
// (state.Records.Persist). Containers keep running.
func (s *Service) Close() error {
	return errors.Join(s.watcher.Close(), s.store.Persist())
}

func (s *Service) restore() {
	ctrs, errs := s.store.LoadAll()
	for _, err := range errs {
		s.log.Warn("skipping unreadable container record", "error", err)
	}
	ctx := context.Background()
	for _, c := range ctrs {
		if c.State == StateCreating {
			s.log.Info("cleaning up container left half-created", "id", c.ID, "name", c.Name)
			if err := s.release(ctx, c); err != nil {
				s.log.Warn("cleaning up half-created container", "id", c.ID, "error", err)
			}
			continue
		}
		if _, err := s.opts.Pods.Get(c.PodID); errors.Is(err, sandbox.ErrNotFound) {
			// The pod went while crio was down (its own restore undid a
			// half-made pod): nothing can run in it any more.
			s.log.Info("removing container of a pod that no longer exists", "id", c.ID, "pod", c.PodID)
			s.killQuietly(ctx, c)
			if err := s.release(ctx, c); err != nil {
				s.log.Warn("removing orphaned container", "id", c.ID, "error", err)
			}
			continue
		}
		e := &entry{c: c, exited: make(chan struct{})}
		if c.State == StateExited {
			close(e.exited)
		}
		s.mu.Lock()
		s.byID[c.ID] = e
		s.names.Set(c.Name, c.ConfigHash, c.ID)
		s.mu.Unlock()
		if c.State != StateExited {
			s.catchUp(ctx, e)
		}
	}
}

// catchUp records an exit that happened while the daemon was down, or
// finds the container gone entirely (a reboot) or its monitor dead.
func (s *Service) catchUp(ctx context.Context, e *entry) {
	id := e.c.ID
	if s.recordExit(id) {
		return
	}
	h, ok := s.opts.Handlers[e.c.Runtime]
	if !ok {
		s.markLost(e, fmt.Sprintf("runtime handler %q is no longer configured", e.c.Runtime))
		return
	}
	st, err := h.Runtime.State(ctx, id)
	switch {
	case errors.Is(err, oci.ErrNotExist):
		s.markLost(e, "the runtime no longer knows the container (was the node rebooted?)")
	case err != nil:
		s.log.Warn("container state after restart", "id", id, "error", err)
	case st.Status == "running" || st.Status == "paused":
		s.markStarted(e)
	case st.Status == "stopped" && !monitorAlive(e.c.MonitorPid, id):
		// Stopped and nobody left to write the exit file.
		if !s.recordExit(id) {
			s.markLost(e, "the container stopped while its monitor was not running")
		}
	}
}

// markStarted records a start the runtime made but the daemon did not get
// to record (it died between the two): otherwise the container would stay
// "created" and a StartContainer retry would fail in the runtime.
func (s *Service) markStarted(e *entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c.State != StateCreated {
		return
	}
	e.c.State = StateRunning
	if e.c.StartedAt == 0 {
		e.c.StartedAt = time.Now().UnixNano()
	}
	if err := s.store.SaveVolatile(e.c); err != nil {
		s.log.Error("recording a container start", "id", e.c.ID, "error", err)
	}
	s.log.Info("container found running; its start was not recorded", "id", e.c.ID)
}

// markLost records an exit whose code nobody can tell.
func (s *Service) markLost(e *entry, why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c.State == StateExited {
		return
	}
	e.c.State, e.c.ExitCode = StateExited, 255
	e.c.Reason, e.c.Message = "ContainerStatusUnknown", why
	e.c.FinishedAt = time.Now().UnixNano()
	if err := s.store.SaveVolatile(e.c); err != nil {
		s.log.Error("recording a lost container", "id", e.c.ID, "error", err)
	}
	s.publish(events.Stopped, e.c)
	close(e.exited)
	s.log.Warn("container lost", "id", e.c.ID, "reason", why)
}

// monitorAlive checks that pid is still the conmon of container id (pids
// are reused).
func monitorAlive(pid int, id string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), id)
}

// onExit is the exit watcher's callback.
func (s *Service) onExit(id string) {
	if !state.ValidID(id) {
		return
	}
	s.recordExit(id)
}

// recordExit reads the exit file of id and records the exit; it reports
// whether the container is (now) recorded as exited.
func (s *Service) recordExit(id string) bool {
	s.mu.Lock()
	e := s.byID[id]
	s.mu.Unlock()
	if e == nil {
		return false
	}
	ex, ok, err := oci.ReadExit(s.opts.ExitDir, id)
	if err != nil {
		s.log.Warn("reading exit file", "id", id, "error", err)
		return false
	}
	if !ok {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c.State == StateExited {
		return true
	}
	c := e.c
	if c.State == StateCreated && c.StartedAt != 0 {
		// Start is still waiting for the runtime, which already ran the
		// process to its end: report the start first, Start will not.
		s.publish(events.Started, c)
	}
	c.State, c.ExitCode, c.FinishedAt = StateExited, int32(ex.Code), ex.At.UnixNano()
	switch {
	case oci.OOMKilled(c.Bundle):
		c.Reason = "OOMKilled"
		// Counted here, once per container: the state check above
		// returns early for an exit already recorded.
		metrics.ContainerOOMKilled(c.Name)
	case ex.Code == 0:
		c.Reason = "Completed"
	default:
		c.Reason = "Error"
	}
	if c.StartedAt > c.FinishedAt {
		c.FinishedAt = c.StartedAt
	}
	if err := s.store.SaveVolatile(c); err != nil {
		s.log.Error("recording container exit", "id", id, "error", err)
	}
	s.publish(events.Stopped, c)
	close(e.exited)
	s.log.Debug("container exited", "id", id, "code", ex.Code, "reason", c.Reason)
	return true
}

// publish reports a lifecycle event with a copy of the record. Callers
// hold e.mu, so one container's events go out in the order of its state
// changes (Publish never blocks).
func (s *Service) publish(kind events.Kind, c *Container) {
	if s.opts.Events == nil {
		return
	}
	s.opts.Events.Publish(events.Event{Kind: kind, ID: c.ID, PodID: c.PodID, At: time.Now().UnixNano(), Record: c.clone()})
}

func configHash(podID string, cfg *runtimeapi.ContainerConfig) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(podID))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// lookup finds a container by id or unique id prefix.
func (s *Service) lookup(id string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, _ := state.LookupPrefix(s.byID, id)
	return e
}

// Get returns a copy of a container's record.
func (s *Service) Get(id string) (*Container, error) {
	e := s.lookup(id)
	if e == nil {
		return nil, notFound("container %q", errdefs.Clip(id))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return nil, notFound("container %q", errdefs.Clip(id))
	}
	return e.c.clone(), nil
}

// RuntimeFor returns a container's record and its runtime handler, for
// the services that act on running containers (exec, attach).
func (s *Service) RuntimeFor(id string) (*Container, Runtime, error) {
	c, err := s.Get(id)
	if err != nil {
		return nil, nil, err
	}
	h, err := s.handler(c.Runtime)
	if err != nil {
		return nil, nil, err
	}
	return c, h.Runtime, nil
}

// Filter selects containers in List; zero fields match everything.
type Filter struct {
	ID     string // id or prefix
	PodID  string // pod id or prefix
	State  State
	Labels map[string]string
}

// List returns copies of the matching containers, oldest first.
func (s *Service) List(f Filter) []*Container {
	var out []*Container
	for _, e := range state.Values(&s.mu, s.byID) {
		e.mu.Lock()
		if !e.removed && matches(e.c, f) {
			out = append(out, e.c.clone())
		}
		e.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b *Container) int { return cmp.Compare(a.CreatedAt, b.CreatedAt) })
	return out
}

func matches(c *Container, f Filter) bool {
	if f.ID != "" && !strings.HasPrefix(c.ID, f.ID) {
		return false
	}
	if f.PodID != "" && !strings.HasPrefix(c.PodID, f.PodID) {
		return false
	}
	if f.State != "" && c.State != f.State && !(f.State == StateCreated && c.State == StateCreating) {
		return false
	}
	labels := c.Config.GetLabels()
	return state.LabelsMatch(labels, f.Labels)
}

// handler returns the runtime handler of a container record.
func (s *Service) handler(name string) (Handler, error) {
	h, ok := s.opts.Handlers[name]
	if !ok {
		return Handler{}, fmt.Errorf("runtime handler %q is not configured", name)
	}
	return h, nil
}

// killQuietly SIGKILLs a container, ignoring errors: for cleanup paths.
func (s *Service) killQuietly(ctx context.Context, c *Container) {
	if h, err := s.handler(c.Runtime); err == nil {
		_ = h.Runtime.Kill(ctx, c.ID, "KILL", true)
	}
}

// release undoes every resource a record may name, in reverse order of
// creation, and deletes the record. Each step tolerates an absent
// resource, so it serves a half-made container and a retry alike.
func (s *Service) release(ctx context.Context, c *Container) error {
	var errs []error
	if h, err := s.handler(c.Runtime); err == nil {
		if err := h.Runtime.Delete(ctx, c.ID); err != nil {
			errs = append(errs, err)
		}
		if err := h.Runtime.Cleanup(c.ID); err != nil {
			errs = append(errs, err)
		}
	} else if c.RuntimeCreated {
		errs = append(errs, err)
	}
	if err := s.releaseImageVolumes(c); err != nil {
		errs = append(errs, err)
	}
	if _, err := s.opts.Storage.Unmount(c.ID, true); err != nil && !storageGone(err) {
		errs = append(errs, fmt.Errorf("unmount rootfs: %w", err))
	}
	if err := s.opts.Storage.DeleteContainer(c.ID); err != nil && !storageGone(err) {
		errs = append(errs, fmt.Errorf("delete storage: %w", err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove container %s: %w", c.ID, errors.Join(errs...))
	}
	if c.Bundle != "" {
		if err := os.RemoveAll(c.Bundle); err != nil {
			return fmt.Errorf("remove container %s: %w", c.ID, err)
		}
	}
	return s.store.Delete(c.ID)
}

func storageGone(err error) bool {
	return errors.Is(err, storage.ErrContainerUnknown) || errors.Is(err, storage.ErrNotAContainer) || errors.Is(err, storage.ErrLayerUnknown)
}

func (s *Service) bundleDir(id string) string { return filepath.Join(s.opts.RunDir, id) }
