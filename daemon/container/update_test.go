package container

import (
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestMergeResources(t *testing.T) {
	cur := &runtimeapi.LinuxContainerResources{
		CpuShares: 512, CpuQuota: 20000, CpuPeriod: 100000, MemoryLimitInBytes: 64 << 20,
		MemorySwapLimitInBytes: 128 << 20, OomScoreAdj: 100, CpusetCpus: "0",
	}
	orig := proto.Clone(cur)
	got := MergeResources(cur, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 256 << 20, CpuShares: 1024, OomScoreAdj: -999})
	want := &runtimeapi.LinuxContainerResources{
		CpuShares: 1024, CpuQuota: 20000, CpuPeriod: 100000, MemoryLimitInBytes: 256 << 20,
		OomScoreAdj: 100, CpusetCpus: "0",
	}
	if !proto.Equal(got, want) {
		t.Errorf("merged %v, want %v", got, want)
	}
	if !proto.Equal(cur, orig) {
		t.Errorf("the current resources were changed: %v", cur)
	}
	got = MergeResources(nil, &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 30, MemorySwapLimitInBytes: 2 << 30, Unified: map[string]string{"memory.high": "1"}})
	if got.MemorySwapLimitInBytes != 2<<30 || got.Unified["memory.high"] != "1" {
		t.Errorf("explicit swap: %v", got)
	}
	if got := MergeResources(cur, nil); !proto.Equal(got, cur) {
		t.Errorf("nil update: %v", got)
	}
}
