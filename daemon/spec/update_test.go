package spec

import (
	"errors"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

func TestUpdateResources(t *testing.T) {
	host := &fakeHost{facts: HostFacts{SwapAccounting: true, MinOOMScoreAdj: -500}}
	res, warnings, err := UpdateResources(host, 4<<20, &runtimeapi.LinuxContainerResources{
		MemoryLimitInBytes: 64 << 20, CpuShares: 512, CpuQuota: 20000, CpuPeriod: 100000,
		HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 1 << 21}}, OomScoreAdj: -999,
	})
	if err != nil {
		t.Fatal(err)
	}
	if *res.Memory.Limit != 64<<20 || *res.Memory.Swap != 64<<20 || *res.CPU.Shares != 512 || *res.CPU.Quota != 20000 || len(res.HugepageLimits) != 0 {
		t.Errorf("%+v %+v %+v", res.Memory, res.CPU, res.HugepageLimits)
	}
	if len(warnings) != 2 { // hugepages without hugetlb; oom_score_adj raised
		t.Errorf("warnings %q", warnings)
	}
	_, _, err = UpdateResources(host, 4<<20, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20})
	ie, ok := err.(*errdefs.InvalidArgumentError)
	if !ok || ie.Field != "linux.memory_limit_in_bytes" {
		t.Errorf("below the minimum: %v", err)
	}
	if _, _, err := UpdateResources(host, 0, &runtimeapi.LinuxContainerResources{Unified: map[string]string{"../x": "1"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unified key: %v", err)
	}
}

func TestContainerCgroupPath(t *testing.T) {
	if p := ContainerCgroupPath("/kubepods/pod1", "abc"); p != "/kubepods/pod1/crio-abc" {
		t.Error(p)
	}
	if p := ContainerCgroupPath("", "abc"); p != "/crio/crio-abc" {
		t.Error(p)
	}
}
