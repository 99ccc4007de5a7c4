// Command podupdate calls the CRI's UpdatePodSandboxResources, which
// crictl has no command for, so that the package tests can change a pod's
// limits in a booted root.
//
//	podupdate -endpoint unix:///var/run/crio/crio.sock -memory BYTES -cpu-quota US -cpu-period US POD
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	endpoint := flag.String("endpoint", "unix:///var/run/crio/crio.sock", "CRI endpoint")
	memory := flag.Int64("memory", 0, "memory limit in bytes")
	quota := flag.Int64("cpu-quota", 0, "CPU quota in µs per period")
	period := flag.Int64("cpu-period", 0, "CPU period in µs")
	shares := flag.Int64("cpu-shares", 0, "CPU shares")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: podupdate [flags] POD")
		os.Exit(2)
	}
	conn, err := grpc.NewClient(*endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = runtimeapi.NewRuntimeServiceClient(conn).UpdatePodSandboxResources(ctx, &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: flag.Arg(0),
		Resources: &runtimeapi.LinuxContainerResources{
			MemoryLimitInBytes: *memory, CpuQuota: *quota, CpuPeriod: *period, CpuShares: *shares,
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
