package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crio-appliance/crio/daemon/image"
)

// imageCodes maps the image service's error kinds to gRPC codes.
//
// A registry that cannot be reached or fails is never Unavailable: gRPC
// clients, health checks and retry policies read Unavailable as "this
// server (the runtime) is down", and crio is up and answering. Instead:
//   - no connection (refused, DNS, network, timeout) and TLS failures are
//     FailedPrecondition: crio works, but the pull needs something outside
//     it fixed first (the registry started, DNS, registries.conf, a CA),
//     and retrying the same call right away will not help;
//   - a registry that answered with a failure (5xx, 429) is Unknown, as
//     containerd reports it: no gRPC code means "another server failed".
//
// The kubelet retries pulls with its own back-off whatever the code, and
// shows the message, which names the registry and says what to do.
var imageCodes = map[error]codes.Code{
	image.ErrNotFound:         codes.NotFound,
	image.ErrInUse:            codes.FailedPrecondition,
	image.ErrInvalidReference: codes.InvalidArgument,
	image.ErrUnauthenticated:  codes.Unauthenticated,
	image.ErrDenied:           codes.PermissionDenied,
	image.ErrUnreachable:      codes.FailedPrecondition,
	image.ErrRegistryTLS:      codes.FailedPrecondition,
	image.ErrRegistryFailed:   codes.Unknown,
	image.ErrPullStalled:      codes.DeadlineExceeded,
}

// imageStatusError turns an image service error into a gRPC status. The
// service's messages already say what to do, so they pass through.
func imageStatusError(rpc string, err error) error {
	if c, ok := imageCodes[image.KindOf(err)]; ok {
		return status.Error(c, err.Error())
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, rpc+": "+err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, rpc+": "+err.Error())
	}
	return status.Error(codes.Unknown, rpc+": "+err.Error())
}
