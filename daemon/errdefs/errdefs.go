// Package errdefs is crio's error taxonomy: the few kinds of failure a CRI
// client reacts to differently (retry, give up, fix the request, wait).
//
// The domain packages (sandbox, container, image, oci, streaming, ...)
// return errors that carry one kind, with context added through %w; the
// CRI front end (daemon/server) is the one place that turns a kind into a
// gRPC status code. So no package below it imports grpc's status or codes,
// and a domain test asks errors.Is(err, errdefs.ErrNotFound) instead of
// parsing a status.
//
// A package keeps its own sentinels (container.ErrNotFound is not
// sandbox.ErrNotFound: callers tell them apart) and gives each a kind with
// New. An error with no kind is a failure nobody planned for: the front end
// reports it as Unknown with its message.
package errdefs

import (
	"errors"
	"fmt"
)

// The kinds. Each names the gRPC code the front end sends for it, except
// where the comment says otherwise.
var (
	// ErrNotFound: the id or name the request gives is unknown.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the name is taken by something configured
	// differently.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument: the request itself is wrong; retrying it as is
	// cannot succeed. Prefer InvalidArgumentError, which names the field.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrFailedPrecondition: the request is fine but the state it meets
	// (a stopped pod, an image in use, an unreachable registry) is not.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrResourceExhausted: a bound crio keeps was reached (streams,
	// subscribers, a slow reader's buffer).
	ErrResourceExhausted = errors.New("resource exhausted")
	// ErrUnavailable: crio itself cannot serve this now (it is stopping).
	// Never for a registry or other server being down: clients read
	// Unavailable as "the runtime is down".
	ErrUnavailable = errors.New("unavailable")
	// ErrUnimplemented: a well-formed request for something this runtime
	// does not do; clients such as critest skip on it.
	ErrUnimplemented = errors.New("not implemented")
	// ErrUnauthenticated: credentials were missing or rejected.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: configuration forbids it (a policy).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrDeadlineExceeded: crio's own time limit ran out (an exec
	// timeout, a stalled pull), as opposed to the caller's deadline.
	ErrDeadlineExceeded = errors.New("deadline exceeded")
	// ErrUpstream: another server (a registry) answered with a failure.
	// Sent as Unknown, as containerd does: no gRPC code means "a server
	// behind this one failed".
	ErrUpstream = errors.New("upstream server failed")
	// ErrInternal: a bug in crio, such as a recovered panic.
	ErrInternal = errors.New("internal error")
)

// Kinds lists every kind, so the front end's mapping can be checked to
// cover them all.
var Kinds = []error{
	ErrNotFound, ErrAlreadyExists, ErrInvalidArgument, ErrFailedPrecondition,
	ErrResourceExhausted, ErrUnavailable, ErrUnimplemented, ErrUnauthenticated,
	ErrPermissionDenied, ErrDeadlineExceeded, ErrUpstream, ErrInternal,
}

// kindError gives a message, or another error, a kind.
type kindError struct {
	kind error
	msg  string
	err  error
}

func (e *kindError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return e.msg
}

// Unwrap puts the kind first, so KindOf finds it before any kind the
// cause carries.
func (e *kindError) Unwrap() []error {
	if e.err == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.err}
}

// New returns a sentinel error with message msg and the given kind:
// errors.Is matches both the sentinel and the kind.
func New(kind error, msg string) error {
	return &kindError{kind: kind, msg: msg}
}

// WithKind gives err a kind, its message unchanged; nil stays nil.
func WithKind(kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: kind, err: err}
}

// InvalidArgumentError is a request field that cannot be accepted. Field
// is the CRI field path ("config.mounts[2].container_path"), so the message
// the kubelet shows points at the culprit.
type InvalidArgumentError struct {
	Field  string
	Reason string
}

func (e *InvalidArgumentError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
}

// Unwrap gives the error its kind.
func (e *InvalidArgumentError) Unwrap() error { return ErrInvalidArgument }

// Invalid returns an *InvalidArgumentError for field.
func Invalid(field, format string, args ...any) error {
	return &InvalidArgumentError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind err carries, or nil. Where it carries several
// (an error wrapping another with a different kind), the outermost wins:
// the layer that wrapped last knew the most about what went wrong.
func KindOf(err error) error {
	for err != nil {
		for _, k := range Kinds {
			if err == k {
				return k
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if k := KindOf(e); k != nil {
					return k
				}
			}
			return nil
		default:
			return nil
		}
	}
	return nil
}

// Clip shortens hostile input (an id, a name, a path from a request)
// before a message quotes it, so a megabyte id makes a short error.
func Clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + fmt.Sprintf("...(%d bytes)", len(s))
}
