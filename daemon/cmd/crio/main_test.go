package main

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// childEnv marks a child started by initTrace. Had storagechild not stopped
// it, the child would run this package's tests again, and start children of
// its own: TestMain ends it first.
const childEnv = "CRIO_TEST_INITTRACE_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// initTrace runs this test binary under argv0 with GODEBUG=inittrace=1 and
// returns the import paths of the packages it initialized, in order.
func initTrace(t *testing.T, argv0 string, args ...string) []string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: self, Args: append([]string{argv0}, args...), Env: append(os.Environ(), "GODEBUG=inittrace=1", childEnv+"=1")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run() // the helper fails without its pipes; the trace is written before
	var pkgs []string
	for line := range strings.Lines(stderr.String()) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "init" {
			pkgs = append(pkgs, f[1])
		}
	}
	return pkgs
}

// TestLayerHelperStopsBeforeCrio: a re-executed storage-untar child exits
// from storagechild's init, before the packages only the daemon needs.
func TestLayerHelperStopsBeforeCrio(t *testing.T) {
	daemonOnly := []string{
		"k8s.io/cri-api/pkg/apis/runtime/v1",
		"google.golang.org/grpc",
		"go.podman.io/image/v5/docker",
		"github.com/crio-appliance/crio/daemon/server",
	}

	// Control: the same binary run as itself initializes them all, so the
	// check below can fail.
	full := initTrace(t, os.Args[0])
	for _, p := range daemonOnly {
		if !slices.Contains(full, p) {
			t.Fatalf("control run did not initialize %s; the trace has %d packages", p, len(full))
		}
	}

	child := initTrace(t, "storage-untar", t.TempDir())
	if !slices.Contains(child, "go.podman.io/storage/pkg/chrootarchive") {
		t.Fatalf("storage-untar child did not initialize chrootarchive; trace: %v", child)
	}
	for _, p := range daemonOnly {
		if slices.Contains(child, p) {
			t.Errorf("storage-untar child initialized %s (%d packages in all): it should have exited in storagechild's init", p, len(child))
		}
	}
	t.Logf("packages initialized: %d as crio, %d as storage-untar", len(full), len(child))
}

// TestRaiseProcs: the daemon runs with at least minProcs Ps, unless
// GOMAXPROCS says otherwise.
func TestRaiseProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(1)
	raiseProcs()
	if got := runtime.GOMAXPROCS(0); got != minProcs {
		t.Errorf("GOMAXPROCS %d, want %d", got, minProcs)
	}
	runtime.GOMAXPROCS(minProcs + 3)
	raiseProcs()
	if got := runtime.GOMAXPROCS(0); got != minProcs+3 {
		t.Errorf("a machine with more CPUs was lowered to %d", got)
	}
	t.Setenv("GOMAXPROCS", "1")
	runtime.GOMAXPROCS(1)
	raiseProcs()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("GOMAXPROCS=1 in the environment gave %d", got)
	}
}
