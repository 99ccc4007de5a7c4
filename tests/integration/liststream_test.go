package integration

import (
	"errors"
	"io"
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// drain reads a server stream to EOF and returns the ids of its items.
func drain[R any](t *testing.T, name string, recv func() (*R, error), ids func(*R) []string) []string {
	t.Helper()
	var out []string
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			slices.Sort(out)
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, ids(m)...)
	}
}

func sorted(s []string) []string { slices.Sort(s); return s }

// The Stream* list RPCs of the real daemon send what the List RPCs return,
// and UpdateRuntimeConfig with a pod CIDR succeeds.
func TestStreamListRPCs(t *testing.T) {
	e := startCtrDaemon(t, nil)
	rt, img, ctx := e.d.Runtime(), e.d.Image(), Context(t)
	var pods []string
	for _, name := range []string{"stream-a", "stream-b"} {
		id, cfg := e.pod(t, name, nil)
		e.run(t, id, cfg, e.ctrConfig(name, "sleep", "3600"))
		pods = append(pods, id)
	}
	if _, err := rt.UpdateRuntimeConfig(ctx, &runtimeapi.UpdateRuntimeConfigRequest{
		RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "10.244.0.0/24"}}}); err != nil {
		t.Errorf("UpdateRuntimeConfig: %v", err)
	}

	lp, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range lp.Items {
		want = append(want, p.Id)
	}
	sp, err := rt.StreamPodSandboxes(ctx, &runtimeapi.StreamPodSandboxesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := drain(t, "StreamPodSandboxes", sp.Recv, func(r *runtimeapi.StreamPodSandboxesResponse) (ids []string) {
		for _, p := range r.PodSandboxes {
			ids = append(ids, p.Id)
		}
		return
	})
	if !slices.Equal(got, sorted(want)) || len(got) != 2 {
		t.Errorf("StreamPodSandboxes %v, ListPodSandbox %v", got, want)
	}
	// With a filter: only the first pod.
	sp, _ = rt.StreamPodSandboxes(ctx, &runtimeapi.StreamPodSandboxesRequest{Filter: &runtimeapi.PodSandboxFilter{Id: pods[0]}})
	if got := drain(t, "StreamPodSandboxes filtered", sp.Recv, func(r *runtimeapi.StreamPodSandboxesResponse) (ids []string) {
		for _, p := range r.PodSandboxes {
			ids = append(ids, p.Id)
		}
		return
	}); !slices.Equal(got, pods[:1]) {
		t.Errorf("filtered StreamPodSandboxes: %v", got)
	}

	lc, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want = nil
	for _, c := range lc.Containers {
		want = append(want, c.Id)
	}
	sc, err := rt.StreamContainers(ctx, &runtimeapi.StreamContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(t, "StreamContainers", sc.Recv, func(r *runtimeapi.StreamContainersResponse) (ids []string) {
		for _, c := range r.Containers {
			ids = append(ids, c.Id)
		}
		return
	}); !slices.Equal(got, sorted(want)) || len(got) != 2 {
		t.Errorf("StreamContainers %v, ListContainers %v", got, want)
	}
	ctrIDs := sorted(want)

	scs, err := rt.StreamContainerStats(ctx, &runtimeapi.StreamContainerStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(t, "StreamContainerStats", scs.Recv, func(r *runtimeapi.StreamContainerStatsResponse) (ids []string) {
		for _, s := range r.ContainerStats {
			ids = append(ids, s.GetAttributes().GetId())
		}
		return
	}); !slices.Equal(got, ctrIDs) {
		t.Errorf("StreamContainerStats %v, want %v", got, ctrIDs)
	}

	sps, err := rt.StreamPodSandboxStats(ctx, &runtimeapi.StreamPodSandboxStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(t, "StreamPodSandboxStats", sps.Recv, func(r *runtimeapi.StreamPodSandboxStatsResponse) (ids []string) {
		for _, s := range r.PodSandboxStats {
			ids = append(ids, s.GetAttributes().GetId())
		}
		return
	}); !slices.Equal(got, sorted(slices.Clone(pods))) {
		t.Errorf("StreamPodSandboxStats %v, want %v", got, pods)
	}

	lm, err := rt.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want = nil
	for _, m := range lm.PodMetrics {
		want = append(want, m.PodSandboxId)
	}
	spm, err := rt.StreamPodSandboxMetrics(ctx, &runtimeapi.StreamPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(t, "StreamPodSandboxMetrics", spm.Recv, func(r *runtimeapi.StreamPodSandboxMetricsResponse) (ids []string) {
		for _, m := range r.PodSandboxMetrics {
			ids = append(ids, m.PodSandboxId)
		}
		return
	}); !slices.Equal(got, sorted(want)) {
		t.Errorf("StreamPodSandboxMetrics %v, ListPodSandboxMetrics %v", got, want)
	}

	li, err := img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want = nil
	for _, i := range li.Images {
		want = append(want, i.Id)
	}
	si, err := img.StreamImages(ctx, &runtimeapi.StreamImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(t, "StreamImages", si.Recv, func(r *runtimeapi.StreamImagesResponse) (ids []string) {
		for _, i := range r.Images {
			ids = append(ids, i.Id)
		}
		return
	}); !slices.Equal(got, sorted(want)) || len(got) == 0 {
		t.Errorf("StreamImages %v, ListImages %v", got, want)
	}
}
