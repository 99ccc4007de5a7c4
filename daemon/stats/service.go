// Package stats answers the CRI's stats and metrics RPCs: container and
// pod resource usage read from cgroups (v1 or v2), the writable layer's
// disk usage (measured by a bounded walk, cached), and the pod's network
// counters read inside its network namespace.
package stats

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/sandbox"
	"github.com/crio-appliance/crio/daemon/spec"
)

// ErrNotFound is returned for an unknown container or pod.
var ErrNotFound = errdefs.New(errdefs.ErrNotFound, "not found")

// Containers lists containers; *container.Service implements it.
type Containers interface {
	Get(id string) (*container.Container, error)
	List(f container.Filter) []*container.Container
}

// Pods lists pods; *sandbox.Service implements it.
type Pods interface {
	Get(id string) (*sandbox.Sandbox, error)
	List(f sandbox.Filter) []*sandbox.Sandbox
}

// Options configure a Service.
type Options struct {
	Containers Containers
	Pods       Pods
	// Cgroups finds cgroup directories; CgroupV2 selects the unified
	// layout.
	Cgroups  Dirs
	CgroupV2 bool
	// StorageRoot is the containers/storage root: the filesystem the
	// writable layers live on, named in their usage.
	StorageRoot string
	// MaxLayerEntries bounds one walk of a writable layer; 0 means
	// 500000.
	MaxLayerEntries int
	Logger          *slog.Logger
}

// Service computes stats. Its methods are safe for concurrent use.
type Service struct {
	opts     Options
	log      *slog.Logger
	reader   *Reader
	cpu      *cpuRates
	layers   *layerCache
	memTotal uint64
	procRoot string
}

// New returns a Service. Close stops its background work.
func New(opts Options) (*Service, error) {
	if opts.Containers == nil || opts.Pods == nil || opts.Cgroups == nil {
		return nil, errors.New("stats: containers, pods and cgroups are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		opts: opts, log: log,
		reader:   NewReader(opts.Cgroups, opts.CgroupV2),
		cpu:      newCPURates(),
		layers:   newLayerCache(opts.MaxLayerEntries),
		memTotal: memTotal("/proc/meminfo"),
		procRoot: "/proc",
	}, nil
}

// Close stops the background measurements of writable layers.
func (s *Service) Close() { s.layers.close() }

// containerCgroup is the cgroup a container runs in, by the rule the spec
// generator used for it.
func containerCgroup(c *container.Container, pod *sandbox.Sandbox) string {
	parent := ""
	if pod != nil && pod.Cgroup != nil {
		parent = pod.Cgroup.Path
		if pod.Cgroup.Slice != "" {
			return cgroups.ContainerScopePath(parent, c.ID)
		}
	}
	return spec.ContainerCgroupPath(parent, c.ID)
}

// writableLayer is the directory holding a container's changes: with the
// overlay driver the rootfs is <layer>/merged and the changes are in
// <layer>/diff (as cAdvisor's CRI-O handler assumes too); with other
// drivers (vfs) the rootfs directory itself.
func writableLayer(rootfs string) string {
	if rootfs == "" {
		return ""
	}
	if filepath.Base(rootfs) == "merged" {
		diff := filepath.Join(filepath.Dir(rootfs), "diff")
		if fi, err := os.Lstat(diff); err == nil && fi.IsDir() {
			return diff
		}
	}
	return rootfs
}

// hasCgroup says whether a container in this state has a cgroup to read:
// runc makes it at create and removes it when the container is deleted.
func hasCgroup(c *container.Container) bool {
	return c.State == container.StateCreated || c.State == container.StateRunning
}

// memTotal reads the machine's memory size, the limit of a cgroup that has
// none.
func memTotal(meminfo string) uint64 {
	f, err := os.Open(meminfo)
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// "MemTotal:       16318504 kB"
		rest, ok := strings.CutPrefix(s.Text(), "MemTotal:")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB"))
		kb, err := strconv.ParseUint(rest, 10, 64)
		if err != nil {
			return 0
		}
		return mulSat(kb, 1024)
	}
	return 0
}

// podsByID indexes the pods, so a list of containers finds each one's pod
// without a lookup per container.
func (s *Service) podsByID() map[string]*sandbox.Sandbox {
	pods := s.opts.Pods.List(sandbox.Filter{})
	m := make(map[string]*sandbox.Sandbox, len(pods))
	for _, p := range pods {
		m[p.ID] = p
	}
	return m
}

func (s *Service) getContainer(id string) (*container.Container, error) {
	c, err := s.opts.Containers.Get(id)
	if errors.Is(err, container.ErrNotFound) {
		return nil, fmt.Errorf("%w: container %q", ErrNotFound, errdefs.Clip(id))
	}
	if err != nil {
		return nil, err
	}
	if c.State == container.StateCreating {
		return nil, fmt.Errorf("%w: container %q is still being created", ErrNotFound, errdefs.Clip(id))
	}
	return c, nil
}

func (s *Service) getPod(id string) (*sandbox.Sandbox, error) {
	p, err := s.opts.Pods.Get(id)
	if errors.Is(err, sandbox.ErrNotFound) {
		return nil, fmt.Errorf("%w: pod sandbox %q", ErrNotFound, errdefs.Clip(id))
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}
