package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/events"
	"github.com/crio-appliance/crio/daemon/fault"
	"github.com/crio-appliance/crio/daemon/image"
	"github.com/crio-appliance/crio/daemon/oci"
	"github.com/crio-appliance/crio/daemon/reserve"
	"github.com/crio-appliance/crio/daemon/sandbox"
	"github.com/crio-appliance/crio/daemon/spec"
	"github.com/crio-appliance/crio/daemon/state"

	"github.com/crio-appliance/crio/daemon/metrics"
)

// createTimeout bounds one creation; the caller's deadline does not cut it
// short (the kubelet retries, and the retry waits for this one).
const createTimeout = 4 * time.Minute

// Create makes a container in pod podID, or returns the container an
// identical earlier request made (also while that one is in flight).
func (s *Service) Create(ctx context.Context, podID string, cfg *runtimeapi.ContainerConfig) (*Container, error) {
	if err := validateRequest(cfg); err != nil {
		return nil, err
	}
	// Held until the container is registered: a RemovePodSandbox of this
	// pod then either ran before (this fails with NotFound and makes
	// nothing) or runs after and removes the container with the pod.
	release, err := s.opts.Pods.Hold(podID, true)
	switch {
	case errors.Is(err, sandbox.ErrNotFound):
		return nil, notFound("pod sandbox %q", errdefs.Clip(podID))
	case errors.Is(err, sandbox.ErrNotReady):
		return nil, precondition("pod sandbox %.12s is not ready (stopped or being removed)", errdefs.Clip(podID))
	case err != nil:
		return nil, err
	}
	defer release()
	pod, err := s.opts.Pods.Get(podID)
	if errors.Is(err, sandbox.ErrNotFound) {
		return nil, notFound("pod sandbox %q", errdefs.Clip(podID))
	}
	if err != nil {
		return nil, err
	}
	hash, err := configHash(pod.ID, cfg)
	if err != nil {
		return nil, fmt.Errorf("hash container config: %w", err)
	}
	name := containerName(cfg, pod.Config.GetMetadata())

	tk, existing, err := s.names.Reserve(ctx, name, hash)
	var conflict *reserve.Conflict
	switch {
	case errors.As(err, &conflict):
		return nil, fmt.Errorf("%w: container %s (id %.12s) was created with a different configuration; remove it first or use a new attempt number", ErrAlreadyExists, name, conflict.ID)
	case err != nil:
		return nil, err
	case tk == nil:
		return s.Get(existing)
	}

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	e, err := s.create(cctx, pod, cfg, hash, name)
	cancel()
	if err != nil {
		tk.Release()
		return nil, err
	}
	s.mu.Lock()
	s.byID[e.c.ID] = e
	s.mu.Unlock()
	tk.Done(e.c.ID)
	e.mu.Lock()
	s.publish(events.Created, e.c)
	e.mu.Unlock()
	// An exit (a kill before start) the watcher saw before the container
	// was registered would otherwise be missed.
	s.recordExit(e.c.ID)
	// A pod removed while this container was being made did not see it
	// (it was not registered yet): remove it now rather than leave it
	// behind in a pod that no longer exists.
	if _, err := s.opts.Pods.Get(pod.ID); errors.Is(err, sandbox.ErrNotFound) {
		if rerr := s.Remove(context.WithoutCancel(ctx), e.c.ID); rerr != nil {
			s.log.Warn("removing a container whose pod went away during creation", "id", e.c.ID, "error", rerr)
		}
		return nil, notFound("pod sandbox %s was removed while the container was being created", pod.ID)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.c.clone(), nil
}

func (s *Service) create(ctx context.Context, pod *sandbox.Sandbox, cfg *runtimeapi.ContainerConfig, hash, name string) (_ *entry, err error) {
	start := time.Now()
	handlerName := pod.RuntimeHandler
	if handlerName == "" {
		handlerName = s.opts.DefaultHandler
	}
	h, err := s.handler(handlerName)
	if err != nil {
		return nil, precondition("pod %s: %v", pod.ID, err)
	}
	img, err := s.opts.Images.Status(ctx, cfg.GetImage().GetImage(), false)
	if err != nil {
		if errors.Is(err, image.ErrNotFound) {
			return nil, notFound("image %q is not present on this node (CreateContainer does not pull; PullImage first)", errdefs.Clip(cfg.GetImage().GetImage()))
		}
		if errors.Is(err, image.ErrInvalidReference) {
			return nil, errdefs.Invalid("config.image.image", "%v", err)
		}
		return nil, fmt.Errorf("image %s: %w", errdefs.Clip(cfg.GetImage().GetImage()), err)
	}
	imgCfg, err := s.opts.Images.Config(ctx, img.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.ID, err)
	}

	id := state.NewID()
	c := &Container{
		ID: id, Name: name, PodID: pod.ID, State: StateCreating, CreatedAt: time.Now().UnixNano(),
		Image: cfg.GetImage().GetImage(), UserSpecifiedImage: cfg.GetImage().GetUserSpecifiedImage(),
		ImageID: img.ID, ConfigHash: hash, Config: cfg, Runtime: handlerName, Bundle: s.bundleDir(id),
	}
	c.ImageName, c.ImageRef = imageNames(c.Image, img)
	if c.LogPath, err = logPath(pod.LogDir, cfg.GetLogPath(), id); err != nil {
		return nil, err
	}
	if err := s.store.Save(c); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if rerr := s.release(context.WithoutCancel(ctx), c); rerr != nil {
				s.log.Warn("undoing failed container creation", "id", id, "error", rerr)
			}
		}
	}()

	rootfsStart := time.Now()
	_, err = s.opts.Storage.CreateContainer(id, []string{name}, img.ID, "", "", nil)
	metrics.Storage(metrics.ActionCreateRootfs, rootfsStart)
	if err != nil {
		return nil, fmt.Errorf("create container storage: %w", err)
	}
	fault.Point("container-after-storage")
	c.StorageCreated = true
	mountStart := time.Now()
	c.Rootfs, err = s.opts.Storage.Mount(id, "")
	metrics.Storage(metrics.ActionMount, mountStart)
	if err != nil {
		return nil, fmt.Errorf("mount container rootfs: %w", err)
	}
	c.Mounted = true
	if err := os.MkdirAll(c.Bundle, 0o700); err != nil {
		return nil, fmt.Errorf("container bundle: %w", err)
	}
	if err := makeLogFileDir(pod.LogDir, c.LogPath); err != nil {
		return nil, err
	}
	volumes, err := s.imageVolumes(c, imgCfg)
	if err != nil {
		return nil, err
	}
	imageMounts, err := s.mountImageVolumes(ctx, c, cfg)
	if err != nil {
		return nil, err
	}
	in, err := s.specInput(c, pod, cfg, &imgCfg.Config, h, volumes)
	if err != nil {
		return nil, err
	}
	in.ImageMounts = imageMounts
	res, err := spec.Generate(in)
	if err != nil {
		// spec's errors already have their kinds; these two become the
		// container service's own sentinels, which its callers test for.
		if errors.Is(err, spec.ErrNotFound) {
			return nil, notFound("%v", err)
		}
		if errors.Is(err, spec.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %v", ErrUnimplemented, err)
		}
		return nil, err
	}
	for _, w := range res.Warnings {
		s.log.Debug("container setting not applied", "id", id, "name", name, "detail", w)
	}
	for _, w := range res.SecurityWarnings {
		s.log.Warn("container confinement not applied", "id", id, "name", name, "detail", w)
	}
	c.StopSignal = res.StopSignal
	c.OwnPIDNS = ownPIDNamespace(res.Spec)
	c.UID, c.GID, c.SupplementalGroups = res.UID, res.GID, res.SupplementalGroups
	for _, m := range res.Mounts {
		c.Mounts = append(c.Mounts, MountRecord{
			ContainerPath: m.ContainerPath, HostPath: m.HostPath, Readonly: m.Readonly,
			RecursiveReadOnly: m.RecursiveReadOnly,
			SelinuxRelabel:    m.SelinuxRelabel, Propagation: int32(m.Propagation),
			Image: m.GetImage().GetImage(), ImageRef: m.GetImage().GetImageRef(), ImageSubPath: m.GetImageSubPath(),
		})
	}
	data, err := json.Marshal(res.Spec)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.Bundle, "config.json"), data, 0o600); err != nil {
		return nil, fmt.Errorf("write spec: %w", err)
	}

	c.RuntimeCreated = true
	monitorCg, err := s.monitorCgroup(h, pod, id)
	if err != nil {
		return nil, err
	}
	created, err := h.Runtime.Create(ctx, oci.CreateOptions{
		ID: id, Name: name, Bundle: c.Bundle, LogPath: c.LogPath,
		Terminal: cfg.GetTty(), Stdin: cfg.GetStdin(), StdinOnce: cfg.GetStdinOnce(),
		Cgroup: monitorCg, LogLevel: s.opts.MonitorLogLevel,
	})
	if err != nil {
		return nil, err
	}
	fault.Point("container-after-runtime-create")
	c.Pid, c.MonitorPid = created.PID, created.MonitorPID
	c.State = StateCreated
	// Volatile: what this write adds (processes, the bundle on the run
	// root) ends with the machine, and the synced intent above names the
	// storage to release after a crash of it.
	if err := s.store.SaveVolatile(c); err != nil {
		s.killQuietly(ctx, c)
		return nil, err
	}
	s.log.Debug("container created", "id", id, "name", name, "duration", time.Since(start))
	return &entry{c: c, exited: make(chan struct{})}, nil
}

// imageNames picks the tag and digest reference to report for an image
// the request named as ref.
func imageNames(ref string, img *image.Image) (name, digestRef string) {
	name = ref
	if len(img.RepoTags) > 0 {
		name = img.RepoTags[0]
		for _, t := range img.RepoTags {
			if t == ref || strings.HasSuffix(t, "/"+ref) || strings.HasSuffix(t, "/"+ref+":latest") {
				name = t
				break
			}
		}
	}
	digestRef = img.ID
	if len(img.RepoDigests) > 0 {
		digestRef = img.RepoDigests[0]
	}
	return name, digestRef
}

// makeLogFileDir creates the directories between the pod's log directory
// and the log file, resolving every component inside the log directory so
// that a symlink there cannot send conmon's writes elsewhere.
func makeLogFileDir(logDir, logPath string) error {
	rel, err := filepath.Rel(logDir, filepath.Dir(logPath))
	if err != nil {
		return fmt.Errorf("log directory: %w", err)
	}
	if rel == "." {
		return nil
	}
	if err := pathrs.MkdirAll(logDir, rel, 0o755); err != nil {
		return fmt.Errorf("create log directory %s: %w", filepath.Dir(logPath), err)
	}
	return nil
}

// imageVolumes applies crio.image.image_volumes to the image's declared
// volumes: "mkdir" makes each one a directory in the rootfs (resolved
// inside it), "bind" gives each a fresh directory in the bundle mounted
// over it, "ignore" does nothing.
func (s *Service) imageVolumes(c *Container, img *imgspecv1.Image) (map[string]string, error) {
	if len(img.Config.Volumes) == 0 || s.opts.ImageVolumes == "ignore" {
		return nil, nil
	}
	out := map[string]string{}
	for dst := range img.Config.Volumes {
		if !strings.HasPrefix(dst, "/") || strings.ContainsAny(dst, "\x00\n") {
			continue
		}
		switch s.opts.ImageVolumes {
		case "mkdir":
			if err := pathrs.MkdirAll(c.Rootfs, dst, 0o755); err != nil {
				return nil, fmt.Errorf("image volume %s: %w", dst, err)
			}
		case "bind":
			sum := sha256.Sum256([]byte(dst))
			dir := filepath.Join(c.Bundle, "volumes", hex.EncodeToString(sum[:8]))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("image volume %s: %w", dst, err)
			}
			out[dst] = dir
		}
	}
	return out, nil
}

// specInput gathers what the spec generator needs.
func (s *Service) specInput(c *Container, pod *sandbox.Sandbox, cfg *runtimeapi.ContainerConfig, img *imgspecv1.ImageConfig, h Handler, volumes map[string]string) (*spec.Input, error) {
	defaults := s.opts.Defaults
	defaults.ContainerMinMemory = h.ContainerMinMemory
	defaults.PrivilegedWithoutHostDevices = h.PrivilegedWithoutHostDevices
	defaults.RecursiveReadOnly = h.RecursiveReadOnly
	defaults.Annotations = map[string]string{
		"io.kubernetes.cri-o.ContainerID":   c.ID,
		"io.kubernetes.cri-o.ContainerName": c.Name,
		"io.kubernetes.cri-o.SandboxID":     pod.ID,
		"io.kubernetes.cri-o.ContainerType": "container",
		"io.kubernetes.cri-o.LogPath":       c.LogPath,
	}
	for k, v := range cfg.GetAnnotations() {
		if slices.ContainsFunc(h.AllowedAnnotations, func(p string) bool { return strings.HasPrefix(k, p) }) {
			defaults.Annotations[k] = v
		}
	}
	p := spec.Pod{
		ID: pod.ID, Hostname: pod.Hostname,
		NetNS: pod.NetNS, IPCNS: pod.IPCNS, UTSNS: pod.UTSNS,
		HostPID: pod.HostPID, PIDNS: pod.PIDNS,
		ResolvPath: pod.ResolvPath, HostsPath: pod.HostsPath, HostnamePath: pod.HostnamePath, ShmPath: pod.ShmPath,
		Privileged: pod.Config.GetLinux().GetSecurityContext().GetPrivileged(),
	}
	if pod.Cgroup != nil {
		p.CgroupParent, p.CgroupSlice = pod.Cgroup.Path, pod.Cgroup.Slice
	}
	in := &spec.Input{
		ID: c.ID, Config: cfg, Pod: p, Image: img, Rootfs: c.Rootfs,
		ImageVolumes: volumes, Defaults: defaults, Host: s.opts.Host,
	}
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if ns.GetPid() == runtimeapi.NamespaceMode_TARGET {
		target := s.lookup(ns.GetTargetId())
		if target == nil || ns.GetTargetId() == "" {
			return nil, errdefs.Invalid("config.linux.security_context.namespace_options.target_id", "no container %q", errdefs.Clip(ns.GetTargetId()))
		}
		target.mu.Lock()
		tc := target.c
		running := tc.State == StateRunning || tc.State == StateCreated
		pid, tpod := tc.Pid, tc.PodID
		target.mu.Unlock()
		if tpod != pod.ID {
			return nil, errdefs.Invalid("config.linux.security_context.namespace_options.target_id", "container %.12s is in another pod", tc.ID)
		}
		if !running || pid <= 0 {
			return nil, precondition("target container %.12s is not running", tc.ID)
		}
		in.TargetPIDNS = fmt.Sprintf("/proc/%d/ns/pid", pid)
	}
	return in, nil
}

// monitorCgroup is where conmon goes. With cgroupfs: the pod's cgroup
// when the handler says monitor_cgroup = "pod", else the daemon's (nil).
// With systemd: a scope crio-conmon-<id>.scope of its own, in the pod's
// slice or in the handler's slice (system.slice by default, as CRI-O
// does), so that no monitor lives in crio.service: restarting or stopping
// the daemon's unit leaves every monitor and container alone.
func (s *Service) monitorCgroup(h Handler, pod *sandbox.Sandbox, id string) (*cgroups.Cgroup, error) {
	if !s.opts.SystemdCgroup || s.opts.Cgroups == nil {
		if h.MonitorInPod {
			return pod.Cgroup, nil
		}
		return nil, nil
	}
	parent := "/system.slice"
	switch {
	case h.MonitorInPod && pod.Cgroup != nil:
		parent = pod.Cgroup.Path
	case h.MonitorSlice != "":
		p, err := cgroups.SlicePath(h.MonitorSlice)
		if err != nil {
			return nil, err
		}
		parent = p
	}
	cg, err := s.opts.Cgroups.Create(path.Join(parent, "crio-conmon-"+id+".scope"))
	if err != nil {
		return nil, fmt.Errorf("conmon's scope: %w", err)
	}
	return cg, nil
}

// ownPIDNamespace reports whether the spec gives the container a new PID
// namespace (one with no path to join).
func ownPIDNamespace(s *rspec.Spec) bool {
	if s == nil || s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == rspec.PIDNamespace {
			return ns.Path == ""
		}
	}
	return false
}
