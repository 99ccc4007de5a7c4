package cgroups

import (
	"fmt"
	"os"
)

// systemdRunDir exists only while systemd runs as PID 1 (sd_booted(3)).
const systemdRunDir = "/run/systemd/system"

// CheckManager refuses a cgroup manager this host cannot honour. The
// systemd driver hands pod and container cgroups to systemd; without
// systemd as PID 1 there is nothing to hand them to, and telling the
// kubelet "systemd" (RuntimeConfig) would make it pick a driver that
// cannot work, so crio does not start.
func CheckManager(manager string) error {
	return checkManager(manager, systemdRunDir)
}

func checkManager(manager, runDir string) error {
	switch manager {
	case "cgroupfs":
		return nil
	case "systemd":
		if fi, err := os.Stat(runDir); err != nil || !fi.IsDir() {
			return fmt.Errorf("crio.runtime.cgroup_manager = %q needs systemd as PID 1, and this host has none (%s is missing): set it to \"cgroupfs\"", manager, runDir)
		}
		return nil
	default:
		return fmt.Errorf("crio.runtime.cgroup_manager = %q: unknown (cgroupfs or systemd)", manager)
	}
}
