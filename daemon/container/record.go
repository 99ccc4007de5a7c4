package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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

// store keeps one JSON file per container in dir.
type store struct{ dir string }

func (st store) path(id string) string { return filepath.Join(st.dir, id+".json") }

func (st store) save(c *Container) error {
	cfg, err := protojson.Marshal(c.Config)
	if err != nil {
		return fmt.Errorf("save container %s: %w", c.ID, err)
	}
	data, err := json.Marshal(recordFile{Container: c, Config: cfg})
	if err != nil {
		return fmt.Errorf("save container %s: %w", c.ID, err)
	}
	if err := writeFileAtomic(st.path(c.ID), data, 0o600); err != nil {
		return fmt.Errorf("save container %s: %w", c.ID, err)
	}
	return nil
}

func (st store) delete(id string) error {
	if err := os.Remove(st.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete container record %s: %w", id, err)
	}
	return nil
}

func (st store) loadAll() ([]*Container, []error) {
	entries, err := os.ReadDir(st.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, []error{err}
	}
	var out []*Container
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(st.dir, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rf := recordFile{Container: &Container{}}
		if err := json.Unmarshal(data, &rf); err != nil {
			errs = append(errs, fmt.Errorf("container record %s: %w", name, err))
			continue
		}
		rf.Container.Config = &runtimeapi.ContainerConfig{}
		if err := protojson.Unmarshal(rf.Config, rf.Container.Config); err != nil {
			errs = append(errs, fmt.Errorf("container record %s: config: %w", name, err))
			continue
		}
		if rf.Container.ID+".json" != name || !validID(rf.Container.ID) {
			errs = append(errs, fmt.Errorf("container record %s: id %q does not match the file", name, rf.Container.ID))
			continue
		}
		out = append(out, rf.Container)
	}
	return out, errs
}

// writeFileAtomic replaces path with data so that a crash leaves either
// the old or the new content, never a torn record.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(name, perm)
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}
