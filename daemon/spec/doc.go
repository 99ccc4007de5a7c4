// Package spec turns a CRI container request into an OCI runtime spec.
//
// Generate is a function of its Input: the CRI ContainerConfig (treated as
// hostile: every field is checked and bad ones are reported as
// *errdefs.InvalidArgumentError naming the CRI field), the pod it joins, the image's
// config, the daemon's defaults and a few facts about the host. It makes
// no changes anywhere; the only files it reads are the container's
// /etc/passwd and /etc/group (through the rootfs, with symlinks resolved
// inside it), seccomp profiles, and host device nodes and mount tables
// through the Host interface, so that tests can substitute them.
//
// The container service writes the result to the bundle; the OCI runtime
// reads it. Everything a container may do is decided here, so the security
// defaults live here too: default capabilities, no extra privileges for
// non-root users, masked and read-only /proc and /sys paths, the embedded
// RuntimeDefault seccomp profile, read-only cgroupfs, clamped oom_score_adj.
package spec
