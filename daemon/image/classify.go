package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// pullFailure is what classifyPullError needs to phrase its message.
type pullFailure struct {
	named      reference.Named
	srcRef     types.ImageReference
	policy     *signature.Policy
	policyPath string
	authSource string
	timeout    string
}

// classifyPullError turns a containers/image error into an *Error of the
// right kind whose message says what to change. Errors it cannot place are
// returned wrapped but without a kind (gRPC Unknown).
func classifyPullError(ctx context.Context, err error, f pullFailure) error {
	var typed *Error
	if errors.As(err, &typed) {
		return err
	}
	name := f.named.String()
	registry := reference.Domain(f.named)

	if errors.Is(context.Cause(ctx), ErrPullStalled) {
		return newError(ErrPullStalled, nil, fmt.Sprintf(
			"pulling %s: no data received for %s (crio.image.pull_progress_timeout); the registry %s stalled, retry or raise the timeout",
			name, f.timeout, registry))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("pulling %s: %w", name, ctx.Err())
	}

	// The policy refuses an image in two ways: a requirement is not met
	// (no signature at all, a rejectRule), or the only signature there is
	// fails verification (signed with another key, for another name), which
	// the library reports as the signature's own error. Both are the
	// operator's policy at work, so both are ErrDenied (PermissionDenied),
	// never an internal error.
	var pre signature.PolicyRequirementError
	var ise signature.InvalidSignatureError
	if reason := ""; errors.As(err, &pre) || errors.As(err, &ise) {
		if pre != "" {
			reason = string(pre)
		} else {
			reason = "its signature is not accepted: " + ise.Error()
		}
		rule := ""
		if f.policy != nil && f.srcRef != nil {
			rule = "; governing rule " + policyRule(f.policy, f.srcRef)
		}
		return newError(ErrDenied, nil, fmt.Sprintf(
			"signature policy %s rejected %s: %s%s; sign the image or change that rule",
			f.policyPath, name, reason, rule))
	}

	if isAuthError(err) {
		return newError(ErrUnauthenticated, err, fmt.Sprintf(
			"registry %s refused access to %s with %s; check the username/password or token",
			registry, name, f.authSource))
	}
	if isNotFound(err) {
		return newError(ErrNotFound, err, fmt.Sprintf(
			"image %s not found in registry %s; check the repository name and tag", name, registry))
	}
	if kind, hint, ok := transportProblem(err); ok {
		return newError(kind, err, fmt.Sprintf(
			"cannot pull %s from registry %s: %s", name, registry, hint))
	}
	return fmt.Errorf("pulling %s: %w", name, err)
}

func isAuthError(err error) bool {
	var ua docker.ErrUnauthorizedForCredentials
	if errors.As(err, &ua) {
		return true
	}
	code, ok := errorCode(err)
	if ok && (code == errcode.ErrorCodeUnauthorized || code == errcode.ErrorCodeDenied) {
		return true
	}
	var st docker.UnexpectedHTTPStatusError
	return errors.As(err, &st) && (st.StatusCode == http.StatusUnauthorized || st.StatusCode == http.StatusForbidden)
}

func isNotFound(err error) bool {
	if code, ok := errorCode(err); ok {
		switch code {
		case v2.ErrorCodeManifestUnknown, v2.ErrorCodeNameUnknown, v2.ErrorCodeBlobUnknown, v2.ErrorCodeManifestBlobUnknown:
			return true
		}
	}
	var st docker.UnexpectedHTTPStatusError
	if errors.As(err, &st) && st.StatusCode == http.StatusNotFound {
		return true
	}
	// A manifest list without an entry for this platform: the image exists
	// but not for us, which for the caller is "not found".
	msg := err.Error()
	return strings.Contains(msg, "no image found in image index for architecture") ||
		strings.Contains(msg, "no image found in manifest list for architecture")
}

// errorCode digs a distribution error code out of err.
func errorCode(err error) (errcode.ErrorCode, bool) {
	var e errcode.Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	var c errcode.ErrorCode
	if errors.As(err, &c) {
		return c, true
	}
	return 0, false
}

// transportProblem recognises a registry that does not answer properly,
// says which of the three ways it failed (no connection, TLS, a failing
// registry) and what usually fixes it.
//
//lint:ignore ST1008 kind is a sentinel naming the failure, not a failure of this function
func transportProblem(err error) (kind error, hint string, ok bool) {
	msg := err.Error()
	var certErr *tls.CertificateVerificationError
	var uaErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recErr tls.RecordHeaderError
	switch {
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"), errors.As(err, &recErr):
		return ErrRegistryTLS, "TLS failed: it speaks plain HTTP; mark it `insecure = true` in registries.conf if that is intended", true
	case errors.As(err, &certErr), errors.As(err, &uaErr), errors.As(err, &hostErr):
		return ErrRegistryTLS, "TLS failed: its certificate is not trusted; install its CA as /etc/containers/certs.d/<host:port>/ca.crt", true
	case errors.Is(err, docker.ErrTooManyRequests):
		return ErrRegistryFailed, "it is rate limiting (HTTP 429); retry later", true
	}
	if code, ok := errorCode(err); ok && (code == errcode.ErrorCodeUnavailable || code == errcode.ErrorCodeTooManyRequests) {
		return ErrRegistryFailed, "it reports being unavailable; retry later", true
	}
	var st docker.UnexpectedHTTPStatusError
	if errors.As(err, &st) && st.StatusCode >= 500 {
		return ErrRegistryFailed, fmt.Sprintf("it answered HTTP %d; retry later or check the registry", st.StatusCode), true
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		return ErrUnreachable, "its name does not resolve (DNS); check the registry host name and the node's DNS", true
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrUnreachable, "connection refused; check that the registry is running and the port is right", true
	case errors.As(err, &opErr):
		return ErrUnreachable, "network error; check that the registry is up and reachable from this node", true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrUnreachable, "the connection timed out; check that the registry is up and reachable from this node", true
	}
	return nil, "", false
}

// Failure categories of the image_pulls_failure_total metric that are not
// registry error codes (CRI-O's names).
const (
	categoryUnknown           = "UNKNOWN"
	categoryConnectionRefused = "CONNECTION_REFUSED"
	categoryConnectionTimeout = "CONNECTION_TIMEOUT"
)

// pullFailureCategory names a failed pull's cause as CRI-O's
// image_pulls_failure_total labels it: the registry's error code
// (MANIFEST_UNKNOWN, UNAUTHORIZED, DENIED, ...), CONNECTION_REFUSED,
// CONNECTION_TIMEOUT (a stalled transfer too), else UNKNOWN. The first of
// errs that names one wins.
func pullFailureCategory(errs []error) string {
	for _, err := range errs {
		var ne net.Error
		code, hasCode := errorCode(err)
		switch {
		case hasCode:
			return code.String()
		case errors.Is(err, ErrUnauthenticated):
			// The registry's 401, seen by containers/image as a
			// credentials error rather than an error code.
			return errcode.ErrorCodeUnauthorized.String()
		case errors.Is(err, syscall.ECONNREFUSED):
			return categoryConnectionRefused
		case errors.Is(err, ErrPullStalled),
			errors.Is(err, context.DeadlineExceeded),
			errors.As(err, &ne) && ne.Timeout():
			return categoryConnectionTimeout
		}
	}
	return categoryUnknown
}
