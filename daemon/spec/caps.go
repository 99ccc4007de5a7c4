package spec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// capNumbers maps "CAP_CHOWN" to its number, for every capability the
// library knows.
var capNumbers = func() map[string]int {
	m := map[string]int{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = int(c)
	}
	return m
}()

// capName normalises "chown", "CHOWN" or "CAP_CHOWN" to "CAP_CHOWN"; ok is
// false for a name the kernel does not define.
func capName(s string) (string, bool) {
	n := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	_, ok := capNumbers[n]
	return n, ok
}

// allCaps is every capability the daemon can grant: known to the kernel
// and held by the daemon itself (on some hosts root lacks a few, such as
// CAP_SYS_RESOURCE, and the runtime fails to apply what it lacks).
func allCaps(f HostFacts) map[string]bool {
	set := map[string]bool{}
	for n, v := range capNumbers {
		if grantable(f, v) {
			set[n] = true
		}
	}
	return set
}

func grantable(f HostFacts, capNum int) bool {
	return capNum <= f.LastCap && (f.Grantable == 0 || f.Grantable&(1<<uint(capNum)) != 0)
}

// capabilities computes the process's capability sets.
//
// The base is default_capabilities. "ALL" in add means every capability,
// "ALL" in drop means none; then the named adds and drops apply, so
// drop [ALL] + add [NET_ADMIN] is exactly NET_ADMIN, as Kubernetes means it.
// A non-root process gets nothing effective or permitted (only the
// bounding set, which limits what setuid binaries can gain), unless it asks
// for ambient capabilities: running as a user other than root is a request
// for less privilege, and Docker and containerd do the same.
func capabilities(in *Input, caps *runtimeapi.Capability, privileged bool, uid int64) (*rspec.LinuxCapabilities, error) {
	facts := in.Host.Facts()
	set := map[string]bool{}
	if privileged {
		set = allCaps(facts)
	} else {
		for _, c := range in.Defaults.Capabilities {
			n, ok := capName(c)
			if !ok {
				return nil, fmt.Errorf("crio.runtime.default_capabilities: unknown capability %q", c)
			}
			set[n] = true
		}
		const field = "config.linux.security_context.capabilities"
		adds, addAll, err := capList(caps.GetAddCapabilities(), field+".add_capabilities")
		if err != nil {
			return nil, err
		}
		drops, dropAll, err := capList(caps.GetDropCapabilities(), field+".drop_capabilities")
		if err != nil {
			return nil, err
		}
		if addAll {
			set = allCaps(facts)
		}
		if dropAll {
			set = map[string]bool{}
		}
		for i, n := range adds {
			if !grantable(facts, capNumbers[n]) {
				return nil, errdefs.Invalid(fmt.Sprintf("%s.add_capabilities[%d]", field, i), "%s cannot be granted: crio itself does not hold it on this host", n)
			}
			set[n] = true
		}
		for _, n := range drops {
			delete(set, n)
		}
	}
	ambient, ambientAll, err := capList(caps.GetAddAmbientCapabilities(), "config.linux.security_context.capabilities.add_ambient_capabilities")
	if err != nil {
		return nil, err
	}
	if ambientAll {
		return nil, errdefs.Invalid("config.linux.security_context.capabilities.add_ambient_capabilities", "ALL is not accepted; name each capability")
	}
	for _, n := range ambient {
		if !set[n] {
			return nil, errdefs.Invalid("config.linux.security_context.capabilities.add_ambient_capabilities",
				"%s is not in the container's capability set; add it to add_capabilities too", n)
		}
	}
	for n := range set {
		if !grantable(facts, capNumbers[n]) {
			// A default the kernel or the daemon lacks: leave it out
			// rather than fail every container.
			delete(set, n)
		}
	}
	list := sortedCaps(set)
	c := &rspec.LinuxCapabilities{Bounding: list, Effective: []string{}, Permitted: []string{}, Inheritable: []string{}, Ambient: []string{}}
	if uid == 0 {
		c.Effective = slices.Clone(list)
		c.Permitted = slices.Clone(list)
	}
	if in.Defaults.AddInheritableCapabilities {
		c.Inheritable = slices.Clone(list)
	}
	for _, n := range sortedCaps(toSet(ambient)) {
		c.Ambient = append(c.Ambient, n)
		for _, s := range []*[]string{&c.Inheritable, &c.Permitted, &c.Effective} {
			if !slices.Contains(*s, n) {
				*s = append(*s, n)
			}
		}
	}
	return c, nil
}

// capList normalises a CRI capability list; all reports an "ALL" entry.
func capList(names []string, field string) (out []string, all bool, err error) {
	if len(names) > 128 {
		return nil, false, errdefs.Invalid(field, "more than 128 entries")
	}
	for i, c := range names {
		if strings.EqualFold(strings.TrimSpace(c), "ALL") {
			all = true
			continue
		}
		n, ok := capName(c)
		if !ok {
			return nil, false, errdefs.Invalid(fmt.Sprintf("%s[%d]", field, i), "unknown capability %q", errdefs.Clip(c))
		}
		out = append(out, n)
	}
	return out, all, nil
}

func toSet(l []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range l {
		m[s] = true
	}
	return m
}

// sortedCaps orders capabilities by number, the kernel's order.
func sortedCaps(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b string) int { return capNumbers[a] - capNumbers[b] })
	return out
}
