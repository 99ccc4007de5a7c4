package container

import (
	"errors"
	"fmt"
)

// Error kinds; the gRPC layer maps them to status codes.
var (
	// ErrNotFound: no such container (or pod, or image).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the name is taken by a container with a different
	// configuration.
	ErrAlreadyExists = errors.New("already exists")
	// ErrFailedPrecondition: the container or pod is not in a state that
	// allows the operation.
	ErrFailedPrecondition = errors.New("not in a state that allows this")
	// ErrUnimplemented: a well-formed request for a feature this runtime
	// does not have.
	ErrUnimplemented = errors.New("not implemented")
)

// InvalidError is a request field that cannot be accepted.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotFound, fmt.Sprintf(format, args...))
}

func precondition(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFailedPrecondition, fmt.Sprintf(format, args...))
}

// clip shortens hostile input for messages.
func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:80] + fmt.Sprintf("...(%d bytes)", len(s))
}
