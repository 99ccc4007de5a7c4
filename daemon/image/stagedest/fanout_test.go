package stagedest

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestFanOutCopies: every reader gets the whole stream, however it reads
// (one byte at a time, or in large pieces), and the tee sees it once.
func TestFanOutCopies(t *testing.T) {
	for _, size := range []int{0, 1, chunkSize - 1, chunkSize, 3*chunkSize + 17} {
		src := make([]byte, size)
		_, _ = rand.NewChaCha8([32]byte{1}).Read(src)
		var tee bytes.Buffer
		f := newFanOut(iotest.HalfReader(bytes.NewReader(src)), 3, &tee)
		got := make([][]byte, 3)
		done := make(chan struct{})
		for i, r := range f.readers {
			go func() {
				var rd io.Reader = r
				if i == 0 {
					rd = iotest.OneByteReader(r)
				}
				got[i], _ = io.ReadAll(rd)
				done <- struct{}{}
			}()
		}
		for range f.readers {
			<-done
		}
		for i := range got {
			if !bytes.Equal(got[i], src) {
				t.Errorf("size %d: reader %d got %d bytes, not the stream", size, i, len(got[i]))
			}
		}
		if !bytes.Equal(tee.Bytes(), src) {
			t.Errorf("size %d: the tee got %d bytes", size, tee.Len())
		}
	}
}

// TestFanOutErrors: an error of the source reaches every reader after the
// data before it, and a reader that gives up stops the others.
func TestFanOutErrors(t *testing.T) {
	boom := errors.New("boom")
	src := io.MultiReader(bytes.NewReader(make([]byte, chunkSize+5)), iotest.ErrReader(boom))
	f := newFanOut(src, 2, nil)
	for i, r := range f.readers {
		n, err := io.Copy(io.Discard, r)
		if !errors.Is(err, boom) || n != chunkSize+5 {
			t.Errorf("reader %d: %d bytes, %v; want %d and boom", i, n, err, chunkSize+5)
		}
	}

	// Endless source: only Close ends it.
	f = newFanOut(iotest.HalfReader(endless{}), 2, nil)
	buf := make([]byte, 100)
	if _, err := io.ReadFull(f.readers[1], buf); err != nil {
		t.Fatal(err)
	}
	f.readers[1].Close()
	if _, err := io.Copy(io.Discard, f.readers[0]); !errors.Is(err, errFanOutAborted) {
		t.Fatalf("the other reader ended with %v, want errFanOutAborted", err)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }
