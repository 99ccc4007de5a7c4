package container

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	units "github.com/docker/go-units"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/config"
	"github.com/crio-appliance/crio/daemon/oci"
	"github.com/crio-appliance/crio/daemon/sandbox"
	"github.com/crio-appliance/crio/daemon/spec"
)

// OptionsFromConfig maps the configuration to Options and sets up the
// runtime handlers; the caller adds Pods, Images and Storage.
//
// Records live under root (persistent: a container's storage layer
// outlives a reboot and must still be removable), their volatile writes
// (state.Records) under runroot; bundles live under runroot, which a
// reboot clears along with the containers themselves.
//
// A handler whose runtime or monitor binary is missing is left out with a
// warning, unless it is the default handler, which must work.
func OptionsFromConfig(cfg *config.Config, log *slog.Logger) (Options, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rc := cfg.Runtime
	o := Options{
		StateDir:         filepath.Join(cfg.Root, "crio-containers"),
		VolatileStateDir: sandbox.VolatileStateDir(cfg, "crio-container-records"),
		RunDir:           filepath.Join(cfg.RunRoot, "crio-containers"),
		ExitDir:          rc.ContainerExitsDir,
		Handlers:         map[string]Handler{},
		DefaultHandler:   rc.DefaultRuntime,
		Defaults: spec.Defaults{
			Capabilities:               append([]string(nil), rc.DefaultCapabilities...),
			AddInheritableCapabilities: rc.AddInheritableCapabilities,
			Env:                        append([]string(nil), rc.DefaultEnv...),
			Ulimits:                    append([]string(nil), rc.DefaultUlimits...),
			ReadOnly:                   rc.ReadOnly,
			AppArmorProfile:            rc.ApparmorProfile,
			AdditionalDevices:          append([]string(nil), rc.AdditionalDevices...),
			AbsentMountSourcesToReject: append([]string(nil), rc.AbsentMountSourcesToReject...),
		},
		Host:            &spec.RealHost{},
		ImageVolumes:    cfg.Image.ImageVolumes,
		KillTimeout:     time.Duration(rc.CtrStopTimeout) * time.Second,
		MonitorLogLevel: monitorLevel(rc.LogLevel),
		SystemdCgroup:   rc.CgroupManager == "systemd",
		Logger:          log,
	}
	if rc.SeccompProfile != "" {
		data, err := os.ReadFile(rc.SeccompProfile)
		if err != nil {
			return Options{}, fmt.Errorf("crio.runtime.seccomp_profile: %w", err)
		}
		if _, err := spec.ParseProfile(data); err != nil {
			return Options{}, fmt.Errorf("crio.runtime.seccomp_profile %s: %w", rc.SeccompProfile, err)
		}
		o.Defaults.SeccompProfile = data
	}
	names := make([]string, 0, len(rc.Runtimes))
	for n := range rc.Runtimes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		h := rc.Runtimes[name]
		if h.RuntimeType != "" && h.RuntimeType != "oci" {
			log.Warn("runtime handler left out: only runtime_type oci is supported", "handler", name, "runtime_type", h.RuntimeType)
			continue
		}
		rt, err := oci.New(oci.Config{
			Name: name, RuntimePath: h.RuntimePath, RuntimeRoot: h.RuntimeRoot,
			MonitorPath: h.MonitorPath, MonitorEnv: h.MonitorEnv,
			ExitDir: rc.ContainerExitsDir, SocketDir: rc.ContainerAttachSocketDir,
			LogSizeMax: rc.LogSizeMax, NoSyncLog: h.NoSyncLog, Logger: log,
			SystemdCgroup: rc.CgroupManager == "systemd",
		})
		if err != nil {
			if name == rc.DefaultRuntime {
				return Options{}, err
			}
			log.Warn("runtime handler left out", "handler", name, "error", err)
			continue
		}
		var minMem int64
		if h.ContainerMinMemory != "" {
			if minMem, err = units.RAMInBytes(h.ContainerMinMemory); err != nil {
				return Options{}, fmt.Errorf("crio.runtime.runtimes.%s.container_min_memory: %w", name, err)
			}
		}
		monitorSlice := ""
		switch {
		case h.MonitorCgroup == "" || h.MonitorCgroup == "pod":
		case rc.CgroupManager == "systemd" && strings.HasSuffix(h.MonitorCgroup, ".slice"):
			if _, err := cgroups.SlicePath(h.MonitorCgroup); err != nil {
				return Options{}, fmt.Errorf("crio.runtime.runtimes.%s.monitor_cgroup: %w", name, err)
			}
			monitorSlice = h.MonitorCgroup
		default:
			log.Warn("monitor_cgroup takes \"\", \"pod\" or, with the systemd cgroup manager, a slice; conmon stays in crio's cgroup", "handler", name, "monitor_cgroup", h.MonitorCgroup)
		}
		// "rro" makes CRI recursive read-only mounts possible (runc 1.1+
		// on Linux 5.12+); a runtime that cannot say keeps them refused.
		rro := false
		if f, err := rt.Features(context.Background()); err != nil {
			log.Debug("runtime features unknown", "handler", name, "error", err)
		} else {
			rro = f.HasMountOption("rro")
		}
		o.Handlers[name] = Handler{
			Runtime:                      rt,
			RecursiveReadOnly:            rro,
			ContainerMinMemory:           minMem,
			PrivilegedWithoutHostDevices: h.PrivilegedWithoutHostDevices,
			AllowedAnnotations:           append([]string(nil), h.AllowedAnnotations...),
			MonitorInPod:                 h.MonitorCgroup == "pod",
			MonitorSlice:                 monitorSlice,
		}
	}
	return o, nil
}

// monitorLevel maps crio's log level to conmon's.
func monitorLevel(l string) string {
	switch l {
	case "trace", "debug":
		return "debug"
	case "info":
		return "info"
	case "warn":
		return "warn"
	}
	return "error"
}
