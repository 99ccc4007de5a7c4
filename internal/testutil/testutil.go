// Package testutil holds the small helpers that the tests of several
// packages share, so that each does not keep its own copy. Only tests (and
// the integration tests' helper package) import it.
package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer that goroutines may write concurrently:
// a log sink, or a process's output, read by the test meanwhile.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WriteFile writes data to p below root, making the directories on the
// way; it fails the test on error.
func WriteFile(t *testing.T, root, p, data string, mode os.FileMode) {
	t.Helper()
	f := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}
