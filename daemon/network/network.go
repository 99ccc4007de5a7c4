package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/metrics"
)

// Options configure a Manager; the daemon fills them from crio.network.
type Options struct {
	// NetworkDir is network_dir, where *.conflist/*.conf/*.json live.
	NetworkDir string
	// PluginDirs is plugin_dirs, searched for plugin binaries in order.
	PluginDirs []string
	// DefaultNetwork is cni_default_network; empty picks the first valid
	// config by file name.
	DefaultNetwork string
	// CacheDir is libcni's result cache; empty means libcni's default
	// (/var/lib/cni), which other CNI tools know to look in.
	CacheDir string
	// Logger gets a line when the chosen network changes; nil discards.
	Logger *slog.Logger
}

// PortMapping is one host port to forward into the pod (portmap plugin).
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"` // tcp, udp or sctp
	HostIP        string `json:"hostIP,omitempty"`
}

// Pod identifies one attachment: what the plugins are told about the pod.
type Pod struct {
	ID        string // sandbox id, the CNI container id
	Name      string
	Namespace string
	UID       string
	NetNS     string // path of the pinned network namespace
	Ports     []PortMapping
	// Network is the network the pod was attached to; Teardown needs it
	// (Setup fills Result.Network, the caller stores it).
	Network string
	// BeforeAdd, when set, is called by Setup with the network it is about
	// to attach the pod to, before the first plugin runs; an error stops
	// Setup. The caller records the name there, so a crash during ADD
	// leaves a record that a DEL can be run from.
	BeforeAdd func(network string) error
}

// Result is what Setup hands back: the network used and the pod's addresses.
type Result struct {
	Network   string
	Interface string
	IPs       []string
}

// ifName is the interface the pod sees, as every CRI runtime names it.
const ifName = "eth0"

// Manager owns the current network choice and runs CNI operations.
type Manager struct {
	opts Options
	log  *slog.Logger
	cni  *libcni.CNIConfig
	exec invoke.Exec

	mu      sync.Mutex
	print   fingerprint
	current *loaded
	reason  string // why current is nil
}

// New returns a Manager. It reads nothing yet: the first query does.
func New(opts Options) *Manager {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: nil}}
	return &Manager{
		opts: opts,
		log:  log,
		exec: exec,
		cni:  libcni.NewCNIConfigWithCacheDir(opts.PluginDirs, opts.CacheDir, exec),
	}
}

// refresh re-reads network_dir when it changed since the last look, or
// while no network is usable (a missing plugin binary may have appeared).
func (m *Manager) refresh() *loaded {
	m.mu.Lock()
	defer m.mu.Unlock()
	fp, files, err := dirFingerprint(m.opts.NetworkDir)
	if err != nil {
		m.current, m.reason, m.print = nil, err.Error(), ""
		return nil
	}
	if fp == m.print && m.current != nil {
		return m.current
	}
	m.print = fp
	prev := m.current
	cur, problems := choose(files, m.opts.DefaultNetwork, func(t string) error {
		_, err := m.exec.FindInPath(t, m.opts.PluginDirs)
		return err
	})
	m.current = cur
	switch {
	case cur != nil:
		m.reason = ""
		if prev == nil || prev.list.Name != cur.list.Name || prev.file != cur.file {
			m.log.Info("CNI network ready", "network", cur.list.Name, "file", cur.file)
		}
	case len(files) == 0:
		m.reason = fmt.Sprintf("no CNI configuration file in %s", m.opts.NetworkDir)
	case m.opts.DefaultNetwork != "":
		m.reason = fmt.Sprintf("no valid CNI network named %q in %s", m.opts.DefaultNetwork, m.opts.NetworkDir)
	default:
		m.reason = fmt.Sprintf("no valid CNI configuration in %s", m.opts.NetworkDir)
	}
	if len(problems) > 0 {
		m.reason += ": " + errors.Join(problems...).Error()
		for _, p := range problems {
			m.log.Warn("skipping CNI configuration", "error", p)
		}
	}
	if cur == nil && prev != nil {
		m.log.Warn("CNI network no longer available", "reason", m.reason)
	}
	return cur
}

// NetworkReady implements the server's NetworkReadiness: ready once a valid
// configuration whose plugins exist is in network_dir.
func (m *Manager) NetworkReady(context.Context) (bool, string, string) {
	if m.refresh() != nil {
		return true, "", ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return false, "NetworkPluginNotReady", "Network plugin returns error: " + m.reason
}

// ErrNotReady is returned by Setup while no network is configured. It is a
// failed precondition, not Unknown: the request is fine and will succeed
// once a configuration appears in network_dir, which is what the kubelet's
// NetworkReady condition already tells it.
var ErrNotReady = errdefs.New(errdefs.ErrFailedPrecondition, "CNI network not ready")

func runtimeConf(p Pod) (*libcni.RuntimeConf, error) {
	for k, v := range map[string]string{"id": p.ID, "name": p.Name, "namespace": p.Namespace, "uid": p.UID} {
		// CNI_ARGS is "K=V;K=V": a separator inside a value would let a pod
		// name inject arguments for the plugins.
		if strings.ContainsAny(v, ";=\x00\n") {
			return nil, fmt.Errorf("pod %s %q contains a character CNI_ARGS cannot carry", k, v)
		}
	}
	rt := &libcni.RuntimeConf{
		ContainerID: p.ID,
		NetNS:       p.NetNS,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", p.Namespace},
			{"K8S_POD_NAME", p.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.ID},
			{"K8S_POD_UID", p.UID},
		},
		CapabilityArgs: map[string]any{},
	}
	var ports []PortMapping
	for _, pm := range p.Ports {
		if pm.HostPort <= 0 {
			continue // a container port without a host port is informational
		}
		pm.Protocol = strings.ToLower(pm.Protocol)
		if pm.Protocol == "" {
			pm.Protocol = "tcp"
		}
		ports = append(ports, pm)
	}
	if len(ports) > 0 {
		rt.CapabilityArgs["portMappings"] = ports
	}
	return rt, nil
}

// Setup attaches the pod to the current network and returns its addresses.
// On failure it undoes whatever the plugins did, so an error leaves no IPAM
// allocation or port mapping behind.
func (m *Manager) Setup(ctx context.Context, p Pod) (*Result, error) {
	cur := m.refresh()
	if cur == nil {
		_, _, msg := m.NetworkReady(ctx)
		return nil, fmt.Errorf("%w: %s", ErrNotReady, msg)
	}
	rt, err := runtimeConf(p)
	if err != nil {
		return nil, err
	}
	if p.BeforeAdd != nil {
		if err := p.BeforeAdd(cur.list.Name); err != nil {
			return nil, fmt.Errorf("before CNI ADD on network %q: %w", cur.list.Name, err)
		}
	}
	addStart := time.Now()
	res, err := m.cni.AddNetworkList(ctx, cur.list, rt)
	metrics.NetworkSetup(metrics.ActionCNIAdd, addStart)
	if err != nil {
		// A failed ADD must be followed by a DEL (CNI spec) to release what
		// earlier plugins in the chain allocated. Run it even if the caller's
		// context is gone.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := m.cni.DelNetworkList(dctx, cur.list, rt); derr != nil {
			m.log.Warn("CNI DEL after failed ADD", "pod", p.ID, "error", derr)
		}
		return nil, fmt.Errorf("CNI ADD on network %q: %w", cur.list.Name, err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("CNI ADD on network %q: result: %w", cur.list.Name, err)
	}
	out := &Result{Network: cur.list.Name, Interface: ifName}
	for _, ip := range r.IPs {
		if ip.Interface != nil && *ip.Interface >= 0 && *ip.Interface < len(r.Interfaces) &&
			r.Interfaces[*ip.Interface].Sandbox == "" {
			continue // an address on the host side (e.g. a bridge), not the pod's
		}
		out.IPs = append(out.IPs, ip.Address.IP.String())
	}
	return out, nil
}

// Teardown detaches the pod. It is idempotent: a pod that was never
// attached, or was already detached, is not an error. It prefers the
// configuration cached at ADD time, so a pod still detaches cleanly after
// network_dir changed.
func (m *Manager) Teardown(ctx context.Context, p Pod) error {
	rt, err := runtimeConf(p)
	if err != nil {
		return err
	}
	if p.Network == "" {
		return nil // never attached
	}
	var list *libcni.NetworkConfigList
	cached, cachedRT, err := m.cni.GetNetworkListCachedConfig(&libcni.NetworkConfigList{Name: p.Network}, rt)
	if err == nil && cached != nil {
		if l, perr := libcni.NetworkConfFromBytes(cached); perr == nil {
			list = l
			if cachedRT != nil {
				// The cached runtime config carries the port mappings the
				// portmap plugin needs to find its rules.
				rt.CapabilityArgs = cachedRT.CapabilityArgs
			}
		}
	}
	if list == nil {
		if cur := m.refresh(); cur != nil && cur.list.Name == p.Network {
			list = cur.list
		}
	}
	if list == nil {
		// Nothing cached and the network is gone: the plugins cannot be
		// asked. The caller still removes the netns, which frees the veth.
		m.log.Warn("no CNI configuration to detach pod", "pod", p.ID, "network", p.Network)
		return nil
	}
	delStart := time.Now()
	err = m.cni.DelNetworkList(ctx, list, rt)
	metrics.NetworkSetup(metrics.ActionCNIDel, delStart)
	if err != nil {
		return fmt.Errorf("CNI DEL on network %q: %w", p.Network, err)
	}
	return nil
}
