// Package streaming runs commands in containers and connects clients to
// containers and pods: ExecSync for probes, and the streaming server for
// kubectl exec, attach and port-forward.
//
// The CRI Exec, Attach and PortForward RPCs only hand out a one-time URL
// on the streaming server (stream_address:stream_port); the client then
// connects there with SPDY or WebSocket. The protocol side is the
// Kubernetes streaming library (k8s.io/cri-streaming), the same code the
// kubelet's clients speak to; this package supplies what happens at the
// other end:
//
//   - exec runs "runc exec" with the container's process settings (oci),
//     with a pseudo-terminal when asked;
//   - attach joins the container's conmon through its attach socket;
//   - port-forward dials 127.0.0.1 (or ::1) inside the pod's network
//     namespace, from an OS thread that enters it and then dies.
//
// Every field of a request is treated as hostile: ids are looked up, never
// used as paths; commands are checked for what execve cannot take; output
// is bounded; and every process, goroutine and thread a request starts
// ends with the request or at Close.
package streaming
