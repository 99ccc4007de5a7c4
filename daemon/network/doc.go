// Package network attaches pods to the CNI network configured in
// crio.network (network_dir, plugin_dirs, cni_default_network) through
// libcni, and reports whether pods can be networked at all (the CRI
// NetworkReady condition).
//
// The configuration is re-read whenever the directory changes, checked
// cheaply on each readiness query and before each attach, so a network
// config dropped in after start-up (the usual order on a fresh node, where
// the network add-on starts as a pod) makes the node ready without a
// restart: no watcher goroutine to leak or to miss an event.
package network
