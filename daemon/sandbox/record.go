package sandbox

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/pidns"
	"github.com/crio-appliance/crio/daemon/state"
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
	// CgroupIntent is the pod cgroup path recorded before it is created:
	// a crash before Cgroup is recorded leaves this to undo from.
	CgroupIntent string `json:"cgroup_intent,omitempty"`

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

	// Pending names an operation recorded before it started and cleared
	// when it is done (PendingStop, PendingRemove): a crash half-way
	// leaves it, and the next start finishes the operation.
	Pending string `json:"pending,omitempty"`
}

// Operations recorded in Sandbox.Pending.
const (
	PendingStop   = "stop"
	PendingRemove = "remove"
)

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

// newStore keeps one JSON record per pod in dir, with its volatile writes
// in volatileDir.
func newStore(dir, volatileDir string) state.Records[*Sandbox] {
	return state.Records[*Sandbox]{Dir: dir, VolatileDir: volatileDir, Codec: state.Codec[*Sandbox]{
		Kind:   "pod",
		ID:     func(x *Sandbox) string { return x.ID },
		Encode: encodeRecord,
		Decode: decodeRecord,
	}}
}

func encodeRecord(x *Sandbox) ([]byte, error) {
	cfg, err := protojson.Marshal(x.Config)
	if err != nil {
		return nil, err
	}
	return json.Marshal(recordFile{Sandbox: x, Config: cfg})
}

func decodeRecord(data []byte) (*Sandbox, error) {
	rf := recordFile{Sandbox: &Sandbox{}}
	if err := json.Unmarshal(data, &rf); err != nil {
		return nil, err
	}
	rf.Sandbox.Config = &runtimeapi.PodSandboxConfig{}
	if err := protojson.Unmarshal(rf.Config, rf.Sandbox.Config); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return rf.Sandbox, nil
}
