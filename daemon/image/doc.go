// Package image is crio's image service: it pulls images with
// go.podman.io/image/v5 into a go.podman.io/storage store and lists, inspects
// and removes them. It knows nothing about gRPC; daemon/server adapts it to
// the CRI ImageService; the errors in errors.go carry errdefs kinds, from
// which daemon/server picks the status codes.
//
// The service owns the storage.Store. Other parts of the daemon that need
// the store (containers are created on top of image layers) get it from
// Service.Store, so exactly one store is open per process.
//
// A process using this package must call reexec.Init
// (go.podman.io/storage/pkg/reexec) at the top of main: the storage library
// unpacks layers in a re-executed child of the current binary.
package image
