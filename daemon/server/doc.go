// Package server is the CRI v1 gRPC front end: thin adapters that validate a
// request and call a service. It holds no state of its own; the services it
// calls are passed in through Options.
//
// Handlers return plain errors carrying an errdefs kind, theirs or the
// service's; the interceptors in errors.go are the one place that turns
// them into gRPC status codes (kind, else the caller's context, else
// Unknown), prefixed with the RPC's name.
//
// The RuntimeService is assembled from small handler groups (see
// runtimeServer): each group is a type implementing a few RPCs, embedded one
// level above the Unimplemented fallback, so a group's methods win and every
// RPC nobody implements yet answers codes.Unimplemented. To add RPCs, write a
// new group type in its own file and embed it in runtimeServer.
package server
