// Package sandbox runs the pod lifecycle: RunPodSandbox, Stop, Remove,
// Status and List. A pod is a set of resources, each made by a small
// package: pinned namespaces (nsfile), a cgroup (cgroups), a CNI attachment
// (network), plus files it writes itself (resolv.conf, hosts, hostname, a
// /dev/shm tmpfs, the log directory). A JSON record per pod lists them all,
// written before the first one is made, so that Remove (or start-up after
// a crash) can undo every one of them.
package sandbox

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
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/events"
	"github.com/crio-appliance/crio/daemon/fault"
	"github.com/crio-appliance/crio/daemon/network"
	"github.com/crio-appliance/crio/daemon/nsfile"
	"github.com/crio-appliance/crio/daemon/pidns"
	"github.com/crio-appliance/crio/daemon/reserve"
	"github.com/crio-appliance/crio/daemon/state"
)

// Network attaches and detaches pods; *network.Manager implements it.
type Network interface {
	Setup(ctx context.Context, p network.Pod) (*network.Result, error)
	Teardown(ctx context.Context, p network.Pod) error
}

// Cgroups creates pod cgroups; *cgroups.Host implements it. Removal needs
// only the record (cgroups.Remove).
type Cgroups interface {
	Create(path string) (*cgroups.Cgroup, error)
}

// Containers is what the pod lifecycle needs from the container service:
// stopping and removing a pod's containers before its resources go. It is
// set later (SetContainers) because that service looks pods up here.
type Containers interface {
	StopPodContainers(ctx context.Context, podID string) error
	RemovePodContainers(ctx context.Context, podID string) error
}

// Options configure a Service; the daemon fills them from its config.
type Options struct {
	// StateDir holds the per-pod records (<id>.json), synced.
	StateDir string
	// VolatileStateDir holds the records' writes that need not outlive the
	// machine (state.Records); on the run root. Empty: StateDir, synced.
	VolatileStateDir string
	// RunDir holds per-pod generated files and shm (<RunDir>/<id>/).
	RunDir string
	// InitRootDir is the directory the pod init program is run from (and
	// chrooted into); it must be on a file system that allows exec.
	// Empty: <RunDir>/init-root.
	InitRootDir string
	// NamespacesDir is crio.runtime.namespaces_dir.
	NamespacesDir string
	// LogDir is crio.log_dir: pods without a log_directory log under
	// LogDir/<id>.
	LogDir string
	// CgroupManager is crio.runtime.cgroup_manager; it decides how
	// cgroup_parent is read (paths or systemd slice names).
	CgroupManager string
	// DefaultCgroupParent is where pods without a cgroup_parent get their
	// cgroup (<parent>/pod-<id>); it is created once and kept.
	DefaultCgroupParent string
	// DefaultSysctls is crio.runtime.default_sysctls ("key=value").
	DefaultSysctls []string
	// RuntimeHandlers are the allowed runtime_handler names ("" means the
	// default and is always allowed). Nil allows any well-formed name.
	RuntimeHandlers []string
	// ShmSize is the size of each pod's /dev/shm in bytes; 0 means 64 MiB.
	ShmSize int64
	// Wipe removes every recorded pod at start: after a reboot (with
	// crio.internal_wipe) their namespaces and processes are gone and the
	// kubelet creates them anew. Their CNI addresses are released.
	Wipe bool

	Network Network
	Cgroups Cgroups
	// Events receives the pods' own lifecycle events (ID == PodID);
	// nil publishes none.
	Events events.Publisher
	Logger *slog.Logger
}

// Service owns every pod. Its methods are safe for concurrent use;
// operations on one pod are serialised, different pods proceed in parallel.
type Service struct {
	opts  Options
	log   *slog.Logger
	store state.Records[*Sandbox]

	mu         sync.Mutex
	byID       map[string]*entry
	names      *reserve.Names
	containers Containers
}

// entry is a created pod and its two locks. op serialises the operations
// that change the pod (Stop, Remove, UpdateResources) and is held across
// their slow steps (container stops, CNI DEL); container operations that
// need the pod to stay as it is (CreateContainer, StartContainer) share it
// through Hold, so a Remove either runs before them (and they find no pod)
// or after them (and sees their container). mu only guards sb and
// removed, and is held just long enough to copy or replace them, so that
// readers (Get, List, and through them status, stats and events) answer
// from a snapshot at once instead of waiting behind a stopping pod.
//
// The record sb points to is never changed once published: an operation
// works on a clone and publishes it with set.
type entry struct {
	op      sync.RWMutex
	mu      sync.Mutex
	sb      *Sandbox
	removed bool
}

// set publishes sb (a copy of it) as the pod's current record.
func (e *entry) set(sb *Sandbox) {
	c := sb.clone()
	e.mu.Lock()
	e.sb = c
	e.mu.Unlock()
}

// New restores the pods recorded in StateDir: finished ones are listed as
// before; half-created ones (a crash during RunPodSandbox) are undone.
func New(opts Options) (*Service, error) {
	if opts.Network == nil || opts.Cgroups == nil {
		return nil, errors.New("sandbox service: network and cgroups are required")
	}
	if opts.DefaultCgroupParent == "" {
		opts.DefaultCgroupParent = "/crio"
		if opts.CgroupManager == "systemd" {
			opts.DefaultCgroupParent = "/crio.slice"
		}
	}
	if opts.ShmSize <= 0 {
		opts.ShmSize = 64 << 20
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{opts.StateDir, opts.RunDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("sandbox service: %w", err)
		}
	}
	// The shared parent of default pod cgroups is made once and never
	// removed: pods come and go below it concurrently.
	if _, err := opts.Cgroups.Create(opts.DefaultCgroupParent); err != nil {
		return nil, fmt.Errorf("sandbox service: %w", err)
	}
	s := &Service{
		opts: opts, log: log, store: newStore(opts.StateDir, opts.VolatileStateDir),
		byID: map[string]*entry{}, names: reserve.New(),
	}
	sbs, errs := s.store.LoadAll()
	for _, err := range errs {
		log.Warn("skipping unreadable pod record", "error", err)
	}
	for _, sb := range sbs {
		if s.restore(sb) {
			s.byID[sb.ID] = &entry{sb: sb}
			s.names.Set(sb.Name, sb.ConfigHash, sb.ID)
		}
	}
	return s, nil
}

// restoreTimeout bounds the clean-up of one pod at start (CNI DEL).
const restoreTimeout = time.Minute

// restore brings back one recorded pod at start and reports whether it
// is to be listed: a half-created pod is undone; after a reboot (Wipe)
// every pod is removed; a pod whose namespaces or init died is listed as
// not ready with its network detached, so its address is free at once
// rather than when the kubelet gets round to removing it.
func (s *Service) restore(sb *Sandbox) bool {
	ctx, cancel := context.WithTimeout(context.Background(), restoreTimeout)
	defer cancel()
	switch {
	case sb.Pending == PendingRemove:
		// A RemovePodSandbox was cut short: finish it. The container
		// service, started next, removes the pod's containers as orphans.
		s.log.Info("finishing the removal of a pod interrupted by a crash", "id", sb.ID, "name", sb.Name)
		if err := s.release(ctx, sb); err != nil {
			s.log.Warn("finishing an interrupted pod removal; keeping it as not ready", "id", sb.ID, "error", err)
			sb.State = StateNotReady
			if err := s.store.Save(sb); err != nil {
				s.log.Warn("recording pod state", "id", sb.ID, "error", err)
			}
			return true
		}
		return false
	case sb.State == StateCreating:
		s.log.Info("cleaning up pod left half-created", "id", sb.ID, "name", sb.Name)
		if err := s.release(ctx, sb); err != nil {
			s.log.Warn("cleaning up half-created pod", "id", sb.ID, "error", err)
		}
		return false
	case s.opts.Wipe:
		s.log.Info("removing pod left from before the reboot", "id", sb.ID, "name", sb.Name)
		err := s.release(ctx, sb)
		if err == nil {
			return false
		}
		// Listed, so RemovePodSandbox can retry what is left.
		s.log.Warn("removing pod left from before the reboot; keeping it as not ready", "id", sb.ID, "error", err)
		sb.State = StateNotReady
		if err := s.store.Save(sb); err != nil {
			s.log.Warn("recording pod state", "id", sb.ID, "error", err)
		}
	case sb.Pending == PendingStop:
		// A StopPodSandbox was cut short: finish it (no container service
		// yet: this detaches the pod and stops its init; the kubelet stops
		// the containers of a pod it sees not ready).
		s.log.Info("finishing the stop of a pod interrupted by a crash", "id", sb.ID, "name", sb.Name)
		if err := s.stopLocked(ctx, sb, nil); err != nil {
			s.log.Warn("finishing an interrupted pod stop", "id", sb.ID, "error", err)
			sb.State = StateNotReady
			if err := s.store.Save(sb); err != nil {
				s.log.Warn("recording pod state", "id", sb.ID, "error", err)
			}
		}
	case sb.State == StateReady && !s.alive(sb):
		s.log.Info("pod namespaces or init did not survive; marking it not ready", "id", sb.ID, "name", sb.Name)
		// No container service yet: stopLocked only detaches the pod.
		if err := s.stopLocked(ctx, sb, nil); err != nil {
			s.log.Warn("detaching a dead pod", "id", sb.ID, "error", err)
			sb.State = StateNotReady
			if err := s.store.Save(sb); err != nil {
				s.log.Warn("recording pod state", "id", sb.ID, "error", err)
			}
		}
	}
	return true
}

// alive reports whether everything a ready pod's containers join still
// exists: the pinned namespaces and, with a shared PID namespace, its init.
func (s *Service) alive(sb *Sandbox) bool {
	for _, p := range []string{sb.NetNS, sb.IPCNS, sb.UTSNS} {
		if p != "" && !nsfile.IsPinned(p) {
			return false
		}
	}
	return !sb.SharedPID || sb.Init.Alive()
}

// Close makes the records' latest writes durable (state.Records.Persist),
// at a clean stop: a reboot then finds every pod as it was last recorded.
// Pods keep running.
func (s *Service) Close() error {
	return s.store.Persist()
}

// SetContainers connects the container service once it exists.
func (s *Service) SetContainers(c Containers) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.containers = c
}

func configHash(cfg *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(handler))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// createTimeout bounds one creation (in practice, the CNI plugins).
const createTimeout = 4 * time.Minute

// Run creates a pod, or returns the pod an identical earlier request
// created (also while that request is still in flight).
func (s *Service) Run(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (*Sandbox, error) {
	sp, err := validate(cfg, handler, s.opts.DefaultSysctls, s.opts.CgroupManager)
	if err != nil {
		return nil, err
	}
	if handler != "" && s.opts.RuntimeHandlers != nil && !slices.Contains(s.opts.RuntimeHandlers, handler) {
		return nil, errdefs.Invalid("runtime_handler", "no runtime handler %q is configured", handler)
	}
	hash, err := configHash(cfg, handler)
	if err != nil {
		return nil, fmt.Errorf("hash pod config: %w", err)
	}
	name := fmt.Sprintf("k8s_%s_%s_%s_%d", sp.name, sp.namespace, sp.uid, sp.attempt)

	tk, existing, err := s.names.Reserve(ctx, name, hash)
	var conflict *reserve.Conflict
	switch {
	case errors.As(err, &conflict):
		return nil, fmt.Errorf("%w: pod %s (id %.12s) was created with a different configuration; remove it first or use a new attempt number", ErrAlreadyExists, name, conflict.ID)
	case err != nil:
		return nil, err
	case tk == nil:
		return s.Get(existing)
	}

	// The creation must not be cut half-way by the caller's deadline: the
	// kubelet retries, and the retry then waits for this one.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	sb, err := s.create(cctx, sp, cfg, handler, hash, name)
	cancel()
	if err != nil {
		tk.Release()
		return nil, err
	}
	snap := sb.clone() // before the pod is shared: a Stop may change sb at once
	s.mu.Lock()
	s.byID[sb.ID] = &entry{sb: sb}
	s.mu.Unlock()
	tk.Done(sb.ID)
	// Without an infra container the pod's own events stand for it, as
	// CRI-O reports them (the kubelet keys pod events by the sandbox id).
	s.publish(events.Created, snap)
	s.publish(events.Started, snap)
	return snap.clone(), nil
}

// publish reports a pod event; rec must be a copy nobody changes.
func (s *Service) publish(kind events.Kind, rec *Sandbox) {
	if s.opts.Events == nil {
		return
	}
	s.opts.Events.Publish(events.Event{Kind: kind, ID: rec.ID, PodID: rec.ID, At: time.Now().UnixNano(), Record: rec})
}

func (s *Service) create(ctx context.Context, sp *spec, cfg *runtimeapi.PodSandboxConfig, handler, hash, name string) (_ *Sandbox, err error) {
	start := time.Now()
	id := state.NewID()
	sb := &Sandbox{
		ID: id, Name: name, State: StateCreating, CreatedAt: time.Now().UnixNano(),
		RuntimeHandler: handler, ConfigHash: hash, Config: cfg,
		HostPID: sp.hostPID, SharedPID: sp.sharedPID,
		RunDir: filepath.Join(s.opts.RunDir, id),
	}
	cgPath := sp.cgroupPath
	if cgPath == "" {
		cgPath = s.defaultPodCgroup(id)
	}
	// Every resource is named in the record before it is made, so that a
	// crash at any point leaves a record from which the next start undoes
	// what exists. A record write costs a new file, so each write names
	// every resource made before the next one. There are four:
	//   - this one: the run directory and the cgroup, as an intent;
	//   - pinNamespaces': the cgroup made, the namespace files, the shm
	//     mount and the log directory;
	//   - the network's, before CNI ADD;
	//   - the last: the addresses and Ready.
	// Only the network's is synced (state.Records.Save): it names an
	// address reservation on disk. The others name only what a reboot
	// removes (a directory on the run root, a cgroup, namespace files, a
	// tmpfs mount, addresses), so they are volatile writes, unless crio
	// makes the log directory on disk. After a crash of the machine the
	// pod's record is then the network's, a pod still being created, which
	// the next start undoes.
	sb.CgroupIntent = cgPath
	if err := s.saveEarly(sb); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if rerr := s.release(ctx, sb); rerr != nil {
				s.log.Warn("undoing failed pod creation", "id", id, "error", rerr)
			}
		}
	}()
	if err := os.MkdirAll(sb.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("pod run directory: %w", err)
	}

	fault.Point("sandbox-before-cgroup")
	cg, err := s.opts.Cgroups.Create(cgPath)
	if err != nil {
		return nil, fmt.Errorf("pod cgroup: %w", err)
	}
	fault.Point("sandbox-after-cgroup")
	sb.Cgroup, sb.CgroupIntent = cg, "" // recorded by pinNamespaces' write

	sb.Hostname = sp.hostname
	if sb.Hostname == "" || sp.hostNetwork {
		// A host-network pod shares the node's UTS namespace, so its
		// hostname is the node's whatever the request says.
		if sb.Hostname, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("hostname: %w", err)
		}
	}
	s.planLocalFiles(sb, sp) // recorded by pinNamespaces' write
	if err := s.pinNamespaces(sb, sp); err != nil {
		return nil, err
	}
	if sp.sharedPID {
		if err := s.startInit(sb); err != nil {
			return nil, err
		}
	}
	if err := s.mountShm(sb, sp); err != nil {
		return nil, err
	}
	if err := s.writeFiles(sb, sp); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(sb.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("pod log directory: %w", err)
	}
	fault.Point("sandbox-after-local-files")

	if !sp.hostNetwork {
		np := s.netPod(sb, sp.ports)
		// The network is recorded before the first plugin runs: a crash
		// during or right after ADD leaves a record from which the next
		// start runs DEL with the same container id, netns and network
		// (a DEL of an unfinished ADD is allowed by the CNI spec).
		np.BeforeAdd = func(name string) error {
			sb.Network = name
			if err := s.store.Save(sb); err != nil {
				return err
			}
			fault.Point("sandbox-before-cni-add")
			return nil
		}
		res, err := s.opts.Network.Setup(ctx, np)
		if err != nil {
			return nil, fmt.Errorf("pod network: %w", err)
		}
		fault.Point("sandbox-after-cni-add")
		// Recorded with Ready below: until then the network name recorded
		// before ADD is all a DEL needs.
		sb.Network, sb.IPs = res.Network, res.IPs
	}
	if err := s.writeHosts(sb, sp); err != nil {
		return nil, err
	}
	sb.State = StateReady
	if err := s.store.SaveVolatile(sb); err != nil {
		return nil, err
	}
	s.log.Debug("pod created", "id", id, "name", name, "ips", sb.IPs, "duration", time.Since(start))
	return sb, nil
}

// podPorts are the pod's port mappings, for a DEL. libcni's cache holds
// them after a completed ADD; after a crash during ADD there is no cache,
// and without them portmap's DEL leaves its iptables chains behind.
func podPorts(sb *Sandbox) []network.PortMapping {
	var sp spec
	if err := sp.checkPorts(sb.Config.GetPortMappings()); err != nil {
		return nil // validated at creation; a record cannot hold bad ones
	}
	return sp.ports
}

func (s *Service) netPod(sb *Sandbox, ports []network.PortMapping) network.Pod {
	md := sb.Config.GetMetadata()
	netns := sb.NetNS
	if netns != "" && !nsfile.IsPinned(netns) {
		// Gone (a reboot): a path that is no namespace makes the plugins
		// fail DEL before they release the address; without one they
		// release it and skip the interface, which went with the namespace.
		netns = ""
	}
	return network.Pod{
		ID: sb.ID, Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid(),
		NetNS: netns, Ports: ports, Network: sb.Network,
	}
}

func (s *Service) pinNamespaces(sb *Sandbox, sp *spec) error {
	var kinds []nsfile.Kind
	if !sp.hostNetwork {
		kinds = append(kinds, nsfile.Net, nsfile.UTS)
	}
	if !sp.hostIPC {
		kinds = append(kinds, nsfile.IPC)
	}
	sysctls := map[string]string{}
	for _, sc := range sp.sysctls {
		sysctls[sc.path] = sc.value
	}
	// Record the paths before pinning, so a crash in between still leaves
	// a record naming every file that may exist.
	for _, k := range kinds {
		p := filepath.Join(s.opts.NamespacesDir, k.Dir(), sb.ID)
		switch k {
		case nsfile.Net:
			sb.NetNS = p
		case nsfile.IPC:
			sb.IPCNS = p
		case nsfile.UTS:
			sb.UTSNS = p
		}
	}
	if err := s.saveEarly(sb); err != nil {
		return err
	}
	if _, err := nsfile.Pin(nsfile.Request{
		Dir: s.opts.NamespacesDir, ID: sb.ID, Kinds: kinds, Hostname: sb.Hostname, Sysctls: sysctls,
	}); err != nil {
		sb.NetNS, sb.IPCNS, sb.UTSNS = "", "", ""
		return fmt.Errorf("pod namespaces: %w", err)
	}
	return nil
}

// initStopTimeout bounds the wait for a killed pod init to go.
const initStopTimeout = 10 * time.Second

// startInit starts the process that holds the pod's shared PID namespace,
// in the pod's other namespaces and in a cgroup below the pod's.
func (s *Service) startInit(sb *Sandbox) error {
	cg, err := s.opts.Cgroups.Create(filepath.Join(sb.Cgroup.Path, s.initCgroupName(sb.ID)))
	if err != nil {
		return fmt.Errorf("pod init cgroup: %w", err)
	}
	fault.Point("sandbox-after-init-cgroup")
	sb.InitCgroup = cg
	sb.PIDNS = filepath.Join(s.opts.NamespacesDir, "pidns", sb.ID)
	if err := s.saveEarly(sb); err != nil {
		return err
	}
	join := map[string]string{}
	for kind, p := range map[string]string{"net": sb.NetNS, "ipc": sb.IPCNS, "uts": sb.UTSNS} {
		if p != "" {
			join[kind] = p
		}
	}
	h, err := pidns.Start(pidns.Options{
		ID: sb.ID, RootDir: s.initRootDir(),
		JoinNS: join, Cgroup: cg, PinPath: sb.PIDNS,
	})
	if err != nil {
		return fmt.Errorf("pod PID namespace: %w", err)
	}
	fault.Point("sandbox-after-init-start")
	sb.Init = h
	return s.saveEarly(sb)
}

// saveEarly writes the record of a pod being made, up to its network: a
// volatile write while everything it names is gone after a reboot (see
// create), synced once it names the log directory crio makes on disk.
func (s *Service) saveEarly(sb *Sandbox) error {
	if sb.LogDirOwned {
		return s.store.Save(sb)
	}
	return s.store.SaveVolatile(sb)
}

func (s *Service) mountShm(sb *Sandbox, sp *spec) error {
	if sp.hostIPC {
		return nil // containers use the host's /dev/shm, as with Docker's --ipc=host
	}
	if err := os.Mkdir(sb.ShmPath, 0o755); err != nil {
		return fmt.Errorf("pod shm: %w", err)
	}
	opts := fmt.Sprintf("mode=1777,size=%d", s.opts.ShmSize)
	if err := unix.Mount("shm", sb.ShmPath, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("mount pod shm: %w", err)
	}
	return nil
}

func (s *Service) writeFiles(sb *Sandbox, sp *spec) error {
	var resolv []byte
	if sp.dnsConfigured {
		resolv = renderResolvConf(sp.dnsServers, sp.dnsSearches, sp.dnsOptions)
	} else {
		// No DNS config: the pod resolves like the node (CRI-O does the same).
		var err error
		if resolv, err = readHostFile("/etc/resolv.conf"); err != nil {
			return fmt.Errorf("pod resolv.conf: %w", err)
		}
	}
	sb.ResolvPath = filepath.Join(sb.RunDir, "resolv.conf")
	if err := state.WriteRunFile(sb.ResolvPath, resolv, 0o644); err != nil {
		return fmt.Errorf("pod resolv.conf: %w", err)
	}
	sb.HostnamePath = filepath.Join(sb.RunDir, "hostname")
	if err := state.WriteRunFile(sb.HostnamePath, []byte(sb.Hostname+"\n"), 0o644); err != nil {
		return fmt.Errorf("pod hostname file: %w", err)
	}
	return nil
}

func (s *Service) writeHosts(sb *Sandbox, sp *spec) error {
	var data []byte
	var err error
	if sp.hostNetwork {
		data, err = readHostFile("/etc/hosts")
	} else {
		var extra []hostEntry
		for _, ip := range sb.IPs {
			extra = append(extra, hostEntry{IP: ip, Names: []string{sb.Hostname}})
		}
		data, err = renderHosts(extra)
	}
	if err != nil {
		return fmt.Errorf("pod hosts file: %w", err)
	}
	sb.HostsPath = filepath.Join(sb.RunDir, "hosts")
	if err := state.WriteRunFile(sb.HostsPath, data, 0o644); err != nil {
		return fmt.Errorf("pod hosts file: %w", err)
	}
	return nil
}

// planLocalFiles names the pod's shm mount and log directory before they
// are made, so that the record written before the namespaces are pinned
// covers them too.
func (s *Service) planLocalFiles(sb *Sandbox, sp *spec) {
	if !sp.hostIPC {
		// Recorded as mounted before the mount: unmounting a path that is
		// not mounted, or does not exist, is harmless.
		sb.ShmPath, sb.ShmMounted = filepath.Join(sb.RunDir, "shm"), true
	}
	if sp.logDir != "" {
		sb.LogDir = sp.logDir
	} else {
		sb.LogDir, sb.LogDirOwned = filepath.Join(s.opts.LogDir, sb.ID), true
	}
}

// lookup finds a pod by id or unique id prefix (crictl users type
// prefixes). Nil when there is none.
func (s *Service) lookup(id string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, _ := state.LookupPrefix(s.byID, id)
	return e
}

// Get returns a copy of the pod's record.
func (s *Service) Get(id string) (*Sandbox, error) {
	e := s.lookup(id)
	if e == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, errdefs.Clip(id))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, errdefs.Clip(id))
	}
	return e.sb.clone(), nil
}

// Filter selects pods in List; zero fields match everything.
type Filter struct {
	ID     string // id or id prefix
	State  State
	Labels map[string]string
}

// List returns copies of the pods that match f, oldest first.
func (s *Service) List(f Filter) []*Sandbox {
	var out []*Sandbox
	for _, e := range state.Values(&s.mu, s.byID) {
		e.mu.Lock()
		sb, removed := e.sb, e.removed
		if !removed && matches(sb, f) {
			out = append(out, sb.clone())
		}
		e.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b *Sandbox) int { return cmp.Compare(a.CreatedAt, b.CreatedAt) })
	return out
}

func matches(sb *Sandbox, f Filter) bool {
	if f.ID != "" && !strings.HasPrefix(sb.ID, f.ID) {
		return false
	}
	if f.State != "" && sb.State != f.State {
		return false
	}
	labels := sb.Config.GetLabels()
	return state.LabelsMatch(labels, f.Labels)
}

// Hold keeps pod id from being stopped, removed or changed until release
// is called, for an operation that adds to the pod (a container created or
// started in it). It fails with ErrNotFound when the pod is gone and, when
// ready is asked for, with ErrNotReady when the pod is not ready. Holds of
// one pod do not exclude each other; Stop and Remove wait for them, and
// new holds wait for a Stop or Remove in progress. Do not hold one pod
// twice in one operation (a waiting Remove would deadlock it).
func (s *Service) Hold(id string, ready bool) (release func(), err error) {
	e := s.lookup(id)
	if e == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, errdefs.Clip(id))
	}
	e.op.RLock()
	e.mu.Lock()
	removed, sb := e.removed, e.sb
	e.mu.Unlock()
	switch {
	case removed:
		e.op.RUnlock()
		return nil, fmt.Errorf("%w: %q", ErrNotFound, errdefs.Clip(id))
	case ready && sb.State != StateReady:
		e.op.RUnlock()
		return nil, fmt.Errorf("%w: pod %s is %s", ErrNotReady, sb.ID, sb.State)
	}
	var once sync.Once
	return func() { once.Do(e.op.RUnlock) }, nil
}

// lockLive finds a pod that is not removed, takes its operation lock and
// returns it with a working copy of its record; nil when there is none
// (the caller treats that as done). The caller unlocks e.op.
func (s *Service) lockLive(id string) (*entry, *Sandbox) {
	e := s.lookup(id)
	if e == nil {
		return nil, nil
	}
	e.op.Lock()
	e.mu.Lock()
	removed, work := e.removed, e.sb.clone()
	e.mu.Unlock()
	if removed {
		e.op.Unlock()
		return nil, nil
	}
	return e, work
}

// Stop stops the pod's containers and detaches it from the network. An
// unknown id is not an error, and stopping twice is fine (the kubelet
// retries and calls Stop before Remove).
func (s *Service) Stop(ctx context.Context, id string) error {
	e, work := s.lockLive(id)
	if e == nil {
		return nil
	}
	defer e.op.Unlock()
	return s.stopLocked(ctx, work, e.set)
}

// stopLocked stops the pod whose record is sb, a working copy the caller
// owns. publish (nil at start, before anyone reads) makes each step's
// result visible to readers as soon as it is recorded.
func (s *Service) stopLocked(ctx context.Context, sb *Sandbox, publish func(*Sandbox)) error {
	if publish == nil {
		publish = func(*Sandbox) {}
	}
	// Recorded first, so a crash half-way is finished by the next start
	// (a Remove in progress keeps its own mark).
	if sb.Pending == "" {
		sb.Pending = PendingStop
		if err := s.store.Save(sb); err != nil {
			return err
		}
	}
	wasReady := sb.State == StateReady
	s.mu.Lock()
	ctrs := s.containers
	s.mu.Unlock()
	if ctrs != nil {
		if err := ctrs.StopPodContainers(ctx, sb.ID); err != nil {
			return fmt.Errorf("stop containers of pod %s: %w", sb.ID, err)
		}
	}
	if err := sb.Init.Stop(initStopTimeout); err != nil {
		return fmt.Errorf("stop pod %s: %w", sb.ID, err)
	}
	sb.Init = nil
	publish(sb)
	if sb.Network != "" {
		fault.Point("sandbox-stop-before-cni-del")
		if err := s.opts.Network.Teardown(ctx, s.netPod(sb, podPorts(sb))); err != nil {
			return fmt.Errorf("stop pod %s: %w", sb.ID, err)
		}
		sb.Network, sb.IPs = "", nil
	}
	sb.State = StateNotReady
	if sb.Pending == PendingStop {
		sb.Pending = ""
	}
	err := s.store.Save(sb)
	publish(sb)
	if err != nil {
		return err
	}
	if wasReady {
		s.publish(events.Stopped, sb.clone())
	}
	return nil
}

// Remove stops the pod if needed and removes everything it owns. An unknown
// id is not an error; after a partial failure a retry finishes the job.
func (s *Service) Remove(ctx context.Context, id string) error {
	e, sb := s.lockLive(id)
	if e == nil {
		return nil
	}
	defer e.op.Unlock()
	// Recorded first, so a crash half-way is finished by the next start.
	sb.Pending = PendingRemove
	if err := s.store.Save(sb); err != nil {
		return err
	}
	fault.Point("sandbox-remove-after-intent")
	s.mu.Lock()
	ctrs := s.containers
	s.mu.Unlock()
	if ctrs != nil {
		if err := ctrs.RemovePodContainers(ctx, sb.ID); err != nil {
			return fmt.Errorf("remove containers of pod %s: %w", sb.ID, err)
		}
	}
	snap := sb.clone()
	if err := s.release(ctx, sb); err != nil {
		_ = s.store.Save(sb) // keep what is left on record for the retry
		e.set(sb)
		return err
	}
	if snap.State == StateReady {
		snap.State = StateNotReady
		s.publish(events.Stopped, snap.clone())
	}
	s.publish(events.Deleted, snap)
	e.mu.Lock()
	e.removed = true
	e.mu.Unlock()
	s.mu.Lock()
	delete(s.byID, sb.ID)
	s.mu.Unlock()
	s.names.Forget(sb.Name, sb.ID)
	return nil
}

// initCgroup is the pod init's cgroup, below the pod's.
const initCgroup = "pod-init"

func (s *Service) systemd() bool { return s.opts.CgroupManager == "systemd" }

// initCgroupName names the pod init's cgroup: a directory below the
// pod's, or with the systemd driver a scope in the pod's slice (a unit
// name, unique on the host).
func (s *Service) initCgroupName(id string) string {
	if s.systemd() {
		return "crio-init-" + id + ".scope"
	}
	return initCgroup
}

// defaultPodCgroup is the cgroup of a pod the kubelet gave no parent:
// pod-<id> below the default parent, or with the systemd driver the slice
// <parent>-pod<id>.slice, which systemd nests in the parent slice.
func (s *Service) defaultPodCgroup(id string) string {
	parent := s.opts.DefaultCgroupParent
	if s.systemd() && strings.HasSuffix(parent, ".slice") {
		name := strings.TrimSuffix(filepath.Base(parent), ".slice")
		return filepath.Join(parent, name+"-pod"+id+".slice")
	}
	return filepath.Join(parent, "pod-"+id)
}

// reapInitCgroup kills what runs in the pod init's cgroup below pod (only
// the pod init ever does) and removes that cgroup, in every hierarchy;
// with the systemd driver, stopping the scope does both.
func (s *Service) reapInitCgroup(pod *cgroups.Cgroup, id string) error {
	if pod == nil {
		return nil
	}
	if s.systemd() {
		return cgroups.Remove(&cgroups.Cgroup{Path: filepath.Join(pod.Path, s.initCgroupName(id)), Unit: s.initCgroupName(id)})
	}
	var errs []error
	for _, d := range pod.Dirs {
		dir := filepath.Join(d, initCgroup)
		for try := 0; try < 100; try++ {
			b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			if err != nil || len(strings.TrimSpace(string(b))) == 0 {
				break
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove pod init cgroup %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

// undoCgroupIntent removes a pod cgroup whose creation was recorded as an
// intent but never completed (a crash in between). Only a cgroup crio
// names itself (pod-<id> below the default parent) is removed: a
// cgroup_parent the kubelet gave is the kubelet's to remove.
func (s *Service) undoCgroupIntent(sb *Sandbox) error {
	own := s.defaultPodCgroup(sb.ID)
	if sb.CgroupIntent != own {
		return nil
	}
	if s.systemd() {
		// The slice, if systemd made it before the crash.
		return cgroups.Remove(&cgroups.Cgroup{Path: own, Unit: filepath.Base(own)})
	}
	// Create is idempotent and returns the leaf in every hierarchy; the
	// leaves are all this pod's, whether or not this call made them.
	cg, err := s.opts.Cgroups.Create(own)
	if err != nil {
		return fmt.Errorf("pod cgroup %s: %w", own, err)
	}
	cg.Created = slices.Clone(cg.Dirs)
	if err := cgroups.Remove(cg); err != nil {
		return err
	}
	if err := cgroups.RemoveHybrid(own); err != nil {
		s.log.Warn("removing the pod's cgroup2 directory", "id", sb.ID, "error", err)
	}
	return nil
}

// release undoes every resource the record names, in reverse order of
// creation, and deletes the record. Each step is idempotent and clears its
// field, so a retry after a failure does only what is left.
func (s *Service) release(ctx context.Context, sb *Sandbox) error {
	var errs []error
	if err := sb.Init.Stop(initStopTimeout); err != nil {
		errs = append(errs, err)
	} else {
		sb.Init = nil
	}
	if err := pidns.Unpin(sb.PIDNS); err != nil {
		errs = append(errs, err)
	} else {
		sb.PIDNS = ""
	}
	if sb.Network != "" {
		if err := s.opts.Network.Teardown(ctx, s.netPod(sb, podPorts(sb))); err != nil {
			errs = append(errs, err)
		} else {
			sb.Network, sb.IPs = "", nil
		}
	}
	if sb.ShmMounted {
		if err := unix.Unmount(sb.ShmPath, unix.MNT_DETACH); err != nil &&
			!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount pod shm: %w", err))
		} else {
			sb.ShmMounted = false
		}
	}
	for _, p := range []*string{&sb.NetNS, &sb.IPCNS, &sb.UTSNS} {
		if err := nsfile.Unpin(*p); err != nil {
			errs = append(errs, err)
		} else {
			*p = ""
		}
	}
	if sb.Init == nil {
		// A crash between making the init cgroup or starting the init and
		// recording them leaves a cgroup (maybe with the init in it) the
		// record does not name; it would keep the pod cgroup busy.
		if err := s.reapInitCgroup(sb.Cgroup, sb.ID); err != nil {
			errs = append(errs, err)
		}
	}
	if sb.InitCgroup != nil && sb.Init == nil {
		if err := cgroups.Remove(sb.InitCgroup); err != nil {
			errs = append(errs, err)
		} else {
			sb.InitCgroup = nil
		}
	}
	if sb.Cgroup != nil && sb.InitCgroup == nil {
		if err := cgroups.Remove(sb.Cgroup); err != nil {
			errs = append(errs, err)
		} else {
			// Not an error for the pod: this directory only holds what
			// runc made beside the pod's own cgroups. (systemd keeps
			// its own tree there, and cleans it.)
			if !s.systemd() {
				if err := cgroups.RemoveHybrid(sb.Cgroup.Path); err != nil {
					s.log.Warn("removing the pod's cgroup2 directory", "id", sb.ID, "error", err)
				}
			}
			sb.Cgroup = nil
		}
	}
	if sb.Cgroup == nil && sb.CgroupIntent != "" && len(errs) == 0 {
		if err := s.undoCgroupIntent(sb); err != nil {
			errs = append(errs, err)
		} else {
			sb.CgroupIntent = ""
		}
	}
	if len(errs) > 0 {
		// Keep the directory: it may still hold the shm mount point.
		return fmt.Errorf("remove pod %s: %w", sb.ID, errors.Join(errs...))
	}
	if sb.RunDir != "" {
		if err := os.RemoveAll(sb.RunDir); err != nil {
			return fmt.Errorf("remove pod %s: %w", sb.ID, err)
		}
	}
	if sb.LogDirOwned && sb.LogDir != "" {
		if err := os.RemoveAll(sb.LogDir); err != nil {
			return fmt.Errorf("remove pod %s: %w", sb.ID, err)
		}
	}
	return s.store.Delete(sb.ID)
}

// initRootDir is where the pod init program lives.
func (s *Service) initRootDir() string {
	if s.opts.InitRootDir != "" {
		return s.opts.InitRootDir
	}
	return filepath.Join(s.opts.RunDir, "init-root")
}
