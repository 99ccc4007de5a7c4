package sandbox

import (
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/network"
)

// Limits on what one pod config may carry. Kubernetes' own limits are
// tighter; these keep a hostile client from making crio write or hold
// megabytes per pod.
const (
	maxNameLen        = 253
	maxUIDLen         = 128
	maxHostnameLen    = 64 // HOST_NAME_MAX
	maxPathLen        = 4096
	maxDNSServers     = 16
	maxDNSSearches    = 32
	maxDNSSearchLen   = 253
	maxDNSOptions     = 32
	maxDNSOptionLen   = 256
	maxPortMappings   = 1024
	maxMapEntries     = 1024
	maxMapKeyLen      = 512
	maxMapTotalBytes  = 256 << 10
	maxSysctls        = 256
	maxRuntimeHandler = 253
	maxID             = 1<<32 - 2 // the largest uid/gid; (uid_t)-1 means "unchanged"
)

// k8s object names and namespaces are DNS subdomains; uids are UUIDs. The
// patterns are a little wider (upper case, underscores for uids) but keep
// out the separators of CNI_ARGS (";=") and of file names.
var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	uidRE      = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	handlerRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// spec is a validated pod config, reduced to what RunPodSandbox acts on.
type spec struct {
	name, namespace, uid string
	attempt              uint32
	hostname             string
	logDir               string
	dnsConfigured        bool
	dnsServers           []string
	dnsSearches          []string
	dnsOptions           []string
	ports                []network.PortMapping
	cgroupPath           string // empty: the default
	sysctls              []sysctl
	hostNetwork          bool
	hostIPC              bool
	hostPID              bool
	sharedPID            bool // NamespaceOption.Pid == POD
}

// forbiddenLogRoots are trees where creating a directory is never what a
// kubelet meant and could be harmful (pseudo file systems).
var forbiddenLogRoots = []string{"/proc", "/sys", "/dev"}

// validate checks every field of a RunPodSandbox request that crio acts on.
// It is pure: no file system or network access.
func validate(cfg *runtimeapi.PodSandboxConfig, handler string, defaultSysctls []string, cgroupManager string) (*spec, error) {
	if cfg == nil {
		return nil, errdefs.Invalid("config", "missing")
	}
	if handler != "" && (len(handler) > maxRuntimeHandler || !handlerRE.MatchString(handler)) {
		return nil, errdefs.Invalid("runtime_handler", "%q is not a valid handler name", handler)
	}
	md := cfg.GetMetadata()
	if md == nil {
		return nil, errdefs.Invalid("config.metadata", "missing")
	}
	s := &spec{name: md.Name, namespace: md.Namespace, uid: md.Uid, attempt: md.Attempt}
	if err := checkName("config.metadata.name", md.Name, maxNameLen, nameRE); err != nil {
		return nil, err
	}
	if err := checkName("config.metadata.namespace", md.Namespace, maxNameLen, nameRE); err != nil {
		return nil, err
	}
	if err := checkName("config.metadata.uid", md.Uid, maxUIDLen, uidRE); err != nil {
		return nil, err
	}
	if err := checkStringMap("config.labels", cfg.Labels); err != nil {
		return nil, err
	}
	if err := checkStringMap("config.annotations", cfg.Annotations); err != nil {
		return nil, err
	}

	sc := cfg.GetLinux().GetSecurityContext()
	nsOpts := sc.GetNamespaceOptions()
	switch nsOpts.GetNetwork() {
	case runtimeapi.NamespaceMode_POD:
	case runtimeapi.NamespaceMode_NODE:
		s.hostNetwork = true
	default:
		return nil, errdefs.Invalid("config.linux.security_context.namespace_options.network", "mode %s is not valid for a pod (POD or NODE)", nsOpts.GetNetwork())
	}
	switch nsOpts.GetIpc() {
	case runtimeapi.NamespaceMode_POD:
	case runtimeapi.NamespaceMode_NODE:
		s.hostIPC = true
	default:
		return nil, errdefs.Invalid("config.linux.security_context.namespace_options.ipc", "mode %s is not valid for a pod (POD or NODE)", nsOpts.GetIpc())
	}
	switch nsOpts.GetPid() {
	case runtimeapi.NamespaceMode_POD:
		s.sharedPID = true
	case runtimeapi.NamespaceMode_CONTAINER:
	case runtimeapi.NamespaceMode_NODE:
		s.hostPID = true
	default:
		return nil, errdefs.Invalid("config.linux.security_context.namespace_options.pid", "mode %s is not valid for a pod (POD, CONTAINER or NODE)", nsOpts.GetPid())
	}
	if nsOpts.GetTargetId() != "" {
		return nil, errdefs.Invalid("config.linux.security_context.namespace_options.target_id", "only containers can target another container's namespace")
	}
	if u := nsOpts.GetUsernsOptions(); u != nil && u.Mode != runtimeapi.NamespaceMode_NODE {
		return nil, errdefs.Invalid("config.linux.security_context.namespace_options.userns_options.mode", "user namespaces (mode %s) are not supported; use NODE", u.Mode)
	}

	// The CRI says a runtime MUST refuse a pod-level group without a user (a
	// pod has no run_as_username, only run_as_user): the group would
	// otherwise be paired with whatever user the image names.
	if g := sc.GetRunAsGroup(); g != nil {
		if sc.GetRunAsUser() == nil {
			return nil, errdefs.Invalid("config.linux.security_context.run_as_group", "needs run_as_user")
		}
		if g.GetValue() < 0 || g.GetValue() > maxID {
			return nil, errdefs.Invalid("config.linux.security_context.run_as_group", "%d is not a valid gid", g.GetValue())
		}
	}

	if cfg.Hostname != "" {
		if len(cfg.Hostname) > maxHostnameLen || !hostnameRE.MatchString(cfg.Hostname) {
			return nil, errdefs.Invalid("config.hostname", "%q must be at most %d letters, digits, '.', '-' or '_'", errdefs.Clip(cfg.Hostname), maxHostnameLen)
		}
		s.hostname = cfg.Hostname
	}

	if cfg.LogDirectory != "" {
		dir, err := checkLogDir(cfg.LogDirectory)
		if err != nil {
			return nil, errdefs.Invalid("config.log_directory", "%v", err)
		}
		s.logDir = dir
	}

	if err := s.checkDNS(cfg.DnsConfig); err != nil {
		return nil, err
	}
	if err := s.checkPorts(cfg.PortMappings); err != nil {
		return nil, err
	}

	if p := cfg.GetLinux().GetCgroupParent(); p != "" {
		path, err := cgroups.ParsePath(cgroupManager, p)
		if err != nil {
			return nil, errdefs.Invalid("config.linux.cgroup_parent", "%q: %v", errdefs.Clip(p), err)
		}
		if path == "/" {
			return nil, errdefs.Invalid("config.linux.cgroup_parent", "the root cgroup cannot be a pod's cgroup")
		}
		s.cgroupPath = path
	}

	if err := s.checkSysctls(cfg.GetLinux().GetSysctls(), defaultSysctls); err != nil {
		return nil, err
	}
	return s, nil
}

func checkName(field, v string, maxLen int, re *regexp.Regexp) error {
	if v == "" {
		return errdefs.Invalid(field, "must not be empty")
	}
	if len(v) > maxLen || !re.MatchString(v) {
		return errdefs.Invalid(field, "%q must be at most %d letters, digits, '.', '-' or '_'", errdefs.Clip(v), maxLen)
	}
	return nil
}

func checkStringMap(field string, m map[string]string) error {
	if len(m) > maxMapEntries {
		return errdefs.Invalid(field, "%d entries, more than %d", len(m), maxMapEntries)
	}
	total := 0
	for k, v := range m {
		if k == "" || len(k) > maxMapKeyLen || strings.ContainsAny(k, "\x00\n\r") {
			return errdefs.Invalid(field, "key %q must be 1 to %d characters without control characters", errdefs.Clip(k), maxMapKeyLen)
		}
		if strings.ContainsRune(v, 0) {
			return errdefs.Invalid(field+"["+k+"]", "contains a NUL byte")
		}
		total += len(k) + len(v)
	}
	if total > maxMapTotalBytes {
		return errdefs.Invalid(field, "%d bytes in total, more than %d", total, maxMapTotalBytes)
	}
	return nil
}

func checkLogDir(dir string) (string, error) {
	if len(dir) > maxPathLen || strings.ContainsFunc(dir, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", fmt.Errorf("must be a path of at most %d characters without control characters", maxPathLen)
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("%q is not absolute", errdefs.Clip(dir))
	}
	if slices.Contains(strings.Split(dir, "/"), "..") {
		return "", fmt.Errorf("%q contains '..'", errdefs.Clip(dir))
	}
	clean := filepath.Clean(dir)
	if clean == "/" {
		return "", fmt.Errorf("the root directory cannot be a log directory")
	}
	for _, r := range forbiddenLogRoots {
		if clean == r || strings.HasPrefix(clean, r+"/") {
			return "", fmt.Errorf("%q is under %s", errdefs.Clip(dir), r)
		}
	}
	return clean, nil
}

func (s *spec) checkDNS(d *runtimeapi.DNSConfig) error {
	if d == nil || (len(d.Servers) == 0 && len(d.Searches) == 0 && len(d.Options) == 0) {
		return nil
	}
	s.dnsConfigured = true
	if len(d.Servers) > maxDNSServers {
		return errdefs.Invalid("config.dns_config.servers", "%d servers, more than %d", len(d.Servers), maxDNSServers)
	}
	for i, v := range d.Servers {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" && strings.ContainsFunc(a.Zone(), isSpaceOrControl) {
			return errdefs.Invalid(fmt.Sprintf("config.dns_config.servers[%d]", i), "%q is not an IP address", errdefs.Clip(v))
		}
		s.dnsServers = append(s.dnsServers, a.String())
	}
	if len(d.Searches) > maxDNSSearches {
		return errdefs.Invalid("config.dns_config.searches", "%d search domains, more than %d", len(d.Searches), maxDNSSearches)
	}
	for i, v := range d.Searches {
		if v == "" || len(v) > maxDNSSearchLen || strings.ContainsFunc(v, isSpaceOrControl) {
			return errdefs.Invalid(fmt.Sprintf("config.dns_config.searches[%d]", i), "%q must be 1 to %d characters without whitespace", errdefs.Clip(v), maxDNSSearchLen)
		}
	}
	s.dnsSearches = d.Searches
	if len(d.Options) > maxDNSOptions {
		return errdefs.Invalid("config.dns_config.options", "%d options, more than %d", len(d.Options), maxDNSOptions)
	}
	for i, v := range d.Options {
		if v == "" || len(v) > maxDNSOptionLen || strings.ContainsFunc(v, isSpaceOrControl) {
			return errdefs.Invalid(fmt.Sprintf("config.dns_config.options[%d]", i), "%q must be 1 to %d characters without whitespace", errdefs.Clip(v), maxDNSOptionLen)
		}
	}
	s.dnsOptions = d.Options
	return nil
}

func (s *spec) checkPorts(pms []*runtimeapi.PortMapping) error {
	if len(pms) > maxPortMappings {
		return errdefs.Invalid("config.port_mappings", "%d mappings, more than %d", len(pms), maxPortMappings)
	}
	for i, pm := range pms {
		field := fmt.Sprintf("config.port_mappings[%d]", i)
		if pm == nil {
			return errdefs.Invalid(field, "missing")
		}
		var proto string
		switch pm.Protocol {
		case runtimeapi.Protocol_TCP:
			proto = "tcp"
		case runtimeapi.Protocol_UDP:
			proto = "udp"
		case runtimeapi.Protocol_SCTP:
			proto = "sctp"
		default:
			return errdefs.Invalid(field+".protocol", "unknown protocol %d", pm.Protocol)
		}
		if pm.ContainerPort <= 0 || pm.ContainerPort > 65535 {
			return errdefs.Invalid(field+".container_port", "%d is not a port number", pm.ContainerPort)
		}
		if pm.HostPort < 0 || pm.HostPort > 65535 {
			return errdefs.Invalid(field+".host_port", "%d is not a port number", pm.HostPort)
		}
		hostIP := ""
		if pm.HostIp != "" {
			a, err := netip.ParseAddr(pm.HostIp)
			if err != nil || a.Zone() != "" {
				return errdefs.Invalid(field+".host_ip", "%q is not an IP address", errdefs.Clip(pm.HostIp))
			}
			hostIP = a.String()
		}
		if s.hostNetwork {
			continue // the pod's ports are the host's: nothing to map
		}
		s.ports = append(s.ports, network.PortMapping{HostPort: pm.HostPort, ContainerPort: pm.ContainerPort, Protocol: proto, HostIP: hostIP})
	}
	return nil
}

func (s *spec) checkSysctls(podSysctls map[string]string, defaults []string) error {
	if len(podSysctls) > maxSysctls {
		return errdefs.Invalid("config.linux.sysctls", "%d sysctls, more than %d", len(podSysctls), maxSysctls)
	}
	byPath := map[string]sysctl{}
	// Defaults from crio.runtime.default_sysctls apply where their namespace
	// is the pod's own; on a pod sharing that host namespace they would
	// change the node, so they are skipped (CRI-O does the same).
	for _, kv := range defaults {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue // the config schema rejects these; do not fail pods for it
		}
		sc, err := classifySysctl(strings.TrimSpace(k), strings.TrimSpace(v))
		if err != nil || s.hostNamespace(sc.ns) {
			continue
		}
		byPath[sc.path] = sc
	}
	keys := make([]string, 0, len(podSysctls))
	for k := range podSysctls {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field := "config.linux.sysctls[" + errdefs.Clip(k) + "]"
		sc, err := classifySysctl(k, podSysctls[k])
		if err != nil {
			return errdefs.Invalid(field, "%v", err)
		}
		if s.hostNamespace(sc.ns) {
			return errdefs.Invalid(field, "%s is in the %s namespace, which this pod shares with the host", sc.name, sc.ns)
		}
		byPath[sc.path] = sc
	}
	for _, p := range slices.Sorted(maps.Keys(byPath)) {
		s.sysctls = append(s.sysctls, byPath[p])
	}
	return nil
}

func (s *spec) hostNamespace(ns sysctlNS) bool {
	switch ns {
	case nsNet, nsUTS:
		// A host-network pod also shares the host's UTS namespace, as in
		// CRI-O and the kubelet.
		return s.hostNetwork
	case nsIPC:
		return s.hostIPC
	}
	return true
}
