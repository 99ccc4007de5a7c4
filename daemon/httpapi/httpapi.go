// Package httpapi is the plain HTTP/1.1 API served on the CRI socket beside
// gRPC. The kubelet's cAdvisor sends GET /info and GET /containers/<id> to any
// runtime whose socket path ends in crio/crio.sock, and `crio status` reads
// /info and /config. JSON field names are CRI-O's, since cAdvisor decodes them.
package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/crio-appliance/crio/daemon/config"
)

// Paths served.
const (
	InfoPath       = "/info"
	ConfigPath     = "/config"
	ContainersPath = "/containers/"
)

// Info is the body of GET /info.
type Info struct {
	StorageDriver     string     `json:"storage_driver"`
	StorageImage      string     `json:"storage_image"`
	StorageRoot       string     `json:"storage_root"`
	CgroupDriver      string     `json:"cgroup_driver"`
	DefaultIDMappings IDMappings `json:"default_id_mappings"`
}

// IDMappings are the user namespace mappings applied to containers by
// default; empty when containers run in the host's user namespace.
type IDMappings struct {
	UIDs []IDMap `json:"uids"`
	GIDs []IDMap `json:"gids"`
}

// IDMap is one contiguous ID range, as containers/storage writes it.
type IDMap struct {
	ContainerID int `json:"container_id"`
	HostID      int `json:"host_id"`
	Size        int `json:"size"`
}

// ContainerInfo is the body of GET /containers/<id>, the fields cAdvisor reads.
type ContainerInfo struct {
	Name            string            `json:"name"`
	Pid             int               `json:"pid"`
	Image           string            `json:"image"`
	ImageRef        string            `json:"image_ref"`
	CreatedTime     int64             `json:"created_time"` // Unix nanoseconds
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	CrioAnnotations map[string]string `json:"crio_annotations"`
	LogPath         string            `json:"log_path"`
	Root            string            `json:"root"` // the container's rootfs mount point
	Sandbox         string            `json:"sandbox"`
	// IP is the first of IPs, for cAdvisor versions that read only
	// ip_address.
	IP  string   `json:"ip_address"`
	IPs []string `json:"ip_addresses"`
}

// Containers finds containers for GET /containers/<id>. The container
// package implements it; ok is false for an unknown id.
type Containers interface {
	ContainerInfo(ctx context.Context, id string) (info *ContainerInfo, ok bool)
}

// Options are what the handlers read.
type Options struct {
	// Config returns the running configuration. It is called on every
	// request so that a SIGHUP reload shows up.
	Config func() *config.Result
	// Containers answers /containers/<id>; nil knows no container.
	Containers Containers
	// Logger receives handler errors; nil discards.
	Logger *slog.Logger
}

// New returns the handler for the API.
func New(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handlers{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+InfoPath, h.info)
	mux.HandleFunc("GET "+ConfigPath, h.config)
	mux.HandleFunc("GET "+ContainersPath+"{id}", h.container)
	return mux
}

type handlers struct {
	opts Options
}

// InfoFor builds the /info body from a configuration.
func InfoFor(cfg *config.Config) Info {
	return Info{
		StorageDriver: cfg.StorageDriver,
		StorageImage:  cfg.ImageStore,
		StorageRoot:   cfg.Root,
		CgroupDriver:  cgroupDriver(cfg.Runtime.CgroupManager),
		// crio does not remap user namespaces by default. Empty lists,
		// not null, so clients can range over them without a check.
		DefaultIDMappings: IDMappings{UIDs: []IDMap{}, GIDs: []IDMap{}},
	}
}

// cgroupDriver names the driver as CRI-O does; only cgroupfs is cgroupfs.
func cgroupDriver(manager string) string {
	if manager == "cgroupfs" {
		return "cgroupfs"
	}
	return "systemd"
}

func (h *handlers) info(w http.ResponseWriter, r *http.Request) {
	h.writeJSON(w, http.StatusOK, InfoFor(h.opts.Config().Config))
}

func (h *handlers) config(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/toml")
	io.WriteString(w, h.opts.Config().TOML(false))
}

func (h *handlers) container(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if h.opts.Containers != nil {
		if info, ok := h.opts.Containers.ContainerInfo(r.Context(), id); ok {
			h.writeJSON(w, http.StatusOK, info)
			return
		}
	}
	h.writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("container with ID %s not found", id)})
}

type errorBody struct {
	Error string `json:"error"`
}

func (h *handlers) writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.opts.Logger.Error("encode HTTP API response", "error", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
