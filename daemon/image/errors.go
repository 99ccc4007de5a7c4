package image

import (
	"errors"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// Error kinds. Every error the service returns for a reason the caller can
// act on wraps exactly one of these, so callers test with errors.Is; each
// has an errdefs kind, from which the CRI front end picks the gRPC code.
//
// A registry that cannot be reached or fails is never Unavailable: gRPC
// clients, health checks and retry policies read Unavailable as "this
// server (the runtime) is down", and crio is up and answering. Instead:
//   - no connection (refused, DNS, network, timeout) and TLS failures are
//     FailedPrecondition: crio works, but the pull needs something outside
//     it fixed first (the registry started, DNS, registries.conf, a CA),
//     and retrying the same call right away will not help;
//   - a registry that answered with a failure (5xx, 429) is Upstream
//     (gRPC Unknown), as containerd reports it.
//
// The kubelet retries pulls with its own back-off whatever the code, and
// shows the message, which names the registry and says what to do.
var (
	// ErrNotFound: no such image, locally or in the registry.
	ErrNotFound = errdefs.New(errdefs.ErrNotFound, "image not found")
	// ErrInUse: the image backs a container and cannot be removed.
	ErrInUse = errdefs.New(errdefs.ErrFailedPrecondition, "image is in use by a container")
	// ErrInvalidReference: the name cannot be parsed, or a short name is
	// ambiguous under short_name_mode=enforcing.
	ErrInvalidReference = errdefs.New(errdefs.ErrInvalidArgument, "invalid image reference")
	// ErrUnauthenticated: the registry rejected (or required) credentials.
	ErrUnauthenticated = errdefs.New(errdefs.ErrUnauthenticated, "registry authentication failed")
	// ErrDenied: configuration forbids the pull (blocked registry in
	// registries.conf, or the signature policy rejected the image).
	ErrDenied = errdefs.New(errdefs.ErrPermissionDenied, "pull denied by policy")
	// ErrUnreachable: no connection to the registry: connection refused,
	// its name does not resolve, a network error or a connect timeout.
	ErrUnreachable = errdefs.New(errdefs.ErrFailedPrecondition, "registry unreachable")
	// ErrRegistryTLS: the connection was made but TLS failed (a plain-HTTP
	// registry not marked insecure, an untrusted or mismatched certificate).
	ErrRegistryTLS = errdefs.New(errdefs.ErrFailedPrecondition, "registry TLS failure")
	// ErrRegistryFailed: the registry answered but failed the request
	// (HTTP 5xx, "unavailable", rate limiting).
	ErrRegistryFailed = errdefs.New(errdefs.ErrUpstream, "registry failed the request")
	// ErrPullStalled: the pull made no progress for pull_progress_timeout.
	ErrPullStalled = errdefs.New(errdefs.ErrDeadlineExceeded, "pull made no progress")
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
