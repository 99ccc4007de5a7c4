package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crio-appliance/crio/daemon/image"
)

// imageCodes maps the image service's error kinds to gRPC codes.
var imageCodes = map[error]codes.Code{
	image.ErrNotFound:         codes.NotFound,
	image.ErrInUse:            codes.FailedPrecondition,
	image.ErrInvalidReference: codes.InvalidArgument,
	image.ErrUnauthenticated:  codes.Unauthenticated,
	image.ErrDenied:           codes.PermissionDenied,
	image.ErrUnavailable:      codes.Unavailable,
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
