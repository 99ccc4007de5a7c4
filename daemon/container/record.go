package container

import (
	"encoding/json"
	"fmt"

	"github.com/crio-appliance/crio/daemon/state"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// State is a container's lifecycle state as recorded.
type State string

const (
	// StateCreating is recorded before the first resource is made.
	StateCreating State = "creating"
	StateCreated  State = "created"
	StateRunning  State = "running"
	StateExited   State = "exited"
)

// Container is one container's record. Callers get copies.
type Container struct {
	ID    string `json:"id"`
	Name  string `json:"name"` // k8s_<container>_<pod>_<namespace>_<uid>_<attempt>
	PodID string `json:"pod_id"`
	State State  `json:"state"`
	// Times in Unix nanoseconds; 0 means "not yet".
	CreatedAt  int64 `json:"created_at"`
	StartedAt  int64 `json:"started_at,omitempty"`
	FinishedAt int64 `json:"finished_at,omitempty"`
	ExitCode   int32 `json:"exit_code"`
	// Reason is "Completed", "Error", "OOMKilled" or
	// "ContainerStatusUnknown" once exited; Message explains the last.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`

	// Image is the image as the request named it; ImageName the tag it
	// resolved to; ImageRef a digest reference; ImageID the image's id.
	Image              string `json:"image"`
	UserSpecifiedImage string `json:"user_specified_image,omitempty"`
	ImageName          string `json:"image_name,omitempty"`
	ImageRef           string `json:"image_ref,omitempty"`
	ImageID            string `json:"image_id"`

	ConfigHash string                      `json:"config_hash"`
	Config     *runtimeapi.ContainerConfig `json:"-"`

	Runtime    string `json:"runtime"` // handler name
	Bundle     string `json:"bundle"`
	LogPath    string `json:"log_path"` // absolute
	Rootfs     string `json:"rootfs,omitempty"`
	StopSignal string `json:"stop_signal"`

	// Storage: the containers/storage container exists, and is mounted.
	StorageCreated bool `json:"storage_created,omitempty"`
	Mounted        bool `json:"mounted,omitempty"`
	// RuntimeCreated: the runtime knows the container (runtime delete
	// needed).
	RuntimeCreated bool `json:"runtime_created,omitempty"`

	Pid        int `json:"pid,omitempty"`
	MonitorPid int `json:"monitor_pid,omitempty"`
	// OwnPIDNS: the container has a PID namespace of its own, so killing
	// its init kills every process in it (the kernel's rule for a
	// namespace's PID 1) and stop needs no cgroup walk. Records written
	// before the field existed read false: the walk, as before.
	OwnPIDNS bool `json:"own_pidns,omitempty"`

	UID                int64         `json:"uid"`
	GID                int64         `json:"gid"`
	SupplementalGroups []int64       `json:"supplemental_groups,omitempty"`
	Mounts             []MountRecord `json:"mounts,omitempty"`
	// ImageVolumes are the storage of the image volumes, recorded before
	// each is made.
	ImageVolumes []ImageVolume `json:"image_volumes,omitempty"`
}

// MountRecord is a CRI mount as applied, for ContainerStatus.
type MountRecord struct {
	ContainerPath  string `json:"container_path"`
	HostPath       string `json:"host_path"`
	Readonly       bool   `json:"readonly,omitempty"`
	SelinuxRelabel bool   `json:"selinux_relabel,omitempty"`
	Propagation    int32  `json:"propagation,omitempty"`

	// RecursiveReadOnly: read-only down to every mount below the source.
	RecursiveReadOnly bool `json:"recursive_read_only,omitempty"`
	// Image volumes: the image as requested and its id, and the path
	// inside it.
	Image        string `json:"image,omitempty"`
	ImageRef     string `json:"image_ref,omitempty"`
	ImageSubPath string `json:"image_sub_path,omitempty"`
}

func (c *Container) clone() *Container {
	d := *c
	d.SupplementalGroups = append([]int64(nil), c.SupplementalGroups...)
	d.Mounts = append([]MountRecord(nil), c.Mounts...)
	d.ImageVolumes = append([]ImageVolume(nil), c.ImageVolumes...)
	return &d // Config is never mutated after creation
}

// recordFile is the on-disk form: the record and the CRI config in its
// canonical JSON.
type recordFile struct {
	*Container
	Config json.RawMessage `json:"config"`
}

// newStore keeps one JSON record per container in dir, with its volatile
// writes in volatileDir.
func newStore(dir, volatileDir string) state.Records[*Container] {
	return state.Records[*Container]{Dir: dir, VolatileDir: volatileDir, Codec: state.Codec[*Container]{
		Kind:   "container",
		ID:     func(x *Container) string { return x.ID },
		Encode: encodeRecord,
		Decode: decodeRecord,
	}}
}

func encodeRecord(x *Container) ([]byte, error) {
	cfg, err := protojson.Marshal(x.Config)
	if err != nil {
		return nil, err
	}
	return json.Marshal(recordFile{Container: x, Config: cfg})
}

func decodeRecord(data []byte) (*Container, error) {
	rf := recordFile{Container: &Container{}}
	if err := json.Unmarshal(data, &rf); err != nil {
		return nil, err
	}
	rf.Container.Config = &runtimeapi.ContainerConfig{}
	if err := protojson.Unmarshal(rf.Config, rf.Container.Config); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return rf.Container, nil
}
