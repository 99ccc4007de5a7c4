package sandbox

import (
	"errors"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/errdefs"
)

func TestPodLimits(t *testing.T) {
	res := &runtimeapi.LinuxContainerResources{CpuShares: 1024, CpuQuota: 50000, CpuPeriod: 100000, MemoryLimitInBytes: 1 << 30, CpusetCpus: "0-1"}
	over := &runtimeapi.LinuxContainerResources{CpuShares: 100, CpuQuota: 5000, CpuPeriod: 50000, MemoryLimitInBytes: 64 << 20}
	got := PodLimits(over, res)
	want := cgroups.Limits{CPUShares: 1124, CPUQuota: 60000, CPUPeriod: 100000, CpusetCpus: "0-1", Memory: 1<<30 + 64<<20}
	if got != want {
		t.Errorf("%+v, want %+v", got, want)
	}
	// Unlimited stays unlimited whatever the overhead.
	if got := PodLimits(over, &runtimeapi.LinuxContainerResources{CpuQuota: -1}); got.CPUQuota != -1 || got.Memory != 0 || got.CPUShares != 0 {
		t.Errorf("%+v", got)
	}
	if got := PodLimits(over, nil); got != (cgroups.Limits{}) {
		t.Errorf("overhead alone: %+v", got)
	}
	// No overflow with hostile overheads.
	huge := &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 62}
	if got := PodLimits(huge, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 62}); got.Memory != 1<<62 {
		t.Errorf("overflow: %+v", got)
	}
}

func TestCheckPodResources(t *testing.T) {
	for _, r := range []*runtimeapi.LinuxContainerResources{
		{CpuShares: 1}, {CpuShares: 300000}, {CpuQuota: 999}, {CpuQuota: 1 << 41}, {CpuPeriod: 10}, {MemoryLimitInBytes: -1},
		{CpusetCpus: "0-1;rm"}, {CpusetMems: "../x"},
	} {
		var inv *errdefs.InvalidArgumentError
		if err := checkPodResources("resources", r); !errors.As(err, &inv) {
			t.Errorf("%v: %v", r, err)
		}
	}
	for _, r := range []*runtimeapi.LinuxContainerResources{nil, {}, {CpuQuota: -1, CpuShares: 2, CpusetCpus: "0,2-3"}} {
		if err := checkPodResources("resources", r); err != nil {
			t.Errorf("%v: %v", r, err)
		}
	}
}
