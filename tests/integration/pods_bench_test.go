package integration

import (
	"slices"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BenchmarkRunPodSandbox reports RunPodSandbox latency percentiles, one
// pod at a time, on the CNI bridge and on the host network:
//
//	go test -tags ... ./tests/integration -run '^$' -bench RunPodSandbox -benchtime 50x
func BenchmarkRunPodSandbox(b *testing.B) {
	for _, hostNet := range []bool{false, true} {
		name := "cni"
		if hostNet {
			name = "hostnet"
		}
		b.Run(name, func(b *testing.B) {
			d, _ := startPodDaemon(b)
			var lat []time.Duration
			var ids []string
			b.ResetTimer()
			for range b.N {
				cfg := podConfig("bench")
				if hostNet {
					cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
						Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_CONTAINER,
					}}
				}
				start := time.Now()
				resp, err := d.Runtime().RunPodSandbox(Context(b), &runtimeapi.RunPodSandboxRequest{Config: cfg})
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				ids = append(ids, resp.PodSandboxId)
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[(len(lat)*95)/100].Microseconds())/1000, "p95-ms")
			for _, id := range ids {
				ctx := Context(b)
				d.Runtime().StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
				d.Runtime().RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
			}
		})
	}
}
