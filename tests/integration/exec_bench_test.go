package integration

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BenchmarkExecSync reports ExecSync latency percentiles through the
// daemon (gRPC, container lookup, process spec, runc exec), one call at a
// time, for "true" in a running busybox container, as an exec probe does:
//
//	go test -tags ... ./tests/integration -run '^$' -bench ExecSync -benchtime 100x
//
// The memory of one call is measured at the oci level (BenchmarkExecSync
// in daemon/oci), where the helpers can be put in a cgroup of their own.
func BenchmarkExecSync(b *testing.B) {
	e := startCtrDaemon(b, nil)
	rt := e.d.Runtime()
	pod := podConfig("execbench")
	pod.LogDirectory = filepath.Join(e.d.Dir, "podlogs")
	p, err := rt.RunPodSandbox(Context(b), &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		b.Fatal(err)
	}
	cfg := e.ctrConfig("execbench", "sleep", "100000")
	c, err := rt.CreateContainer(Context(b), &runtimeapi.CreateContainerRequest{PodSandboxId: p.PodSandboxId, Config: cfg, SandboxConfig: pod})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := rt.StartContainer(Context(b), &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		b.Fatal(err)
	}
	req := &runtimeapi.ExecSyncRequest{ContainerId: c.ContainerId, Cmd: []string{"true"}, Timeout: 10}
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		resp, err := rt.ExecSync(Context(b), req)
		lat = append(lat, time.Since(start))
		if err != nil || resp.ExitCode != 0 {
			b.Fatalf("ExecSync: %v %v", resp, err)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*95)/100].Microseconds())/1000, "p95-ms")
}
