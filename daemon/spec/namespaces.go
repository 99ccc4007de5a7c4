package spec

import (
	"path"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/errdefs"
)

// namespaces places the container: in the pod's pinned network, IPC and
// UTS namespaces (none, i.e. the host's, where the pod uses the host's);
// in a PID namespace by its pid mode; in mount and (on cgroup v2) cgroup
// namespaces of its own.
func namespaces(in *Input, sc *runtimeapi.LinuxContainerSecurityContext) ([]rspec.LinuxNamespace, error) {
	const field = "config.linux.security_context.namespace_options"
	ns := []rspec.LinuxNamespace{{Type: rspec.MountNamespace}}
	for _, p := range []struct {
		t    rspec.LinuxNamespaceType
		path string
	}{{rspec.NetworkNamespace, in.Pod.NetNS}, {rspec.IPCNamespace, in.Pod.IPCNS}, {rspec.UTSNamespace, in.Pod.UTSNS}} {
		if p.path != "" {
			ns = append(ns, rspec.LinuxNamespace{Type: p.t, Path: p.path})
		}
	}
	opts := sc.GetNamespaceOptions()
	switch mode := opts.GetPid(); {
	case in.Pod.HostPID || mode == runtimeapi.NamespaceMode_NODE:
		// the host's: no entry
	case mode == runtimeapi.NamespaceMode_POD && in.Pod.PIDNS != "":
		ns = append(ns, rspec.LinuxNamespace{Type: rspec.PIDNamespace, Path: in.Pod.PIDNS})
	case mode == runtimeapi.NamespaceMode_POD || mode == runtimeapi.NamespaceMode_CONTAINER:
		// A pod without a shared PID namespace: each container its own.
		ns = append(ns, rspec.LinuxNamespace{Type: rspec.PIDNamespace})
	case mode == runtimeapi.NamespaceMode_TARGET:
		if opts.GetTargetId() == "" || in.TargetPIDNS == "" {
			return nil, errdefs.Invalid(field+".target_id", "pid mode TARGET needs the id of a running container in the same pod")
		}
		ns = append(ns, rspec.LinuxNamespace{Type: rspec.PIDNamespace, Path: in.TargetPIDNS})
	default:
		return nil, errdefs.Invalid(field+".pid", "unknown namespace mode %d", mode)
	}
	if u := opts.GetUsernsOptions(); u != nil && u.GetMode() != runtimeapi.NamespaceMode_NODE {
		return nil, unsupported(field+".userns_options", "user namespaces")
	}
	if in.Host.Facts().CgroupV2 {
		ns = append(ns, rspec.LinuxNamespace{Type: rspec.CgroupNamespace})
	}
	return ns, nil
}

// cgroupsPath is the container's cgroup below the pod's.
func cgroupsPath(in *Input) string {
	if in.Pod.CgroupSlice != "" {
		return cgroups.ContainerCgroupsPath(in.Pod.CgroupSlice, in.ID)
	}
	parent := in.Pod.CgroupParent
	if parent == "" {
		parent = "/crio"
	}
	return path.Join(parent, "crio-"+in.ID)
}

// stopSignal is the CRI's stop_signal, else the image's StopSignal, else
// SIGTERM, as a name the runtime's kill accepts.
func stopSignal(cfg *runtimeapi.ContainerConfig, imgSignal string) (string, error) {
	if s := cfg.GetStopSignal(); s != runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		name, ok := runtimeapi.Signal_name[int32(s)]
		sig, known := ParseSignal(criSignalName(name))
		if !ok || !known {
			return "", errdefs.Invalid("config.stop_signal", "unknown signal %d", s)
		}
		return sig, nil
	}
	if imgSignal != "" {
		if name, ok := ParseSignal(imgSignal); ok {
			return name, nil
		}
	}
	return "SIGTERM", nil
}

// criSignalName turns the CRI enum's names (SIGNAL_SIGTERM,
// SIGNAL_SIGRTMINPLUS3, SIGNAL_SIGRTMAXMINUS2, SIGNAL_SIGCLD) into ones
// ParseSignal reads.
func criSignalName(n string) string {
	n = strings.TrimPrefix(n, "SIGNAL_")
	if rest, ok := strings.CutPrefix(n, "SIGRTMINPLUS"); ok {
		return "SIGRTMIN+" + rest
	}
	if rest, ok := strings.CutPrefix(n, "SIGRTMAXMINUS"); ok {
		return "SIGRTMAX-" + rest
	}
	return n
}

// signalAliases are names glibc knows but the Go tables do not.
var signalAliases = map[string]string{"SIGCLD": "SIGCHLD", "SIGIOT": "SIGABRT", "SIGPOLL": "SIGIO"}

// ParseSignal reads "SIGTERM", "TERM", "15" or "SIGRTMIN+3"; the result is
// the canonical name or, for a numbered signal without one, the number.
func ParseSignal(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return "", false
		}
		if name := unix.SignalName(unix.Signal(n)); name != "" {
			return name, true
		}
		return strconv.Itoa(n), true
	}
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	if a, ok := signalAliases[s]; ok {
		s = a
	}
	if unix.SignalNum(s) != 0 {
		return s, true
	}
	// Real-time signals: glibc reserves 32 and 33, so SIGRTMIN is 34.
	switch {
	case s == "SIGRTMIN":
		return "34", true
	case s == "SIGRTMAX":
		return "64", true
	}
	if rest, ok := strings.CutPrefix(s, "SIGRTMIN+"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && 34+n <= 64 {
			return strconv.Itoa(34 + n), true
		}
	}
	if rest, ok := strings.CutPrefix(s, "SIGRTMAX-"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && 64-n >= 34 {
			return strconv.Itoa(64 - n), true
		}
	}
	return "", false
}
