package server

import (
	"context"
	"log/slog"
	"path"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/metrics"
)

// Options are what the gRPC server needs from the rest of the daemon.
type Options struct {
	// Version is the build version, reported as runtime_version.
	Version string
	// CgroupManager is crio.runtime.cgroup_manager ("cgroupfs" or "systemd").
	CgroupManager string
	// Network reports pod network readiness; nil means NoNetwork.
	Network NetworkReadiness
	// Sandbox serves the pod sandbox RPCs; nil means they are Unimplemented.
	Sandbox SandboxService
	// Containers serves the container RPCs; nil means they are Unimplemented.
	Containers ContainerService
	// Image serves the CRI ImageService; nil means every RPC is Unimplemented.
	Image runtimeapi.ImageServiceServer
	// Events feeds GetContainerEvents; nil (enable_pod_events off) makes
	// it Unimplemented.
	Events EventSource
	// Stats serves the stats and metrics RPCs; nil means Unimplemented.
	Stats StatsService
	// Resources serves the resource update RPCs; nil fields mean
	// Unimplemented.
	Resources ResourceServices
	// Streams serves ExecSync, Exec, Attach and PortForward; nil means
	// Unimplemented.
	Streams StreamService
	// MaxSendMsgSize and MaxRecvMsgSize bound gRPC messages in bytes
	// (crio.api.grpc_max_send_msg_size / grpc_max_recv_msg_size); zero keeps
	// gRPC's defaults.
	MaxSendMsgSize, MaxRecvMsgSize int
	// Logger receives one debug line per RPC; nil discards.
	Logger *slog.Logger
}

// New builds a gRPC server with the CRI RuntimeService and ImageService
// registered. The caller serves and stops it.
func New(opts Options) *grpc.Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var so []grpc.ServerOption
	if opts.MaxSendMsgSize > 0 {
		so = append(so, grpc.MaxSendMsgSize(opts.MaxSendMsgSize))
	}
	if opts.MaxRecvMsgSize > 0 {
		so = append(so, grpc.MaxRecvMsgSize(opts.MaxRecvMsgSize))
	}
	so = append(so,
		// Outermost first: metrics and the log see the code statusUnary
		// chose, for a recovered panic too.
		grpc.ChainUnaryInterceptor(metricsUnary(), logUnary(log), statusUnary(), recoverUnary(log)),
		grpc.ChainStreamInterceptor(statusStream(), recoverStream(log)),
	)
	s := grpc.NewServer(so...)
	runtimeapi.RegisterRuntimeServiceServer(s, newRuntimeServer(opts))
	image := opts.Image
	if image == nil {
		image = runtimeapi.UnimplementedImageServiceServer{}
	}
	runtimeapi.RegisterImageServiceServer(s, imageStreams{image})
	return s
}

// runtimeServer is the RuntimeService. Handler groups are embedded at depth
// one; the Unimplemented fallback sits at depth two (inside unimplemented),
// so Go's selector rules pick a group's method over the fallback, and two
// groups claiming one RPC fail to compile instead of silently shadowing.
type runtimeServer struct {
	unimplemented
	*RuntimeInfo
	*PodSandboxes
	*Containers
	*ContainerEvents
	*Stats
	*Resources
	*Streams
	*ListStreams
}

type unimplemented struct {
	runtimeapi.UnimplementedRuntimeServiceServer
}

// errNotServed answers the RPCs of a handler group built without its
// service: Unimplemented, like the fallback the group shadows.
var errNotServed = errdefs.New(errdefs.ErrUnimplemented, "not implemented")

func newRuntimeServer(opts Options) *runtimeServer {
	info := NewRuntimeInfo(opts.Version, opts.CgroupManager, opts.Network)
	if hl, ok := opts.Containers.(RuntimeHandlerLister); ok {
		info.handlers = hl
	}
	info.log = opts.Logger
	if info.log == nil {
		info.log = slog.New(slog.DiscardHandler)
	}
	rs := &runtimeServer{
		RuntimeInfo:     info,
		PodSandboxes:    NewPodSandboxes(opts.Sandbox),
		Containers:      NewContainers(opts.Containers),
		ContainerEvents: NewContainerEvents(opts.Events, opts.Sandbox, opts.Containers),
		Stats:           NewStats(opts.Stats),
		Resources:       NewResources(opts.Resources),
		Streams:         NewStreams(opts.Streams),
	}
	rs.ListStreams = &ListStreams{list: rs}
	return rs
}

var _ runtimeapi.RuntimeServiceServer = (*runtimeServer)(nil)

// logUnary logs every RPC at debug level. The kubelet polls several RPCs a
// second, so anything louder would drown the log.
func logUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		if log.Enabled(ctx, slog.LevelDebug) {
			log.LogAttrs(ctx, slog.LevelDebug, "rpc",
				slog.String("method", info.FullMethod),
				slog.String("code", status.Code(err).String()),
				slog.Duration("duration", time.Since(start)),
			)
		}
		return resp, err
	}
}

// metricsUnary feeds CRI-O's operation metrics. It is the outermost
// interceptor, so a handler's panic counts as the Internal error
// recoverUnary turns it into; the operation label is the bare RPC name
// ("RunPodSandbox"), as CRI-O labels it.
func metricsUnary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		metrics.Operation(path.Base(info.FullMethod), status.Code(err).String(), time.Since(start))
		return resp, err
	}
}
