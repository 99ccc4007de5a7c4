package server

import (
	"context"
	"log/slog"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/container"
)

// Names the CRI reports. CRI-O reports "0.1.0" as the kubelet runtime API
// version, and clients (crictl, the kubelet) only display it.
const (
	RuntimeName       = "crio"
	RuntimeAPIVersion = "v1"
	KubeletAPIVersion = "0.1.0"
)

// NetworkReadiness reports whether pods can get a network. The network
// package implements it (typically: a CNI configuration is loaded); until
// then NoNetwork answers.
type NetworkReadiness interface {
	// NetworkReady returns ready, or the reason (a CamelCase word, as the
	// kubelet shows it) and a human message saying why not.
	NetworkReady(ctx context.Context) (ready bool, reason, message string)
}

// NoNetwork is the NetworkReadiness of a daemon without pod networking.
type NoNetwork struct{}

// NetworkReady always says not ready, with the reason the kubelet expects.
func (NoNetwork) NetworkReady(context.Context) (bool, string, string) {
	return false, "NetworkPluginNotReady", "Network plugin returns error: pod networking is not available in this build of crio"
}

// RuntimeInfo answers the RPCs that describe the runtime itself: Version,
// Status and RuntimeConfig.
type RuntimeInfo struct {
	version      string
	cgroupDriver runtimeapi.CgroupDriver
	network      NetworkReadiness
	handlers     RuntimeHandlerLister // nil: none reported
	log          *slog.Logger         // never nil once served
}

// RuntimeHandlerLister lists the runtime handlers and what they can do;
// *container.Service implements it.
type RuntimeHandlerLister interface {
	RuntimeHandlers() []container.HandlerInfo
}

// NewRuntimeInfo returns the handler group. cgroupManager is the configured
// crio.runtime.cgroup_manager; a nil network means NoNetwork.
func NewRuntimeInfo(version, cgroupManager string, network NetworkReadiness) *RuntimeInfo {
	if network == nil {
		network = NoNetwork{}
	}
	return &RuntimeInfo{version: version, cgroupDriver: CgroupDriver(cgroupManager), network: network}
}

// CgroupDriver maps crio.runtime.cgroup_manager to the CRI enum. Only
// "cgroupfs" is cgroupfs; anything else is systemd, as in CRI-O.
func CgroupDriver(cgroupManager string) runtimeapi.CgroupDriver {
	if cgroupManager == "cgroupfs" {
		return runtimeapi.CgroupDriver_CGROUPFS
	}
	return runtimeapi.CgroupDriver_SYSTEMD
}

// Version returns the runtime name and versions.
func (h *RuntimeInfo) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           KubeletAPIVersion,
		RuntimeName:       RuntimeName,
		RuntimeVersion:    h.version,
		RuntimeApiVersion: RuntimeAPIVersion,
	}, nil
}

// Status reports the RuntimeReady and NetworkReady conditions.
func (h *RuntimeInfo) Status(ctx context.Context, _ *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	netReady, reason, message := h.network.NetworkReady(ctx)
	netCond := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: netReady}
	if !netReady {
		netCond.Reason, netCond.Message = reason, message
	}
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true},
			netCond,
		}},
		// Supplemental groups follow the container's
		// supplemental_groups_policy (Merge or Strict).
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if h.handlers != nil {
		for _, rh := range h.handlers.RuntimeHandlers() {
			resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{
				Name: rh.Name,
				Features: &runtimeapi.RuntimeHandlerFeatures{
					RecursiveReadOnlyMounts: rh.RecursiveReadOnly,
					UserNamespaces:          false, // not implemented
				},
			})
		}
	}
	return resp, nil
}

// RuntimeConfig reports the cgroup driver so that the kubelet can match it
// instead of failing on a mismatch later.
func (h *RuntimeInfo) RuntimeConfig(context.Context, *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{
		Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: h.cgroupDriver},
	}, nil
}

// UpdateRuntimeConfig accepts what the kubelet sends on every node status
// sync (the node's pod CIDR) and answers success, as CRI-O does: pod
// addresses come from the CNI configuration (host-local's range), so crio
// has nothing to change. The CIDR is logged at debug for troubleshooting.
func (h *RuntimeInfo) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	log := h.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.DebugContext(ctx, "UpdateRuntimeConfig", "pod_cidr", req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr())
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}
