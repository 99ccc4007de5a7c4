package integration

import (
	"slices"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BenchmarkRunPodSandbox reports RunPodSandbox latency percentiles, one
// pod at a time, on the CNI bridge and on the host network, with and
// without a shared PID namespace (which starts the pod init):
//
//	go test -tags ... ./tests/integration -run '^$' -bench RunPodSandbox -benchtime 50x
func BenchmarkRunPodSandbox(b *testing.B) {
	for _, v := range []struct {
		name               string
		hostNet, sharedPID bool
	}{{"cni-sharedpid", false, true}, {"cni", false, false}, {"hostnet-sharedpid", true, true}, {"hostnet", true, false}} {
		b.Run(v.name, func(b *testing.B) {
			d, _ := startPodDaemon(b)
			var lat []time.Duration
			var ids []string
			b.ResetTimer()
			for range b.N {
				cfg := podConfig("bench")
				ns := &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}
				if v.hostNet {
					ns.Network = runtimeapi.NamespaceMode_NODE
				}
				if v.sharedPID {
					ns.Pid = runtimeapi.NamespaceMode_POD
				}
				cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns}
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
