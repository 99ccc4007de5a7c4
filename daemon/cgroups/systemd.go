package cgroups

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// Systemd is the systemd cgroup driver. Pod cgroups are slices and the
// processes crio places itself (the pod init, conmon) are transient
// scopes, all created and stopped through systemd's D-Bus API, so systemd
// owns every directory of the tree it manages. The directories are still
// read directly (stats), where systemd put them: a slice's cgroupfs path
// is its nesting ("a-b-c.slice" is /a.slice/a-b.slice/a-b-c.slice).
type Systemd struct {
	*Host
}

// NewSystemd returns the driver for host, after checking that systemd
// answers on its bus.
func NewSystemd(host *Host) (*Systemd, error) {
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	if _, err := bus(ctx); err != nil {
		return nil, err
	}
	return &Systemd{Host: host}, nil
}

// busTimeout bounds one call to systemd, job included.
const busTimeout = 30 * time.Second

var (
	busMu   sync.Mutex
	busConn *sdbus.Conn
)

// bus returns the connection to systemd, reconnecting after a loss (a
// daemon-reexec of systemd closes it). The private socket needs no
// D-Bus broker, which minimal node images do not run.
func bus(ctx context.Context) (*sdbus.Conn, error) {
	busMu.Lock()
	defer busMu.Unlock()
	if busConn != nil && busConn.Connected() {
		return busConn, nil
	}
	c, err := sdbus.NewSystemdConnectionContext(ctx)
	if err != nil {
		c, err = sdbus.NewSystemConnectionContext(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to systemd: %w", err)
	}
	busConn = c
	return c, nil
}

// Create makes the cgroup for path, a cgroupfs path whose last element
// names a systemd unit: a slice is started now (unless it exists: the
// kubelet made it, and it stays the kubelet's); a scope is described and
// started by Join with its first process. Parent slices are systemd's to
// create, implicitly.
func (s *Systemd) Create(p string) (*Cgroup, error) {
	unit := path.Base(p)
	cg := &Cgroup{Path: p}
	for _, root := range s.Roots {
		cg.Dirs = append(cg.Dirs, filepath.Join(root, p))
	}
	switch {
	case strings.HasSuffix(unit, ".slice"):
		if err := checkUnitName(unit); err != nil {
			return nil, err
		}
		if _, err := SlicePath(unit); err != nil {
			return nil, err
		}
		started, err := startUnit(unit, []sdbus.Property{
			sdbus.PropDescription("crio pod slice " + unit),
			{Name: "DefaultDependencies", Value: godbus.MakeVariant(false)},
		})
		if err != nil {
			return nil, err
		}
		cg.Slice = unit
		if started {
			cg.Unit = unit
		}
	case strings.HasSuffix(unit, ".scope"):
		if err := checkUnitName(unit); err != nil {
			return nil, err
		}
		parent := path.Base(path.Dir(p))
		if !strings.HasSuffix(parent, ".slice") {
			return nil, fmt.Errorf("systemd cgroup %s: a scope must be in a slice", p)
		}
		cg.Slice, cg.Unit, cg.pending = parent, unit, true
	default:
		return nil, fmt.Errorf("systemd cgroup %s: %q is neither a slice nor a scope", p, unit)
	}
	return cg, nil
}

// startUnit starts a transient unit and waits for its job. It returns
// false, without error, for a unit that already exists.
func startUnit(name string, props []sdbus.Property) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	c, err := bus(ctx)
	if err != nil {
		return false, err
	}
	done := make(chan string, 1)
	if _, err := c.StartTransientUnitContext(ctx, name, "replace", props, done); err != nil {
		var de godbus.Error
		if errors.As(err, &de) && de.Name == "org.freedesktop.systemd1.UnitExists" {
			return false, nil
		}
		return false, fmt.Errorf("start %s: %w", name, err)
	}
	select {
	case res := <-done:
		if res != "done" {
			return false, fmt.Errorf("start %s: job %s", name, res)
		}
		return true, nil
	case <-ctx.Done():
		return false, fmt.Errorf("start %s: %w", name, ctx.Err())
	}
}

// stopUnit stops a unit and waits for its job; a unit that is gone
// already is not an error.
func stopUnit(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	c, err := bus(ctx)
	if err != nil {
		return err
	}
	done := make(chan string, 1)
	if _, err := c.StopUnitContext(ctx, name, "replace", done); err != nil {
		var de godbus.Error
		if errors.As(err, &de) && de.Name == "org.freedesktop.systemd1.NoSuchUnit" {
			return nil
		}
		return fmt.Errorf("stop %s: %w", name, err)
	}
	select {
	case res := <-done:
		if res != "done" {
			return fmt.Errorf("stop %s: job %s", name, res)
		}
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w", name, ctx.Err())
	}
	// A transient unit lingers as "inactive" until systemd collects it;
	// a failed one would stay: reset it.
	_ = c.ResetFailedUnitContext(ctx, name)
	return nil
}

// startScope starts a transient scope holding pid in slice. Delegate
// gives the scope's processes its subtree (runc and conmon make none, but
// systemd then never touches what a process below creates).
func startScope(name, slice string, pid int) error {
	_, err := startUnit(name, []sdbus.Property{
		sdbus.PropDescription("crio " + name),
		sdbus.PropSlice(slice),
		sdbus.PropPids(uint32(pid)),
		{Name: "Delegate", Value: godbus.MakeVariant(true)},
		{Name: "DefaultDependencies", Value: godbus.MakeVariant(false)},
		{Name: "CollectMode", Value: godbus.MakeVariant("inactive-or-failed")},
	})
	return err
}

// SetLimits applies limits to the unit whose cgroup is at p (a pod's
// slice) as unit properties, so that systemd's view and the cgroup agree;
// v1 and v2 name them differently. systemd 252 has no v1 cpuset
// property, so cpusets are written to the cgroup directly, as systemd
// itself leaves them alone there.
func (s *Systemd) SetLimits(p string, l Limits) error {
	unit := path.Base(p)
	var props []sdbus.Property
	add := func(name string, v any) {
		props = append(props, sdbus.Property{Name: name, Value: godbus.MakeVariant(v)})
	}
	switch {
	case l.Memory > 0 && s.V2:
		add("MemoryMax", uint64(l.Memory))
	case l.Memory > 0:
		add("MemoryLimit", uint64(l.Memory))
	case l.Memory < 0 && s.V2:
		add("MemoryMax", uint64(math.MaxUint64))
	case l.Memory < 0:
		add("MemoryLimit", uint64(math.MaxUint64))
	}
	if l.CPUPeriod > 0 {
		add("CPUQuotaPeriodUSec", l.CPUPeriod)
	}
	switch {
	case l.CPUQuota > 0:
		period := l.CPUPeriod
		if period == 0 {
			period = 100_000
		}
		// systemd takes the quota per second of wall time.
		add("CPUQuotaPerSecUSec", uint64(l.CPUQuota)*1_000_000/period)
	case l.CPUQuota < 0:
		add("CPUQuotaPerSecUSec", uint64(math.MaxUint64))
	}
	if l.CPUShares > 0 {
		if s.V2 {
			add("CPUWeight", SharesToWeight(l.CPUShares))
		} else {
			add("CPUShares", l.CPUShares)
		}
	}
	if len(props) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
		defer cancel()
		c, err := bus(ctx)
		if err != nil {
			return err
		}
		if err := c.SetUnitPropertiesContext(ctx, unit, true, props...); err != nil {
			return fmt.Errorf("set limits of %s: %w", unit, err)
		}
	}
	if l.CpusetCpus != "" || l.CpusetMems != "" {
		return s.Host.SetLimits(p, Limits{CpusetCpus: l.CpusetCpus, CpusetMems: l.CpusetMems})
	}
	return nil
}

// SlicePath turns a slice name into the cgroupfs path systemd gives it:
// every dash-separated prefix is a parent slice.
func SlicePath(slice string) (string, error) {
	if err := checkUnitName(slice); err != nil {
		return "", err
	}
	return expandSlice(slice)
}

// checkUnitName refuses what systemd would refuse in a unit name, and
// what could not be a single path element.
func checkUnitName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("unit name %q: empty or longer than 255 bytes", name)
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == ':' || r == '_' || r == '.' || r == '-' || r == '\\' || r == '@':
		default:
			return fmt.Errorf("unit name %q: character %q is not allowed", name, r)
		}
	}
	if name == "." || name == ".." || strings.HasPrefix(name, ".") {
		return fmt.Errorf("unit name %q: starts with a dot", name)
	}
	return nil
}

// ContainerCgroupsPath is linux.cgroupsPath for a container of a pod in
// slice, in the form runc's systemd driver takes: "slice:prefix:name",
// which runc makes the scope crio-<id>.scope.
func ContainerCgroupsPath(slice, id string) string {
	return slice + ":crio:" + id
}

// ContainerScopePath is the cgroupfs path of that scope.
func ContainerScopePath(podPath, id string) string {
	return path.Join(podPath, "crio-"+id+".scope")
}
