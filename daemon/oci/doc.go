// Package oci runs containers with an OCI runtime binary (runc by default,
// any runtime with runc's command line by configuration) under conmon, the
// per-container monitor.
//
// conmon is started double-forked, so containers outlive the daemon: crio
// can be restarted (or crash) and find its containers running, and their
// exits recorded in the exit directory. The protocol with conmon:
//
//   - two socketpairs are passed as fds 3 and 4 (_OCI_SYNCPIPE,
//     _OCI_STARTPIPE); conmon blocks on the start pipe until crio has moved
//     it into its cgroup, and reports the container's pid (or the runtime's
//     error) as JSON on the sync pipe once "runtime create" has finished;
//   - conmon writes the exit status to <exit dir>/<id> and <bundle>/exit,
//     and <bundle>/oom when the kernel OOM-killed the container;
//   - conmon writes the container's output in the kubelet's CRI log format
//     and reopens the log file when "2 0 0\n" arrives on <bundle>/ctl.
//
// The package knows nothing of pods or the CRI; the container service
// decides what to run and when.
package oci
