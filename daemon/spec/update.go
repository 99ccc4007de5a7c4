package spec

import (
	"errors"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// UpdateResources checks the resources of an UpdateContainerResources (or
// a pod's summed resources) by the same rules as at creation and converts
// them to the runtime's form. A zero field means "leave as it is", which
// is also how `runc update` reads a field left out. oom_score_adj is
// checked but not returned: no runtime can change it after start.
// Warnings name the limits the host cannot hold (left out, as at create).
func UpdateResources(host Host, minMemory int64, r *runtimeapi.LinuxContainerResources) (*rspec.LinuxResources, []string, error) {
	in := &Input{Host: host, Defaults: Defaults{ContainerMinMemory: minMemory}}
	out, _, warnings, err := resources(in, r)
	var ie *errdefs.InvalidArgumentError
	if errors.As(err, &ie) {
		// The request's field is linux.<name>, not the create request's.
		return nil, nil, &errdefs.InvalidArgumentError{Field: strings.Replace(ie.Field, "config.linux.resources", "linux", 1), Reason: ie.Reason}
	}
	if err != nil {
		return nil, nil, err
	}
	return out, warnings, nil
}

// ContainerCgroupPath is the cgroup (cgroupfs path) a container of a pod
// whose cgroup is podCgroup runs in: the same rule the spec's
// linux.cgroupsPath follows, for the readers of a container's cgroup
// (stats).
func ContainerCgroupPath(podCgroup, id string) string {
	return cgroupsPath(&Input{ID: id, Pod: Pod{CgroupParent: podCgroup}})
}
