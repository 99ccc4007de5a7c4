package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/image"
	"github.com/crio-appliance/crio/daemon/sandbox"
)

// manySandboxes lists n ready pods, label i=<index>, honouring the id filter.
type manySandboxes struct {
	errSandboxes
	n int
}

func (m manySandboxes) List(f sandbox.Filter) []*sandbox.Sandbox {
	var out []*sandbox.Sandbox
	for i := range m.n {
		id := fmt.Sprintf("pod%04d", i)
		if f.ID != "" && !strings.HasPrefix(id, f.ID) {
			continue
		}
		out = append(out, &sandbox.Sandbox{ID: id, State: sandbox.StateReady, RuntimeHandler: "runc",
			Config: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: id}, Labels: map[string]string{"i": fmt.Sprint(i)}}})
	}
	return out
}

// recvAll reads a stream to EOF and returns the size of each message.
func recvAll[R any](t *testing.T, recv func() (*R, error), items func(*R) int) ([]int, error) {
	t.Helper()
	var sizes []int
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			return sizes, nil
		}
		if err != nil {
			return sizes, err
		}
		sizes = append(sizes, items(m))
	}
}

// StreamPodSandboxes sends exactly what ListPodSandbox returns, in order, in
// chunks of at most maxChunkItems, with the same filter.
func TestStreamPodSandboxesChunks(t *testing.T) {
	const n = 300
	rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{Sandbox: manySandboxes{n: n}}))
	ctx := context.Background()
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(list.Items) != n {
		t.Fatalf("list: %d items, %v", len(list.GetItems()), err)
	}
	st, err := rt.StreamPodSandboxes(ctx, &runtimeapi.StreamPodSandboxesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []*runtimeapi.PodSandbox
	sizes, err := recvAll(t, st.Recv, func(r *runtimeapi.StreamPodSandboxesResponse) int {
		got = append(got, r.PodSandboxes...)
		return len(r.PodSandboxes)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 3 || sizes[0] != maxChunkItems || sizes[1] != maxChunkItems || sizes[2] != n-2*maxChunkItems {
		t.Errorf("chunk sizes %v, want [%d %d %d]", sizes, maxChunkItems, maxChunkItems, n-2*maxChunkItems)
	}
	if len(got) != len(list.Items) {
		t.Fatalf("streamed %d pods, listed %d", len(got), len(list.Items))
	}
	for i := range got {
		if got[i].Id != list.Items[i].Id || got[i].Labels["i"] != list.Items[i].Labels["i"] {
			t.Fatalf("item %d: streamed %v, listed %v", i, got[i], list.Items[i])
		}
	}

	// The filter reaches the List handler: pod01xx is 100 pods, one chunk.
	st, _ = rt.StreamPodSandboxes(ctx, &runtimeapi.StreamPodSandboxesRequest{Filter: &runtimeapi.PodSandboxFilter{Id: "pod01"}})
	sizes, err = recvAll(t, st.Recv, func(r *runtimeapi.StreamPodSandboxesResponse) int { return len(r.PodSandboxes) })
	if err != nil || len(sizes) != 1 || sizes[0] != 100 {
		t.Errorf("filtered stream: %v %v", sizes, err)
	}
	// An invalid filter fails as List does.
	st, _ = rt.StreamPodSandboxes(ctx, &runtimeapi.StreamPodSandboxesRequest{Filter: &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: 7}}})
	if _, err := st.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad filter: %v", err)
	}
	// No pods: EOF at once.
	rt = runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{Sandbox: manySandboxes{}}))
	st, _ = rt.StreamPodSandboxes(ctx, &runtimeapi.StreamPodSandboxesRequest{})
	if _, err := st.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("empty stream: %v", err)
	}
}

// Large items close a chunk by size before the count bound is reached.
func TestChunksBoundBytes(t *testing.T) {
	big := strings.Repeat("x", 300<<10)
	var items []*runtimeapi.PodSandbox
	for i := range 10 {
		items = append(items, &runtimeapi.PodSandbox{Id: fmt.Sprint(i), Annotations: map[string]string{"a": big}})
	}
	items = append(items, &runtimeapi.PodSandbox{Id: "huge", Annotations: map[string]string{"a": strings.Repeat("y", 2<<20)}})
	cs := chunks(items)
	total := 0
	for i, c := range cs {
		total += len(c)
		size := 0
		for _, it := range c {
			size += len(it.Annotations["a"])
		}
		if len(c) > 1 && size > maxChunkBytes {
			t.Errorf("chunk %d: %d items, %d bytes", i, len(c), size)
		}
	}
	if total != len(items) || len(cs) != 5 || len(cs[len(cs)-1]) != 1 || cs[len(cs)-1][0].Id != "huge" {
		t.Errorf("%d chunks, %d items", len(cs), total)
	}
	if len(chunks[*runtimeapi.PodSandbox](nil)) != 0 {
		t.Error("chunks of nothing")
	}
}

// The other Stream RPCs follow their List: same answers, same errors.
func TestStreamRPCsFollowList(t *testing.T) {
	ctx := context.Background()
	// No container, stats or metrics service: the List RPCs are
	// Unimplemented, and so are the streams.
	rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{}))
	for name, open := range map[string]func() error{
		"StreamContainers": func() error {
			s, err := rt.StreamContainers(ctx, &runtimeapi.StreamContainersRequest{})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		},
		"StreamContainerStats": func() error {
			s, err := rt.StreamContainerStats(ctx, &runtimeapi.StreamContainerStatsRequest{})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		},
		"StreamPodSandboxStats": func() error {
			s, err := rt.StreamPodSandboxStats(ctx, &runtimeapi.StreamPodSandboxStatsRequest{})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		},
		"StreamPodSandboxMetrics": func() error {
			s, err := rt.StreamPodSandboxMetrics(ctx, &runtimeapi.StreamPodSandboxMetricsRequest{})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		},
	} {
		if err := open(); status.Code(err) != codes.Unimplemented {
			t.Errorf("%s without a service: %v", name, err)
		}
	}

	// StreamImages: what ListImages returns, with the filter.
	f := &fakeImages{images: map[string]*image.Image{"a": {ID: "a"}, "b": {ID: "b"}, "c": {ID: "c"}}}
	img := runtimeapi.NewImageServiceClient(dialCRI(t, Options{Image: NewImageServer(f)}))
	st, err := img.StreamImages(ctx, &runtimeapi.StreamImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	if _, err := recvAll(t, st.Recv, func(r *runtimeapi.StreamImagesResponse) int {
		for _, i := range r.Images {
			ids[i.Id] = true
		}
		return len(r.Images)
	}); err != nil || len(ids) != 3 {
		t.Errorf("StreamImages: %v %v", ids, err)
	}
	st, _ = img.StreamImages(ctx, &runtimeapi.StreamImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: "b"}}})
	sizes, err := recvAll(t, st.Recv, func(r *runtimeapi.StreamImagesResponse) int { return len(r.Images) })
	if err != nil || len(sizes) != 1 || sizes[0] != 1 {
		t.Errorf("filtered StreamImages: %v %v", sizes, err)
	}
	// No image service: Unimplemented, like ListImages.
	img = runtimeapi.NewImageServiceClient(dialCRI(t, Options{}))
	st, _ = img.StreamImages(ctx, &runtimeapi.StreamImagesRequest{})
	if _, err := st.Recv(); status.Code(err) != codes.Unimplemented {
		t.Errorf("StreamImages without a service: %v", err)
	}
}

// UpdateRuntimeConfig (the kubelet sends the pod CIDR on every node status
// sync) succeeds.
func TestUpdateRuntimeConfig(t *testing.T) {
	rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{}))
	_, err := rt.UpdateRuntimeConfig(context.Background(), &runtimeapi.UpdateRuntimeConfigRequest{
		RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "10.244.1.0/24"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.UpdateRuntimeConfig(context.Background(), &runtimeapi.UpdateRuntimeConfigRequest{}); err != nil {
		t.Fatalf("empty request: %v", err)
	}
}
