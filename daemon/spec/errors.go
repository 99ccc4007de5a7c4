package spec

import (
	"errors"
	"fmt"
)

// InvalidError is a request field that cannot be accepted. Field is the
// CRI field path ("config.mounts[2].container_path"), so the kubelet's
// event points at the culprit.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason) }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// IsInvalid reports whether err is (or wraps) an *InvalidError.
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

// ErrNotFound marks a referenced file that does not exist (a Localhost
// seccomp profile, a device, a user name in the image): the request is
// well-formed but names something absent.
var ErrNotFound = errors.New("not found")

// ErrUnsupported marks a well-formed request for a feature this runtime
// does not implement (image volumes, ID-mapped mounts, user namespaces):
// the CRI asks for Unimplemented then, which clients such as critest
// recognise.
var ErrUnsupported = errors.New("not supported by this runtime")

func unsupported(field, what string) error {
	return fmt.Errorf("%s: %s: %w", field, what, ErrUnsupported)
}
