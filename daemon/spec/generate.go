package spec

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	"golang.org/x/sys/unix"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// Generate builds the OCI spec for a container. Errors about the request
// are *errdefs.InvalidArgumentError; others are about the host or configuration.
func Generate(in *Input) (*Result, error) {
	if in.Config == nil {
		return nil, errdefs.Invalid("config", "missing")
	}
	if in.Host == nil {
		return nil, errors.New("spec: no Host")
	}
	cfg := in.Config
	sc := cfg.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()
	if privileged && !in.Pod.Privileged {
		return nil, errdefs.Invalid("config.linux.security_context.privileged", "the pod sandbox is not privileged (its security_context.privileged is false)")
	}

	g, err := generate.New("linux")
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	// Start from the generator's skeleton but own every field that
	// matters: its defaults (a hostname, rlimits, capabilities, mounts, a
	// seccomp profile) are not ours.
	g.RemoveHostname()
	g.ClearProcessRlimits()
	g.ClearMounts()
	g.ClearLinuxNamespaces()
	g.Config.Linux.Seccomp = nil
	g.Config.Process.Capabilities = nil
	g.Config.Process.Env = nil
	res := &Result{}

	// Identity first: the environment's HOME and the capability sets
	// depend on it.
	id, err := resolveUser(in, sc)
	if err != nil {
		return nil, err
	}
	g.SetProcessUID(uint32(id.uid))
	g.SetProcessGID(uint32(id.gid))
	for _, gid := range id.groups {
		g.AddProcessAdditionalGid(uint32(gid))
	}
	res.UID, res.GID, res.SupplementalGroups = id.uid, id.gid, id.groups

	args, err := processArgs(cfg, in.Image)
	if err != nil {
		return nil, err
	}
	g.SetProcessArgs(args)
	env, err := processEnv(in, cfg.GetTty())
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "HOME=") }) {
		home := id.home
		if home == "" {
			home = "/"
		}
		env = append(env, "HOME="+home)
	}
	g.Config.Process.Env = env
	cwd, err := workingDir(cfg, in.Image)
	if err != nil {
		return nil, err
	}
	g.SetProcessCwd(cwd)
	g.SetProcessTerminal(cfg.GetTty())
	g.SetProcessNoNewPrivileges(sc.GetNoNewPrivs())
	if err := rlimits(&g, in.Defaults.Ulimits); err != nil {
		return nil, err
	}

	caps, err := capabilities(in, sc.GetCapabilities(), privileged, id.uid)
	if err != nil {
		return nil, err
	}
	g.Config.Process.Capabilities = caps
	seccomp, err := seccompProfile(in, sc, privileged, caps.Bounding)
	if err != nil {
		return nil, err
	}
	g.Config.Linux.Seccomp = seccomp
	aa, aaWarning, err := apparmorProfile(in, sc, privileged)
	if err != nil {
		return nil, err
	}
	g.SetProcessApparmorProfile(aa)
	if aaWarning != "" {
		res.SecurityWarnings = append(res.SecurityWarnings, aaWarning)
	}

	g.SetRootPath(in.Rootfs)
	readonly := sc.GetReadonlyRootfs() || in.Defaults.ReadOnly
	g.SetRootReadonly(readonly)

	// Mounts: the base file systems, the pod's files, image volumes, then
	// the CRI's, each later one replacing an earlier one at the same place.
	var ms mountSet
	for _, m := range baseMounts(in, privileged) {
		ms.add(m)
	}
	for _, m := range podFileMounts(in, readonly) {
		ms.add(m)
	}
	for dst, src := range in.ImageVolumes {
		d, err := containerPath(dst, "image volume")
		if err != nil {
			continue // a malformed volume in the image config is not the request's fault
		}
		ms.add(rspec.Mount{Destination: d, Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}})
	}
	rootProp := ""
	cri, applied, err := criMounts(in, cfg.GetMounts(), &rootProp)
	if err != nil {
		return nil, err
	}
	for _, m := range cri {
		ms.add(m)
	}
	for _, m := range ms.sorted() {
		g.AddMount(m)
	}
	res.Mounts = applied
	if rootProp != "" {
		if err := g.SetLinuxRootPropagation(rootProp); err != nil {
			return nil, fmt.Errorf("spec: %w", err)
		}
	}

	if !privileged {
		masked, err := pathList(sc.GetMaskedPaths(), "config.linux.security_context.masked_paths")
		if err != nil {
			return nil, err
		}
		if len(masked) == 0 {
			masked = defaultMaskedPaths
		}
		ro, err := pathList(sc.GetReadonlyPaths(), "config.linux.security_context.readonly_paths")
		if err != nil {
			return nil, err
		}
		if len(ro) == 0 {
			ro = defaultReadonlyPaths
		}
		g.Config.Linux.MaskedPaths = slices.Clone(masked)
		g.Config.Linux.ReadonlyPaths = slices.Clone(ro)
	}

	devs, allowAll, err := devices(in, cfg, privileged)
	if err != nil {
		return nil, err
	}
	if allowAll {
		g.Config.Linux.Resources.Devices = []rspec.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	for _, d := range devs {
		g.AddDevice(d.LinuxDevice)
		if !allowAll {
			major, minor := d.Major, d.Minor
			g.AddLinuxResourcesDevice(true, d.Type, &major, &minor, d.access)
		}
	}

	r, adj, warnings, err := resources(in, cfg.GetLinux().GetResources())
	if err != nil {
		return nil, err
	}
	res.Warnings = append(res.Warnings, warnings...)
	r.Devices = g.Config.Linux.Resources.Devices
	g.Config.Linux.Resources = r
	g.SetProcessOOMScoreAdj(*adj)

	nss, err := namespaces(in, sc)
	if err != nil {
		return nil, err
	}
	g.Config.Linux.Namespaces = nss
	g.SetLinuxCgroupsPath(cgroupsPath(in))

	for k, v := range in.Defaults.Annotations {
		g.AddAnnotation(k, v)
	}
	var imgSignal string
	if in.Image != nil {
		imgSignal = in.Image.StopSignal
	}
	if res.StopSignal, err = stopSignal(cfg, imgSignal); err != nil {
		return nil, err
	}
	res.Spec = g.Config
	return res, nil
}

// rlimitNames maps default_ulimits names to the spec's.
var rlimitNames = map[string]string{
	"core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
	"locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
	"nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
	"rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING",
	"stack": "RLIMIT_STACK", "as": "RLIMIT_AS",
}

// rlimits applies default_ulimits ("nofile=1024:2048"); without any the
// container inherits the monitor's limits.
func rlimits(g *generate.Generator, ulimits []string) error {
	for _, u := range ulimits {
		name, vals, ok := strings.Cut(u, "=")
		typ, known := rlimitNames[strings.ToLower(name)]
		if !ok || !known {
			return fmt.Errorf("crio.runtime.default_ulimits: %q is not name=soft[:hard]", u)
		}
		softS, hardS, hasHard := strings.Cut(vals, ":")
		soft, err := parseLimit(softS)
		if err != nil {
			return fmt.Errorf("crio.runtime.default_ulimits: %q: %w", u, err)
		}
		hard := soft
		if hasHard {
			if hard, err = parseLimit(hardS); err != nil {
				return fmt.Errorf("crio.runtime.default_ulimits: %q: %w", u, err)
			}
		}
		if soft > hard {
			return fmt.Errorf("crio.runtime.default_ulimits: %q: soft limit above hard limit", u)
		}
		g.AddProcessRlimits(typ, hard, soft)
	}
	return nil
}

func parseLimit(s string) (uint64, error) {
	if s == "-1" || s == "unlimited" {
		return unix.RLIM_INFINITY, nil
	}
	return strconv.ParseUint(s, 10, 64)
}
