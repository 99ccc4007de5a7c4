package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/errdefs"
)

// errContainers answers every call with one error; List returns one
// container and records the filter.
type errContainers struct {
	err    error
	filter *container.Filter
	stop   *time.Duration
}

func (e errContainers) Create(context.Context, string, *runtimeapi.ContainerConfig) (*container.Container, error) {
	return nil, e.err
}
func (e errContainers) Start(context.Context, string) error { return e.err }
func (e errContainers) Stop(_ context.Context, _ string, t time.Duration) error {
	if e.stop != nil {
		*e.stop = t
	}
	return e.err
}
func (e errContainers) Remove(context.Context, string) error    { return e.err }
func (e errContainers) ReopenLog(context.Context, string) error { return e.err }
func (e errContainers) Get(string) (*container.Container, error) {
	if e.err != nil {
		return nil, e.err
	}
	return sampleContainer(), nil
}
func (e errContainers) List(f container.Filter) []*container.Container {
	if e.filter != nil {
		*e.filter = f
	}
	return []*container.Container{sampleContainer()}
}

func sampleContainer() *container.Container {
	return &container.Container{
		ID: "c1", PodID: "p1", State: container.StateExited, CreatedAt: 1, StartedAt: 2, FinishedAt: 3,
		ExitCode: 137, Reason: "OOMKilled", Image: "busybox", ImageName: "docker.io/library/busybox:latest",
		ImageRef: "docker.io/library/busybox@sha256:aa", ImageID: "ff", LogPath: "/logs/c.log",
		UID: 1000, GID: 1000, SupplementalGroups: []int64{1000, 50000},
		Mounts: []container.MountRecord{{ContainerPath: "/data", HostPath: "/srv", Readonly: true, Propagation: 2}},
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "c", Attempt: 1},
			Labels:   map[string]string{"app": "x"},
			Linux:    &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20}},
		},
	}
}

func TestContainerErrorCodes(t *testing.T) {
	for err, want := range map[error]codes.Code{
		&errdefs.InvalidArgumentError{Field: "config.log_path", Reason: "bad"}: codes.InvalidArgument,
		fmt.Errorf("x: %w", container.ErrNotFound):                             codes.NotFound,
		fmt.Errorf("x: %w", container.ErrAlreadyExists):                        codes.AlreadyExists,
		fmt.Errorf("x: %w", container.ErrFailedPrecondition):                   codes.FailedPrecondition,
		fmt.Errorf("x: %w", container.ErrUnimplemented):                        codes.Unimplemented,
		context.DeadlineExceeded:                                               codes.DeadlineExceeded,
		fmt.Errorf("runc create failed"):                                       codes.Unknown,
	} {
		rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{Containers: errContainers{err: err}}))
		ctx := context.Background()
		_, got := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: "p1"})
		if status.Code(got) != want || !strings.Contains(got.Error(), err.Error()) {
			t.Errorf("create %v: got %v, want %v", err, got, want)
		}
		for name, call := range map[string]func() error{
			"start": func() error {
				_, e := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: "c1"})
				return e
			},
			"stop": func() error {
				_, e := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: "c1"})
				return e
			},
			"remove": func() error {
				_, e := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: "c1"})
				return e
			},
			"status": func() error {
				_, e := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: "c1"})
				return e
			},
			"reopen": func() error {
				_, e := rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: "c1"})
				return e
			},
		} {
			if got := call(); status.Code(got) != want {
				t.Errorf("%s %v: got %v, want %v", name, err, got, want)
			}
		}
	}
}

func TestContainerRequestChecks(t *testing.T) {
	var f container.Filter
	var stop time.Duration
	rt := runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{Containers: errContainers{filter: &f, stop: &stop}}))
	ctx := context.Background()
	if _, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("create without pod id: %v", err)
	}
	if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("start without id: %v", err)
	}
	if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: strings.Repeat("a", 200)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("remove with a huge id: %v", err)
	}
	for req, want := range map[int64]time.Duration{-5: 0, 10: 10 * time.Second, 1 << 40: 24 * time.Hour} {
		if _, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: "c1", Timeout: req}); err != nil || stop != want {
			t.Errorf("stop timeout %d: passed %s (%v), want %s", req, stop, err, want)
		}
	}
	_, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: 9}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("list with a bad state: %v", err)
	}
	list, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		PodSandboxId: "p1", LabelSelector: map[string]string{"app": "x"},
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	if err != nil || len(list.Containers) != 1 || f.PodID != "p1" || f.State != container.StateRunning || f.Labels["app"] != "x" {
		t.Fatalf("list: %v %v filter %+v", list, err, f)
	}
	c := list.Containers[0]
	if c.Id != "c1" || c.PodSandboxId != "p1" || c.State != runtimeapi.ContainerState_CONTAINER_EXITED || c.ImageRef == "" || c.ImageId != "ff" || c.Image.Image != "docker.io/library/busybox:latest" {
		t.Errorf("listed %v", c)
	}
	rt = runtimeapi.NewRuntimeServiceClient(dialCRI(t, Options{}))
	if _, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("no service: %v", err)
	}
}

func TestContainerStatusToCRI(t *testing.T) {
	st := containerStatusToCRI(sampleContainer())
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 || st.Reason != "OOMKilled" ||
		st.CreatedAt != 1 || st.StartedAt != 2 || st.FinishedAt != 3 || st.LogPath != "/logs/c.log" ||
		st.ImageRef != "docker.io/library/busybox@sha256:aa" || st.ImageId != "ff" || st.Metadata.GetAttempt() != 1 {
		t.Errorf("status %v", st)
	}
	if u := st.User.GetLinux(); u.Uid != 1000 || u.Gid != 1000 || len(u.SupplementalGroups) != 2 {
		t.Errorf("user %v", u)
	}
	if len(st.Mounts) != 1 || st.Mounts[0].Propagation != runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL || !st.Mounts[0].Readonly {
		t.Errorf("mounts %v", st.Mounts)
	}
	if st.Resources.GetLinux().GetMemoryLimitInBytes() != 1<<20 {
		t.Errorf("resources %v", st.Resources)
	}
	for s, want := range map[container.State]runtimeapi.ContainerState{
		container.StateCreating: runtimeapi.ContainerState_CONTAINER_CREATED,
		container.StateCreated:  runtimeapi.ContainerState_CONTAINER_CREATED,
		container.StateRunning:  runtimeapi.ContainerState_CONTAINER_RUNNING,
		container.StateExited:   runtimeapi.ContainerState_CONTAINER_EXITED,
	} {
		if got := containerStateToCRI(s); got != want {
			t.Errorf("%s: %v", s, got)
		}
	}
}
