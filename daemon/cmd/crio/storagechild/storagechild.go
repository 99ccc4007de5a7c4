// Package storagechild runs containers/storage's layer helpers
// (storage-untar, storage-applyLayer, storage-tar) when crio is re-executed
// as one, before the rest of crio is initialized.
//
// containers/storage extracts every pulled layer in a child process: it
// re-executes /proc/self/exe under the helper's name, chroots and unpacks
// the tar from its stdin. The child starts as a whole crio, and Go
// initializes every package a program imports before main runs: the CUE
// schema's decimals, the CRI and protobuf registrations, gRPC, Prometheus,
// reference regexps, none of which an untar uses. Layers are applied one
// after another, so that start-up is paid once per layer on the pull's
// critical path.
//
// Go initializes packages in the order of their import paths, each as soon
// as the packages it imports are initialized (the language specification,
// "Package initialization"). This package imports only containers/storage's
// archive code, so its init runs once that code is ready and before the
// packages sorted after it that crio's other packages need (cri-api,
// protobuf, gRPC, containers/image's docker transport and crio's own
// packages among them), and a helper child exits here. Measured with `perf
// stat -r 30` on the storage-untar start-up: 8.3 ms of CPU and 2150 page
// faults through main, 5.4 ms and 1500 here.
//
// The main package imports it for that side effect and still calls
// reexec.Init itself, for the helpers registered by packages initialized
// later (the overlay driver's storage-mountfrom).
package storagechild

import (
	"os"

	_ "go.podman.io/storage/pkg/chrootarchive" // registers the helpers run here
	"go.podman.io/storage/pkg/reexec"
)

func init() {
	if reexec.Init() {
		// The helpers exit by themselves; this is for one that returns.
		os.Exit(0)
	}
}
