package server

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/events"
	"github.com/crio-appliance/crio/daemon/image"
	"github.com/crio-appliance/crio/daemon/network"
	"github.com/crio-appliance/crio/daemon/oci"
	"github.com/crio-appliance/crio/daemon/sandbox"
	ocispec "github.com/crio-appliance/crio/daemon/spec"
	"github.com/crio-appliance/crio/daemon/stats"
	"github.com/crio-appliance/crio/daemon/streaming"
)

// grpcCode is the code a client would see for err, returned by a handler
// the tests call directly (without the interceptors).
func grpcCode(err error) codes.Code {
	return status.Code(toStatus("/runtime.v1.RuntimeService/Test", err))
}

func TestEveryKindHasACode(t *testing.T) {
	for _, k := range errdefs.Kinds {
		if _, ok := kindCodes[k]; !ok {
			t.Errorf("kind %q has no gRPC code", k)
		}
	}
	if len(kindCodes) != len(errdefs.Kinds) {
		t.Errorf("kindCodes has %d entries, errdefs.Kinds %d", len(kindCodes), len(errdefs.Kinds))
	}
}

func TestToStatus(t *testing.T) {
	asIs := status.Error(codes.Aborted, "as is")
	for _, tc := range []struct {
		err  error
		code codes.Code
		msg  string // the status message, when checked
	}{
		{errdefs.ErrNotFound, codes.NotFound, "Test: not found"},
		{fmt.Errorf("pod %q: %w", "x", sandbox.ErrNotFound), codes.NotFound, `Test: pod "x": pod sandbox not found`},
		// Wrapped twice, kinds found through %w and through errors.Join.
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", container.ErrAlreadyExists)), codes.AlreadyExists, ""},
		{errors.Join(errors.New("first"), fmt.Errorf("c: %w", container.ErrUnimplemented)), codes.Unimplemented, ""},
		{errdefs.Invalid("config.mounts[0].propagation", "bad"), codes.InvalidArgument, "Test: invalid config.mounts[0].propagation: bad"},
		{fmt.Errorf("validating: %w", errdefs.Invalid("config.log_path", "absolute")), codes.InvalidArgument, ""},
		{fmt.Errorf("x: %w", sandbox.ErrNotReady), codes.FailedPrecondition, ""},
		{fmt.Errorf("setting up pod network: %w", network.ErrNotReady), codes.FailedPrecondition, "Test: setting up pod network: CNI network not ready"},
		{fmt.Errorf("x: %w", container.ErrFailedPrecondition), codes.FailedPrecondition, ""},
		{fmt.Errorf("x: %w", ocispec.ErrUnsupported), codes.Unimplemented, ""},
		{fmt.Errorf("x: %w", ocispec.ErrNotFound), codes.NotFound, ""},
		{fmt.Errorf("x: %w", stats.ErrNotFound), codes.NotFound, ""},
		{events.ErrTooMany, codes.ResourceExhausted, ""},
		{events.ErrDropped, codes.ResourceExhausted, ""},
		{events.ErrClosed, codes.Unavailable, ""},
		{streaming.ErrTooManyStreams, codes.ResourceExhausted, ""},
		{fmt.Errorf("exec: %w", oci.ErrBadExecArgs), codes.InvalidArgument, ""},
		{&image.Error{Kind: image.ErrRegistryFailed, Msg: "m", Err: context.DeadlineExceeded}, codes.Unknown, "Test: m: context deadline exceeded"},
		// The outermost kind wins: the layer that wrapped last knew more.
		{fmt.Errorf("%w: %w", container.ErrFailedPrecondition, sandbox.ErrNotFound), codes.FailedPrecondition, ""},
		{errdefs.WithKind(errdefs.ErrUnavailable, fmt.Errorf("x: %w", container.ErrNotFound)), codes.Unavailable, "Test: x: not found"},
		// A kind beats the context error beneath it.
		{fmt.Errorf("%w after 1s: %w", oci.ErrExecTimeout, context.DeadlineExceeded), codes.DeadlineExceeded, ""},
		{fmt.Errorf("%w: %w", container.ErrNotFound, context.Canceled), codes.NotFound, ""},
		// No kind: the caller's context, else Unknown with the message.
		{context.Canceled, codes.Canceled, "Test: context canceled"},
		{fmt.Errorf("waiting: %w", context.Canceled), codes.Canceled, ""},
		{context.DeadlineExceeded, codes.DeadlineExceeded, ""},
		{fmt.Errorf("pulling: %w", context.DeadlineExceeded), codes.DeadlineExceeded, ""},
		{errors.New("runc create failed"), codes.Unknown, "Test: runc create failed"},
		{fmt.Errorf("%w: panic: boom", errdefs.ErrInternal), codes.Internal, "Test: internal error: panic: boom"},
		// A status passes unchanged, wrapped or not.
		{asIs, codes.Aborted, "as is"},
		{fmt.Errorf("sending: %w", asIs), codes.Aborted, ""},
	} {
		got := toStatus("/runtime.v1.RuntimeService/Test", tc.err)
		st, ok := status.FromError(got)
		if !ok || st.Code() != tc.code {
			t.Errorf("%v: code %v, want %v", tc.err, st.Code(), tc.code)
			continue
		}
		if tc.msg != "" && st.Message() != tc.msg {
			t.Errorf("%v: message %q, want %q", tc.err, st.Message(), tc.msg)
		}
		if _, isStatus := status.FromError(tc.err); !isStatus && !strings.Contains(st.Message(), tc.err.Error()) {
			t.Errorf("%v: message %q lost the error's text", tc.err, st.Message())
		}
	}
	if got := toStatus("/x/Y", asIs); got != asIs {
		t.Errorf("a status error came back as %v, not itself", got)
	}
	if toStatus("/x/Y", nil) != nil {
		t.Error("nil must stay nil")
	}
}

// A panicking handler is an Internal error through the real server, on a
// unary RPC and on a stream, and the daemon lives on.
func TestPanicIsInternal(t *testing.T) {
	cc := dialCRI(t, Options{Sandbox: panicSandboxes{}})
	rt := runtimeapi.NewRuntimeServiceClient(cc)
	_, err := rt.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "p"})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "PodSandboxStatus: internal error: panic: boom") {
		t.Fatalf("unary panic: %v", err)
	}
	st, err := rt.StreamPodSandboxes(context.Background(), &runtimeapi.StreamPodSandboxesRequest{})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("stream panic: %v", err)
	}
	if _, err := rt.Version(context.Background(), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("the server did not survive: %v", err)
	}
}

type panicSandboxes struct{ errSandboxes }

func (panicSandboxes) Get(string) (*sandbox.Sandbox, error)   { panic("boom") }
func (panicSandboxes) List(sandbox.Filter) []*sandbox.Sandbox { panic("boom") }

// TestStatusCodesChosenHereOnly keeps the error taxonomy in one place: no
// package under daemon/ but this one imports gRPC's status or codes, and
// within this one only errors.go makes statuses (server.go only reads
// their codes for the log and the metrics).
func TestStatusCodesChosenHereOnly(t *testing.T) {
	banned := map[string]bool{"google.golang.org/grpc/status": true, "google.golang.org/grpc/codes": true}
	makers := map[string]bool{"Error": true, "Errorf": true, "New": true, "Newf": true, "FromContextError": true, "FromProto": true}
	root := filepath.Join("..")
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") {
			return err
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		inServer := filepath.Dir(abs) == self
		test := strings.HasSuffix(p, "_test.go")
		if inServer && test {
			return nil // tests read codes
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, src, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if banned[path] && !inServer {
				t.Errorf("%s imports %s: return an error with an errdefs kind instead; daemon/server/errors.go picks the code", p, path)
			}
		}
		if inServer && filepath.Base(p) != "errors.go" {
			for _, m := range statusMakers(t, p, src, makers) {
				t.Errorf("%s: status.%s: return an error with an errdefs kind instead; errors.go picks the code", p, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("only %d files checked: is the walk rooted at daemon/?", checked)
	}
}

// statusMakers lists the calls in a file that make a gRPC status.
func statusMakers(t *testing.T, p string, src []byte, makers map[string]bool) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), p, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	name := ""
	for _, imp := range f.Imports {
		if path, _ := strconv.Unquote(imp.Path.Value); path == "google.golang.org/grpc/status" {
			name = "status"
			if imp.Name != nil {
				name = imp.Name.Name
			}
		}
	}
	if name == "" {
		return nil
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == name && makers[sel.Sel.Name] {
				found = append(found, sel.Sel.Name)
			}
		}
		return true
	})
	return found
}
