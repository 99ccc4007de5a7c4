package image

import (
	"errors"
)

// Error kinds. Every error the service returns for a reason the caller can
// act on wraps exactly one of these, so callers test with errors.Is and the
// gRPC layer picks a status code without parsing messages.
var (
	// ErrNotFound: no such image, locally or in the registry.
	ErrNotFound = errors.New("image not found")
	// ErrInUse: the image backs a container and cannot be removed.
	ErrInUse = errors.New("image is in use by a container")
	// ErrInvalidReference: the name cannot be parsed, or a short name is
	// ambiguous under short_name_mode=enforcing.
	ErrInvalidReference = errors.New("invalid image reference")
	// ErrUnauthenticated: the registry rejected (or required) credentials.
	ErrUnauthenticated = errors.New("registry authentication failed")
	// ErrDenied: configuration forbids the pull (blocked registry in
	// registries.conf, or the signature policy rejected the image).
	ErrDenied = errors.New("pull denied by policy")
	// ErrUnreachable: no connection to the registry: connection refused,
	// its name does not resolve, a network error or a connect timeout.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrRegistryTLS: the connection was made but TLS failed (a plain-HTTP
	// registry not marked insecure, an untrusted or mismatched certificate).
	ErrRegistryTLS = errors.New("registry TLS failure")
	// ErrRegistryFailed: the registry answered but failed the request
	// (HTTP 5xx, "unavailable", rate limiting).
	ErrRegistryFailed = errors.New("registry failed the request")
	// ErrPullStalled: the pull made no progress for pull_progress_timeout.
	ErrPullStalled = errors.New("pull made no progress")
)

// kinds lists the sentinels in the order KindOf tests them.
var kinds = []error{ErrNotFound, ErrInUse, ErrInvalidReference, ErrUnauthenticated, ErrDenied, ErrUnreachable, ErrRegistryTLS, ErrRegistryFailed, ErrPullStalled}

// Error carries a kind, a message for the user (what happened and what to
// do about it) and the underlying cause.
type Error struct {
	Kind error
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	return e.Msg + ": " + e.Err.Error()
}

// Unwrap exposes both the kind and the cause to errors.Is / errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// newError builds an *Error.
func newError(kind error, cause error, msg string) *Error {
	return &Error{Kind: kind, Msg: msg, Err: cause}
}

// KindOf returns the kind sentinel err wraps, or nil for an internal error.
func KindOf(err error) error {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}
