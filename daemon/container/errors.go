package container

import (
	"fmt"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// The container service's errors; each has an errdefs kind, which the CRI
// front end maps to a gRPC code.
var (
	// ErrNotFound: no such container (or pod, or image).
	ErrNotFound = errdefs.New(errdefs.ErrNotFound, "not found")
	// ErrAlreadyExists: the name is taken by a container with a different
	// configuration.
	ErrAlreadyExists = errdefs.New(errdefs.ErrAlreadyExists, "already exists")
	// ErrFailedPrecondition: the container or pod is not in a state that
	// allows the operation.
	ErrFailedPrecondition = errdefs.New(errdefs.ErrFailedPrecondition, "not in a state that allows this")
	// ErrUnimplemented: a well-formed request for a feature this runtime
	// does not have.
	ErrUnimplemented = errdefs.New(errdefs.ErrUnimplemented, "not implemented")
)

func notFound(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotFound, fmt.Sprintf(format, args...))
}

func precondition(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFailedPrecondition, fmt.Sprintf(format, args...))
}
