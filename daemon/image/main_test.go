package image

import (
	"os"
	"testing"

	"go.podman.io/storage/pkg/reexec"
)

// TestMain lets the storage library re-execute the test binary (it unpacks
// layers in a child) and lets a test run a pull in a child process it can
// kill.
func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	if os.Getenv(helperEnv) != "" {
		os.Exit(runHelper())
	}
	os.Exit(m.Run())
}
