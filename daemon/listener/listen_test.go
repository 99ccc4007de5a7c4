package listener

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shortDir keeps socket paths under the 108-byte sun_path limit, which
// t.TempDir() paths of long test names can exceed.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "lst")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestListenCreatesParentAndMode(t *testing.T) {
	path := filepath.Join(shortDir(t), "a", "b", "crio.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		t.Errorf("type = %v, want socket", fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm != SocketMode {
		t.Errorf("mode = %v, want %v", perm, SocketMode)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still present after Close: %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "crio.sock")
	// A daemon that crashed leaves its socket file behind.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}

	l, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over stale socket: %v", err)
	}
	defer l.Close()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("new socket does not answer: %v", err)
	}
	conn.Close()
}

func TestListenRefusesLiveSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "crio.sock")
	first, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = Listen(path)
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Listen: err = %v, want ErrInUse", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error does not name the socket: %v", err)
	}
	// The first daemon must still be reachable.
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("first listener lost its socket: %v", err)
	}
	conn.Close()
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "crio.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("err = %v, want 'not a socket'", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Error("regular file was replaced")
	}
}

func TestListenEmptyPath(t *testing.T) {
	if _, err := Listen(""); err == nil {
		t.Fatal("want error for empty path")
	}
}
