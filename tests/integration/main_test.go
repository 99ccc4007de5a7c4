package integration

import (
	"fmt"
	"os"
	"testing"
)

// TestMain builds the binary once, before any test, so that a build failure
// is one clear error rather than one per test.
func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		if _, err := Binary(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	CleanupBinary()
	os.Exit(code)
}
