package listener

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// startMux serves a gRPC health service and an HTTP handler on one socket.
func startMux(t *testing.T) (path string, m *Mux) {
	t.Helper()
	path = filepath.Join(shortDir(t), "crio.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	m = NewMux(l, nil)
	m.sniffTimeout = 500 * time.Millisecond

	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.URL.Path)
	})}

	muxDone := make(chan error, 1)
	go func() { muxDone <- m.Serve() }()
	go gs.Serve(m.GRPC())
	go hs.Serve(m.HTTP())
	t.Cleanup(func() {
		m.Close()
		gs.Stop()
		hs.Close()
		if err := <-muxDone; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path, m
}

func httpClient(path string) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}
}

func grpcHealth(t *testing.T, path string) {
	t.Helper()
	cc, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("gRPC over mux: %v", err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("status = %v", resp.Status)
	}
}

func httpGet(t *testing.T, path, url string) string {
	t.Helper()
	resp, err := httpClient(path).Get("http://crio" + url)
	if err != nil {
		t.Fatalf("HTTP over mux: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestMuxServesBoth(t *testing.T) {
	path, _ := startMux(t)
	grpcHealth(t, path)
	if got := httpGet(t, path, "/info"); got != "hello /info" {
		t.Errorf("body = %q", got)
	}
	// Interleave to be sure routing is per connection.
	for range 3 {
		grpcHealth(t, path)
		httpGet(t, path, "/x")
	}
}

func TestMuxSilentClientDoesNotBlockOthers(t *testing.T) {
	path, _ := startMux(t)
	silent, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// A partial preface too: it must not be mistaken for HTTP/1.
	partial, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer partial.Close()
	partial.Write(http2Preface[:5])

	grpcHealth(t, path)
	httpGet(t, path, "/")

	// After the sniff timeout the mux hangs up on both.
	for _, c := range []net.Conn{silent, partial} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("silent client: read err = %v, want EOF", err)
		}
	}
}

func TestMuxCloseStopsChildren(t *testing.T) {
	path := filepath.Join(shortDir(t), "crio.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMux(l, nil)
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	acceptErr := make(chan error, 2)
	for _, c := range []net.Listener{m.GRPC(), m.HTTP()} {
		go func() { _, err := c.Accept(); acceptErr <- err }()
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-acceptErr; !errors.Is(err, net.ErrClosed) {
			t.Errorf("child Accept err = %v, want net.ErrClosed", err)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Close = %v, want nil", err)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Error("socket still answers after Close")
	}
}

func TestPeekedConnReplays(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	go func() { b.Write([]byte("rest")); b.Close() }()
	pc := &peekedConn{Conn: a, peeked: []byte("GET ")}
	got, err := io.ReadAll(pc)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if string(got) != "GET rest" {
		t.Errorf("read %q", got)
	}
}
