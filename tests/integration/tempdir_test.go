package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestTempDirKillsWhatIsLeftUnder: the clean-up of TempDir kills the
// processes a test's daemon left running in it (here: one that names the
// directory on its command line, as conmon does) and leaves others alone.
func TestTempDirKillsWhatIsLeftUnder(t *testing.T) {
	RequireRoot(t)
	dir, err := os.MkdirTemp("", "crio-it-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	left := exec.Command("sh", "-c", "sleep 600", filepath.Join(dir, "bundle"))
	other := exec.Command("sleep", "600")
	for _, c := range []*exec.Cmd{left, other} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	defer other.Process.Kill()
	killUnder(dir)
	done := make(chan error, 1)
	go func() { done <- left.Wait() }()
	select {
	case err := <-done:
		if ws, ok := left.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("the left-behind process ended with %v, not killed", err)
		}
	case <-time.After(5 * time.Second):
		left.Process.Kill()
		t.Fatal("the process naming the test directory was not killed")
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("an unrelated process was killed: %v", err)
	}
}
