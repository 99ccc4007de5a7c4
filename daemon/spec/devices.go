package spec

import (
	"errors"
	"fmt"
	"path"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// device is a host device node to create in the container and allow in
// the device cgroup.
type device struct {
	rspec.LinuxDevice
	access string
}

// devices collects the devices the container gets: the CRI's, the
// configured additional_devices, and for privileged containers every host
// device.
func devices(in *Input, cfg *runtimeapi.ContainerConfig, privileged bool) (devs []device, allowAll bool, err error) {
	if privileged && !in.Defaults.PrivilegedWithoutHostDevices {
		all, err := in.Host.AllDevices()
		if err != nil {
			return nil, false, err
		}
		for _, d := range all {
			devs = append(devs, device{LinuxDevice: d, access: "rwm"})
		}
		allowAll = true
	}
	for i, s := range in.Defaults.AdditionalDevices {
		host, ctr, perms, err := parseDeviceSpec(s)
		if err != nil {
			return nil, false, fmt.Errorf("crio.runtime.additional_devices[%d]: %w", i, err)
		}
		ds, err := deviceNodes(in.Host, host, ctr, perms)
		if err != nil {
			return nil, false, fmt.Errorf("crio.runtime.additional_devices[%d]: %w", i, err)
		}
		devs = append(devs, ds...)
	}
	if len(cfg.GetDevices()) > maxDevices {
		return nil, false, errdefs.Invalid("config.devices", "more than %d devices", maxDevices)
	}
	for i, d := range cfg.GetDevices() {
		field := fmt.Sprintf("config.devices[%d]", i)
		if err := checkHostPath(d.GetHostPath(), field+".host_path"); err != nil {
			return nil, false, err
		}
		ctr, err := containerPath(d.GetContainerPath(), field+".container_path")
		if err != nil {
			return nil, false, err
		}
		perms := d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		if !validAccess(perms) {
			return nil, false, errdefs.Invalid(field+".permissions", "%q is not a combination of r, w and m", errdefs.Clip(perms))
		}
		ds, err := deviceNodes(in.Host, path.Clean(d.GetHostPath()), ctr, perms)
		if errors.Is(err, ErrNotFound) {
			return nil, false, errdefs.Invalid(field+".host_path", "%v", err)
		}
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", field, err)
		}
		devs = append(devs, ds...)
	}
	return devs, allowAll, nil
}

// deviceNodes maps host devices (one node, or all below a directory) to
// their places in the container.
func deviceNodes(h Host, host, ctr, perms string) ([]device, error) {
	found, err := h.Devices(host)
	if err != nil {
		return nil, err
	}
	var out []device
	for _, d := range found {
		rel := strings.TrimPrefix(d.Path, host)
		d.Path = path.Join(ctr, rel)
		out = append(out, device{LinuxDevice: d, access: perms})
	}
	return out, nil
}

// parseDeviceSpec reads "host[:container[:perms]]".
func parseDeviceSpec(s string) (host, ctr, perms string, err error) {
	parts := strings.Split(s, ":")
	if len(parts) > 3 || parts[0] == "" {
		return "", "", "", fmt.Errorf("%q is not host[:container[:permissions]]", s)
	}
	host, ctr, perms = parts[0], parts[0], "rwm"
	if len(parts) > 1 && parts[1] != "" {
		ctr = parts[1]
	}
	if len(parts) > 2 {
		perms = parts[2]
	}
	if !path.IsAbs(host) || !path.IsAbs(ctr) || !validAccess(perms) {
		return "", "", "", fmt.Errorf("%q is not host[:container[:permissions]]", s)
	}
	return path.Clean(host), path.Clean(ctr), perms, nil
}

func validAccess(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for i, c := range s {
		if !strings.ContainsRune("rwm", c) || strings.ContainsRune(s[:i], c) {
			return false
		}
	}
	return true
}
