package sandbox

import (
	"maps"
	"path/filepath"
	"slices"

	"github.com/crio-appliance/crio/daemon/config"
)

// OptionsFromConfig maps the configuration to Options; the caller adds
// Network, Cgroups and Logger.
//
// Records live under root (persistent): after a reboot they still name the
// pods, whose CNI allocations (host-local keeps them on disk) must be
// released by Stop/Remove; their volatile writes (state.Records) live
// under runroot (see VolatileStateDir). Generated files and shm live under
// runroot too, which a reboot clears along with the namespaces.
func OptionsFromConfig(cfg *config.Config) Options {
	return Options{
		StateDir:         filepath.Join(cfg.Root, "crio-sandboxes"),
		VolatileStateDir: VolatileStateDir(cfg, "crio-sandbox-records"),
		RunDir:           filepath.Join(cfg.RunRoot, "crio-sandboxes"),
		// The pod init is executed from here, so not under runroot: on
		// hosts booted with initramfs-tools /run is mounted noexec. The
		// storage root must allow exec anyway (container root file
		// systems live there).
		InitRootDir:     filepath.Join(cfg.Root, "crio-pod-init"),
		NamespacesDir:   cfg.Runtime.NamespacesDir,
		LogDir:          cfg.LogDir,
		CgroupManager:   cfg.Runtime.CgroupManager,
		DefaultSysctls:  append([]string(nil), cfg.Runtime.DefaultSysctls...),
		RuntimeHandlers: slices.Sorted(maps.Keys(cfg.Runtime.Runtimes)),
	}
}

// VolatileStateDir is where the pod or container records of cfg keep their
// volatile writes (state.Records): dir under runroot. With internal_wipe
// (the default) a reboot removes every pod and container, and the synced
// writes name all that outlives it; without, the kubelet is to find every
// pod and container again after a reboot, as last recorded, so every
// write is synced ("").
func VolatileStateDir(cfg *config.Config, dir string) string {
	if !cfg.InternalWipe {
		return ""
	}
	return filepath.Join(cfg.RunRoot, dir)
}
