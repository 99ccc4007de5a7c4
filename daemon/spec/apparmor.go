package spec

import (
	"fmt"
	"os"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// apparmorProfile decides the AppArmor profile of a container the way
// CRI-O does where the host allows it:
//   - host without AppArmor: nothing is applied; an explicit Localhost
//     request is reported (the caller logs it at Warn), since the pod's
//     author expects a confinement that does not happen;
//   - Unconfined: "unconfined";
//   - RuntimeDefault, or nothing asked for: crio.runtime.apparmor_profile
//     when it is loaded; crio cannot load a profile itself (no
//     apparmor_parser), so an unloaded default is reported and skipped;
//     privileged containers asking nothing stay unconfined;
//   - Localhost: the named profile, which must be loaded, else the request
//     is refused (CRI-O refuses it too).
func apparmorProfile(in *Input, sc *runtimeapi.LinuxContainerSecurityContext, privileged bool) (name, warning string, err error) {
	const field = "config.linux.security_context.apparmor"
	kind := runtimeapi.SecurityProfile_RuntimeDefault
	ref := ""
	explicit := true
	//lint:ignore SA1019 older kubelets still send the deprecated field
	switch prof, legacy := sc.GetApparmor(), sc.GetApparmorProfile(); {
	case prof != nil:
		kind, ref = prof.GetProfileType(), prof.GetLocalhostRef()
	case legacy == "":
		explicit = false
	case legacy == "runtime/default":
	case legacy == "unconfined":
		kind = runtimeapi.SecurityProfile_Unconfined
	case strings.HasPrefix(legacy, "localhost/"):
		kind, ref = runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(legacy, "localhost/")
	default:
		return "", "", errdefs.Invalid("config.linux.security_context.apparmor_profile", "%q is not runtime/default, unconfined or localhost/<profile>", errdefs.Clip(legacy))
	}
	if !in.Host.Facts().AppArmor {
		if kind == runtimeapi.SecurityProfile_Localhost {
			return "", fmt.Sprintf("AppArmor profile %q not applied: AppArmor is not enabled on this host", ref), nil
		}
		return "", "", nil
	}
	switch kind {
	case runtimeapi.SecurityProfile_Unconfined:
		return "unconfined", "", nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		if privileged && !explicit {
			return "", "", nil
		}
		def := in.Defaults.AppArmorProfile
		if def == "" || def == "unconfined" {
			return def, "", nil
		}
		if !in.Host.AppArmorLoaded(def) {
			return "", fmt.Sprintf("AppArmor profile %q (crio.runtime.apparmor_profile) not applied: it is not loaded on this host; load it with apparmor_parser", def), nil
		}
		return def, "", nil
	case runtimeapi.SecurityProfile_Localhost:
		if ref == "" {
			return "", "", errdefs.Invalid(field+".localhost_ref", "empty profile name")
		}
		if !in.Host.AppArmorLoaded(ref) {
			return "", "", errdefs.Invalid(field+".localhost_ref", "AppArmor profile %q is not loaded on this host", errdefs.Clip(ref))
		}
		return ref, "", nil
	}
	return "", "", errdefs.Invalid(field+".profile_type", "unknown profile type %d", kind)
}

// apparmorEnabled reads whether the kernel has AppArmor on, as
// libapparmor's aa_is_enabled does.
func apparmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(b), "Y")
}

// apparmorLoaded says whether the kernel has a profile of that name: the
// securityfs list has one "name (mode)" line per profile.
func apparmorLoaded(name string) bool {
	b, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if n, _, ok := strings.Cut(line, " ("); ok && n == name {
			return true
		}
	}
	return false
}
