package sandbox

import (
	"errors"
	"fmt"
)

// ErrNotFound is returned for an id no pod has.
var ErrNotFound = errors.New("pod sandbox not found")

// ErrAlreadyExists is returned when a pod with the same metadata exists
// with a different configuration.
var ErrAlreadyExists = errors.New("pod sandbox already exists")

// InvalidError is a request field that cannot be accepted. Field is the CRI
// field path (e.g. "config.dns_config.servers[1]"), so that the caller's
// message points at the culprit.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
