package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// This file is the one place where crio chooses gRPC status codes. The
// handlers, and every package below them, return plain errors that carry
// an errdefs kind; the interceptors here turn them into statuses on the
// way out. TestStatusCodesChosenHereOnly keeps it so.

// kindCodes maps each errdefs kind to its code. The reasons for the
// less obvious ones (a registry failure is Unknown, not Unavailable) are
// on the kinds, in package errdefs and package image.
var kindCodes = map[error]codes.Code{
	errdefs.ErrNotFound:           codes.NotFound,
	errdefs.ErrAlreadyExists:      codes.AlreadyExists,
	errdefs.ErrInvalidArgument:    codes.InvalidArgument,
	errdefs.ErrFailedPrecondition: codes.FailedPrecondition,
	errdefs.ErrResourceExhausted:  codes.ResourceExhausted,
	errdefs.ErrUnavailable:        codes.Unavailable,
	errdefs.ErrUnimplemented:      codes.Unimplemented,
	errdefs.ErrUnauthenticated:    codes.Unauthenticated,
	errdefs.ErrPermissionDenied:   codes.PermissionDenied,
	errdefs.ErrDeadlineExceeded:   codes.DeadlineExceeded,
	errdefs.ErrUpstream:           codes.Unknown,
	errdefs.ErrInternal:           codes.Internal,
}

// codeOf picks the code for a handler's error: its kind's, else the
// caller's context ending (the client went away or its deadline passed
// while crio waited), else Unknown.
func codeOf(err error) codes.Code {
	if c, ok := kindCodes[errdefs.KindOf(err)]; ok {
		return c
	}
	switch {
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	}
	return codes.Unknown
}

// toStatus turns a handler's error into the status the client gets. The
// message keeps the error's own text, which names the field or the object
// and often what to do, behind the bare RPC name ("CreateContainer: ..."),
// so a line in the kubelet's log says which call failed. An error that
// already is a status (one the gRPC library made, such as a failed Send)
// passes unchanged.
func toStatus(fullMethod string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), path.Base(fullMethod)+": "+err.Error())
}

// statusUnary applies toStatus to every unary RPC.
func statusUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		return resp, toStatus(info.FullMethod, err)
	}
}

// statusStream applies toStatus to every streaming RPC.
func statusStream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return toStatus(info.FullMethod, handler(srv, ss))
	}
}

// recoverUnary turns a panic in one handler into an Internal error:
// crashing the daemon would cut every other pod's management for one bad
// request.
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = recovered(log, info.FullMethod, r)
			}
		}()
		return handler(ctx, req)
	}
}

// recoverStream is recoverUnary for streaming RPCs.
func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = recovered(log, info.FullMethod, r)
			}
		}()
		return handler(srv, ss)
	}
}

func recovered(log *slog.Logger, method string, r any) error {
	log.Error("panic in RPC handler", "method", method, "panic", r, "stack", string(debug.Stack()))
	return fmt.Errorf("%w: panic: %v", errdefs.ErrInternal, r)
}
