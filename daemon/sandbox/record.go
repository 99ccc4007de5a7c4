package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/pidns"
)

// State is a pod's lifecycle state as recorded on disk.
type State string

const (
	// StateCreating is recorded before the first resource is made, so a
	// crash half-way leaves a record that start-up cleans up.
	StateCreating State = "creating"
	StateReady    State = "ready"
	StateNotReady State = "notready"
)

// Sandbox is one pod's record: everything needed to report on the pod and
// to undo every resource it owns, also after a daemon restart. Callers get
// copies; the service owns the originals.
type Sandbox struct {
	ID             string `json:"id"`
	Name           string `json:"name"` // k8s_<name>_<namespace>_<uid>_<attempt>
	State          State  `json:"state"`
	CreatedAt      int64  `json:"created_at"` // Unix nanoseconds
	RuntimeHandler string `json:"runtime_handler,omitempty"`
	ConfigHash     string `json:"config_hash"`
	// Config is the request as sent, kept for status, labels and
	// annotations, and for the container service (DNS, ports, security).
	Config *runtimeapi.PodSandboxConfig `json:"-"`

	Hostname string `json:"hostname"`
	// NetNS, IPCNS and UTSNS are the pinned namespace files; empty means
	// the host's namespace.
	NetNS string `json:"netns,omitempty"`
	IPCNS string `json:"ipcns,omitempty"`
	UTSNS string `json:"utsns,omitempty"`
	// HostPID and SharedPID say how containers get their PID namespace.
	HostPID   bool `json:"host_pid,omitempty"`
	SharedPID bool `json:"shared_pid,omitempty"`

	Cgroup *cgroups.Cgroup `json:"cgroup,omitempty"`

	// PIDNS is the pinned PID namespace of a pod whose containers share
	// one (SharedPID), held by Init, which lives in InitCgroup (a child of
	// the pod cgroup: on cgroup v2 a cgroup with child cgroups cannot hold
	// processes itself).
	PIDNS      string          `json:"pidns,omitempty"`
	Init       *pidns.Holder   `json:"init,omitempty"`
	InitCgroup *cgroups.Cgroup `json:"init_cgroup,omitempty"`

	// RunDir holds the pod's generated files (resolv.conf, hosts,
	// hostname) and its shm mount point.
	RunDir       string `json:"run_dir"`
	ShmPath      string `json:"shm_path,omitempty"` // empty with host IPC: containers use the host's /dev/shm
	ShmMounted   bool   `json:"shm_mounted,omitempty"`
	ResolvPath   string `json:"resolv_path,omitempty"`
	HostsPath    string `json:"hosts_path,omitempty"`
	HostnamePath string `json:"hostname_path,omitempty"`
	LogDir       string `json:"log_dir"`
	// LogDirOwned means crio chose and created LogDir (no log_directory in
	// the request), so removing the pod removes it.
	LogDirOwned bool `json:"log_dir_owned,omitempty"`

	// Network is the CNI network the pod is attached to; empty when not
	// attached (host network, stopped, or not yet).
	Network string   `json:"network,omitempty"`
	IPs     []string `json:"ips,omitempty"`
}

// recordFile is the on-disk shape: the record plus the CRI config in its
// canonical JSON form.
type recordFile struct {
	*Sandbox
	Config json.RawMessage `json:"config"`
}

func (sb *Sandbox) clone() *Sandbox {
	c := *sb
	c.IPs = append([]string(nil), sb.IPs...)
	c.Cgroup, c.InitCgroup = cloneCgroup(sb.Cgroup), cloneCgroup(sb.InitCgroup)
	if sb.Init != nil {
		h := *sb.Init
		c.Init = &h
	}
	// Config is never mutated after creation; sharing it is safe.
	return &c
}

func cloneCgroup(cg *cgroups.Cgroup) *cgroups.Cgroup {
	if cg == nil {
		return nil
	}
	c := *cg
	c.Dirs = append([]string(nil), cg.Dirs...)
	c.Created = append([]string(nil), cg.Created...)
	return &c
}

// Ready reports whether the pod is running.
func (sb *Sandbox) Ready() bool { return sb.State == StateReady }

// store keeps one JSON file per pod in dir.
type store struct{ dir string }

func (st store) path(id string) string { return filepath.Join(st.dir, id+".json") }

func (st store) save(sb *Sandbox) error {
	cfg, err := protojson.Marshal(sb.Config)
	if err != nil {
		return fmt.Errorf("save pod %s: %w", sb.ID, err)
	}
	data, err := json.Marshal(recordFile{Sandbox: sb, Config: cfg})
	if err != nil {
		return fmt.Errorf("save pod %s: %w", sb.ID, err)
	}
	if err := writeFileAtomic(st.path(sb.ID), data, 0o600); err != nil {
		return fmt.Errorf("save pod %s: %w", sb.ID, err)
	}
	return nil
}

func (st store) delete(id string) error {
	if err := os.Remove(st.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete pod record %s: %w", id, err)
	}
	return nil
}

// loadAll reads every record; unreadable ones are returned as errors and
// skipped.
func (st store) loadAll() ([]*Sandbox, []error) {
	entries, err := os.ReadDir(st.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, []error{err}
	}
	var out []*Sandbox
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
		rf := recordFile{Sandbox: &Sandbox{}}
		if err := json.Unmarshal(data, &rf); err != nil {
			errs = append(errs, fmt.Errorf("pod record %s: %w", name, err))
			continue
		}
		rf.Sandbox.Config = &runtimeapi.PodSandboxConfig{}
		if err := protojson.Unmarshal(rf.Config, rf.Sandbox.Config); err != nil {
			errs = append(errs, fmt.Errorf("pod record %s: config: %w", name, err))
			continue
		}
		if rf.Sandbox.ID+".json" != name || !validID(rf.Sandbox.ID) {
			errs = append(errs, fmt.Errorf("pod record %s: id %q does not match the file", name, rf.Sandbox.ID))
			continue
		}
		out = append(out, rf.Sandbox)
	}
	return out, errs
}
