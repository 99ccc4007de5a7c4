package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/policy"
)

// Profile is a seccomp profile as files hold it. It reads both the OCI
// form (architectures, syscalls with names) and the richer form of the
// container ecosystem's default profiles (archMap, per-rule includes and
// excludes by capability and architecture), which policy/seccomp.json uses.
type Profile struct {
	DefaultAction   rspec.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures   []rspec.Arch             `json:"architectures,omitempty"`
	ArchMap         []ArchMap                `json:"archMap,omitempty"`
	Flags           []rspec.LinuxSeccompFlag `json:"flags,omitempty"`
	Syscalls        []Rule                   `json:"syscalls,omitempty"`
}

// ArchMap lists the architectures a native one also runs (x86 and x32 on
// amd64), all of which the filter must cover.
type ArchMap struct {
	Arch    rspec.Arch   `json:"architecture"`
	SubArch []rspec.Arch `json:"subArchitectures"`
}

// Rule is one syscall rule.
type Rule struct {
	Name     string                   `json:"name,omitempty"` // an old single-name form
	Names    []string                 `json:"names,omitempty"`
	Action   rspec.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []rspec.LinuxSeccompArg  `json:"args,omitempty"`
	Includes Filter                   `json:"includes"`
	Excludes Filter                   `json:"excludes"`
	Comment  string                   `json:"comment,omitempty"`
}

// Filter makes a rule conditional. Includes: the rule applies only if the
// container holds all Caps and the host is one of Arches. Excludes: it is
// skipped if the container holds any of Caps or the host is one of Arches.
// Arches are Go names (amd64, arm64, s390x...).
type Filter struct {
	Caps   []string `json:"caps,omitempty"`
	Arches []string `json:"arches,omitempty"`
}

// maxProfileSize bounds a profile file; real ones are tens of KiB.
const maxProfileSize = 4 << 20

var goArchToSeccomp = map[string]rspec.Arch{
	"amd64": rspec.ArchX86_64, "386": rspec.ArchX86, "arm64": rspec.ArchAARCH64, "arm": rspec.ArchARM,
	"ppc64le": rspec.ArchPPC64LE, "ppc64": rspec.ArchPPC64, "s390x": rspec.ArchS390X, "riscv64": rspec.ArchRISCV64,
	"mips64le": rspec.ArchMIPSEL64, "mips64": rspec.ArchMIPS64, "loong64": rspec.Arch("SCMP_ARCH_LOONGARCH64"),
}

var validActions = []rspec.LinuxSeccompAction{
	rspec.ActKill, rspec.ActKillProcess, rspec.ActKillThread, rspec.ActTrap, rspec.ActErrno,
	rspec.ActTrace, rspec.ActAllow, rspec.ActLog,
}

var validOps = []rspec.LinuxSeccompOperator{
	rspec.OpNotEqual, rspec.OpLessThan, rspec.OpLessEqual, rspec.OpEqualTo,
	rspec.OpGreaterEqual, rspec.OpGreaterThan, rspec.OpMaskedEqual,
}

// ParseProfile reads a profile and checks its actions and operators, so a
// bad file fails at CreateContainer with its own name in the error rather
// than inside the runtime.
func ParseProfile(data []byte) (*Profile, error) {
	if len(data) > maxProfileSize {
		return nil, fmt.Errorf("profile is larger than %d bytes", maxProfileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("profile is not valid JSON: %w", err)
	}
	if !slices.Contains(validActions, p.DefaultAction) {
		return nil, fmt.Errorf("defaultAction %q is not a seccomp action this runtime supports", p.DefaultAction)
	}
	for i, r := range p.Syscalls {
		if !slices.Contains(validActions, r.Action) {
			return nil, fmt.Errorf("syscalls[%d]: action %q is not a seccomp action this runtime supports", i, r.Action)
		}
		if r.Name == "" && len(r.Names) == 0 {
			return nil, fmt.Errorf("syscalls[%d]: no syscall names", i)
		}
		for j, a := range r.Args {
			if !slices.Contains(validOps, a.Op) {
				return nil, fmt.Errorf("syscalls[%d].args[%d]: operator %q is not a seccomp comparison", i, j, a.Op)
			}
			if a.Index > 5 {
				return nil, fmt.Errorf("syscalls[%d].args[%d]: index %d is past the sixth argument", i, j, a.Index)
			}
		}
	}
	return &p, nil
}

// Compile turns a profile into the spec's filter for a container with the
// given capabilities (bounding set) on the architecture goarch.
func (p *Profile) Compile(goarch string, caps []string) (*rspec.LinuxSeccomp, error) {
	native, ok := goArchToSeccomp[goarch]
	if !ok {
		return nil, fmt.Errorf("no seccomp architecture for %s", goarch)
	}
	out := &rspec.LinuxSeccomp{DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet, Flags: p.Flags}
	switch {
	case len(p.Architectures) > 0:
		out.Architectures = p.Architectures
	case len(p.ArchMap) > 0:
		for _, m := range p.ArchMap {
			if m.Arch == native {
				out.Architectures = append([]rspec.Arch{m.Arch}, m.SubArch...)
			}
		}
		if out.Architectures == nil {
			out.Architectures = []rspec.Arch{native}
		}
	}
	has := toSet(caps)
	for _, r := range p.Syscalls {
		if !r.applies(goarch, has) {
			continue
		}
		names := r.Names
		if r.Name != "" {
			names = append([]string{r.Name}, names...)
		}
		out.Syscalls = append(out.Syscalls, rspec.LinuxSyscall{
			Names: names, Action: r.Action, ErrnoRet: r.ErrnoRet, Args: r.Args,
		})
	}
	return out, nil
}

func (r *Rule) applies(goarch string, caps map[string]bool) bool {
	for _, c := range r.Includes.Caps {
		if !caps[c] {
			return false
		}
	}
	if len(r.Includes.Arches) > 0 && !slices.Contains(r.Includes.Arches, goarch) {
		return false
	}
	for _, c := range r.Excludes.Caps {
		if caps[c] {
			return false
		}
	}
	return !slices.Contains(r.Excludes.Arches, goarch)
}

// DefaultProfile is the embedded RuntimeDefault profile.
func DefaultProfile() (*Profile, error) {
	p, err := ParseProfile(policy.SeccompJSON)
	if err != nil {
		return nil, fmt.Errorf("embedded policy/seccomp.json: %w", err)
	}
	return p, nil
}

// seccompProfile decides the container's filter. nil means unconfined.
//
// The CRI field (or its deprecated string form) chooses: RuntimeDefault
// (an empty SecurityProfile, or "runtime/default", "docker/default") is
// the daemon's default profile; Localhost reads the absolute path the
// kubelet resolved; Unconfined, and a request that says nothing at all,
// mean no filter, as the CRI defines it (the kubelet sends RuntimeDefault
// when seccompDefault is on). Privileged containers run unconfined.
func seccompProfile(in *Input, sc *runtimeapi.LinuxContainerSecurityContext, privileged bool, caps []string) (*rspec.LinuxSeccomp, error) {
	if privileged {
		return nil, nil
	}
	const field = "config.linux.security_context.seccomp"
	var kind runtimeapi.SecurityProfile_ProfileType
	var path string
	//lint:ignore SA1019 older kubelets still send the deprecated field
	switch prof, legacy := sc.GetSeccomp(), sc.GetSeccompProfilePath(); {
	case prof != nil:
		kind, path = prof.GetProfileType(), prof.GetLocalhostRef()
	case legacy == "" || legacy == "unconfined":
		return nil, nil
	case legacy == "runtime/default" || legacy == "docker/default":
		kind = runtimeapi.SecurityProfile_RuntimeDefault
	case strings.HasPrefix(legacy, "localhost/"):
		kind, path = runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(legacy, "localhost/")
	default:
		return nil, errdefs.Invalid("config.linux.security_context.seccomp_profile_path", "%q is not runtime/default, unconfined or localhost/<path>", errdefs.Clip(legacy))
	}
	var p *Profile
	switch kind {
	case runtimeapi.SecurityProfile_Unconfined:
		return nil, nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		var err error
		if in.Defaults.SeccompProfile != nil {
			if p, err = ParseProfile(in.Defaults.SeccompProfile); err != nil {
				return nil, fmt.Errorf("crio.runtime.seccomp_profile: %w", err)
			}
		} else if p, err = DefaultProfile(); err != nil {
			return nil, err
		}
	case runtimeapi.SecurityProfile_Localhost:
		var err error
		if p, err = localhostProfile(path, field+".localhost_ref"); err != nil {
			return nil, err
		}
	default:
		return nil, errdefs.Invalid(field+".profile_type", "unknown profile type %d", kind)
	}
	return p.Compile(runtime.GOARCH, caps)
}

// localhostProfile reads a profile from a host path the kubelet chose.
func localhostProfile(path, field string) (*Profile, error) {
	if path == "" {
		return nil, errdefs.Invalid(field, "a Localhost profile needs a path")
	}
	if err := checkHostPath(path, field); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("seccomp profile %s: %w (the kubelet resolves localhost profiles under <root-dir>/seccomp; is the file on this node?)", path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxProfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	p, err := ParseProfile(data)
	if err != nil {
		return nil, errdefs.Invalid(field, "seccomp profile %s: %v", path, err)
	}
	return p, nil
}

// checkHostPath accepts a clean absolute host path without control
// characters.
func checkHostPath(p, field string) error {
	if err := checkString(p, field, maxPathLen); err != nil {
		return err
	}
	if !filepath.IsAbs(p) {
		return errdefs.Invalid(field, "%q is not an absolute path", errdefs.Clip(p))
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return errdefs.Invalid(field, "%q contains a .. component", errdefs.Clip(p))
		}
	}
	return nil
}
