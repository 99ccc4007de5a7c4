// Package policy embeds the security policies crio ships: the seccomp
// profile used for containers that ask for RuntimeDefault, unless
// crio.runtime.seccomp_profile names another. A container that sets no
// profile runs unconfined, as the CRI defines it (daemon/spec).
//
// The profile is data, not code, so that it can be read, diffed against the
// container ecosystem's default and replaced (crio.runtime.seccomp_profile)
// without rebuilding; the embedded copy means a crio binary never depends
// on a file that a package manager may have moved.
package policy

import _ "embed"

// SeccompJSON is policy/seccomp.json: an allowlist in the format described
// in daemon/spec (names, action, args, includes/excludes by capability and
// architecture).
//
//go:embed seccomp.json
var SeccompJSON []byte
