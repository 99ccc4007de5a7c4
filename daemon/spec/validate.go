package spec

import (
	"path"
	"strings"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// Bounds on request fields. They follow the kernel's own limits where one
// exists, so anything refused here could not have run anyway.
const (
	maxPathLen   = 4096       // PATH_MAX
	maxArgLen    = 128 << 10  // MAX_ARG_STRLEN: one argv or envp string
	maxArgsBytes = 1536 << 10 // argv+envp together, under the usual 2 MiB ARG_MAX
	maxArgs      = 16384
	maxEnv       = 16384
	maxMounts    = 1024
	maxDevices   = 1024
	maxPaths     = 1024 // masked_paths, readonly_paths
	maxGroups    = 1024
	maxNameLen   = 256 // user names, capability names
)

// checkString refuses NULs (which execve and every C API would silently
// truncate at) and strings over max bytes.
func checkString(s, field string, max int) error {
	if len(s) > max {
		return errdefs.Invalid(field, "longer than %d bytes", max)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errdefs.Invalid(field, "contains a NUL byte")
	}
	return nil
}

// checkLine is checkString that also refuses line breaks, for values that
// end up in line-oriented files or logs.
func checkLine(s, field string, max int) error {
	if err := checkString(s, field, max); err != nil {
		return err
	}
	if strings.ContainsAny(s, "\n\r") {
		return errdefs.Invalid(field, "contains a line break")
	}
	return nil
}

// containerPath checks and normalises a path inside the container: it must
// be absolute, and it is cleaned lexically, so "/a/../b" is "/b" and no
// component can climb above the root. (Symlinks in the image are resolved
// by the runtime inside the rootfs, never on the host.)
func containerPath(p, field string) (string, error) {
	if err := checkLine(p, field, maxPathLen); err != nil {
		return "", err
	}
	if !strings.HasPrefix(p, "/") {
		return "", errdefs.Invalid(field, "%q is not an absolute path", errdefs.Clip(p))
	}
	return path.Clean(p), nil
}
