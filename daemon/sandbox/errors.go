package sandbox

import "github.com/crio-appliance/crio/daemon/errdefs"

// ErrNotFound is returned for an id no pod has.
var ErrNotFound = errdefs.New(errdefs.ErrNotFound, "pod sandbox not found")

// ErrAlreadyExists is returned when a pod with the same metadata exists
// with a different configuration.
var ErrAlreadyExists = errdefs.New(errdefs.ErrAlreadyExists, "pod sandbox already exists")

// ErrNotReady is returned for an operation that needs a ready pod.
var ErrNotReady = errdefs.New(errdefs.ErrFailedPrecondition, "pod sandbox is not ready")
