// Package testutil holds the small helpers that the tests of several
// packages share, so that each does not keep its own copy. Only tests (and
// the integration tests' helper package) import it.
package testutil

import (
	"bytes"
	"encoding/json"
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

// LatestRecord is, of a crio record's files (state.Records: the synced
// one and the volatile one), the one that holds its latest write: the
// higher "recordSeq". Missing files are skipped; none at all fails the
// test.
func LatestRecord(t *testing.T, paths ...string) string {
	t.Helper()
	best, bestSeq := "", uint64(0)
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var hdr struct {
			Seq uint64 `json:"recordSeq"`
		}
		if err := json.Unmarshal(raw, &hdr); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if best == "" || hdr.Seq > bestSeq {
			best, bestSeq = p, hdr.Seq
		}
	}
	if best == "" {
		t.Fatalf("no record among %v", paths)
	}
	return best
}

// SetRecordField rewrites one top-level field of a JSON record file, as a
// crash at the right moment would have left it, keeping the other fields
// as they are (the sequence number needs all 64 bits).
func SetRecordField(t *testing.T, path, key string, value any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&rec); err != nil {
		t.Fatal(err)
	}
	rec[key] = value
	if raw, err = json.Marshal(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}
