// Package server is the CRI v1 gRPC front end: thin adapters that validate a
// request, call a service and map its errors to gRPC codes. It holds no state
// of its own; the services it calls are passed in through Options.
//
// The RuntimeService is assembled from small handler groups (see
// runtimeServer): each group is a type implementing a few RPCs, embedded one
// level above the Unimplemented fallback, so a group's methods win and every
// RPC nobody implements yet answers codes.Unimplemented. To add RPCs, write a
// new group type in its own file and embed it in runtimeServer.
package server
