package crc64iso

import (
	"bytes"
	"encoding/binary"
	"hash/crc64"
	"math/rand/v2"
	"os"
	"testing"
)

// TestMatchesHashCRC64 checks every length up to a few folds, at every
// alignment, from several starting checksums, against hash/crc64.
func TestMatchesHashCRC64(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1200)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for _, start := range []uint64{0, 1, ^uint64(0), rng.Uint64()} {
		for off := range 16 {
			for n := 0; off+n <= len(buf); n++ {
				p := buf[off : off+n]
				if got, want := Update(start, p), crc64.Update(start, table, p); got != want {
					t.Fatalf("Update(%#x, %d bytes at %d) = %#x, hash/crc64 gives %#x", start, n, off, got, want)
				}
			}
		}
	}
}

func TestLargeAndPatterned(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	big := make([]byte, 4<<20+13)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	for _, p := range [][]byte{big, make([]byte, 1<<20), bytes.Repeat([]byte{0xff}, 70000), bytes.Repeat([]byte("tar-split"), 9999)} {
		if got, want := Update(0, p), crc64.Checksum(p, table); got != want {
			t.Fatalf("Update(0, %d bytes) = %#x, hash/crc64 gives %#x", len(p), got, want)
		}
	}
}

// TestHashWritesInPieces writes a stream in pieces of odd sizes, as
// io.Copy from a tar reader does, and compares Sum with hash/crc64's.
func TestHashWritesInPieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	data := make([]byte, 300000)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	h, ref := New(), crc64.New(table)
	for p := data; len(p) > 0; {
		n := min(len(p), rng.IntN(5000))
		h.Write(p[:n])
		ref.Write(p[:n])
		p = p[n:]
	}
	if !bytes.Equal(h.Sum([]byte("x")), ref.Sum([]byte("x"))) || h.Sum64() != ref.Sum64() {
		t.Fatalf("Sum %x, hash/crc64 %x", h.Sum(nil), ref.Sum(nil))
	}
	if h.Size() != ref.Size() || h.BlockSize() != ref.BlockSize() {
		t.Fatal("Size or BlockSize differs from hash/crc64's")
	}
	h.Reset()
	if h.Sum64() != 0 {
		t.Fatal("Reset left a checksum")
	}
}

// TestFoldAlone checks the folding on its own, where there is one: what it
// leaves, run through hash/crc64 from a zero register, must be the
// register after the whole buffer. Update would pass the tests above
// through hash/crc64 alone if canFold were wrongly false.
func TestFoldAlone(t *testing.T) {
	if !canFold {
		// make test-unit sets this where the folding must run: on its
		// amd64 machine, and for arm64 under qemu.
		if os.Getenv("CRC64ISO_MUST_FOLD") != "" {
			t.Fatal("no carry-less multiplication here, but CRC64ISO_MUST_FOLD is set")
		}
		t.Log("no carry-less multiplication on this machine: hash/crc64 does all of it")
		return
	}
	p := bytes.Repeat([]byte{1, 2, 3, 5, 7, 11, 13}, 300)[:2048]
	lo, hi := fold(^uint64(12345), p, &foldConstants)
	var rest [16]byte
	binary.LittleEndian.PutUint64(rest[:8], lo)
	binary.LittleEndian.PutUint64(rest[8:], hi)
	if got, want := crc64.Update(^uint64(0), table, rest[:]), crc64.Update(12345, table, p); got != want {
		t.Fatalf("folded %#x, hash/crc64 %#x", got, want)
	}
}

func BenchmarkUpdate(b *testing.B) {
	p := make([]byte, 32<<10)
	for i := range p {
		p[i] = byte(i * 7)
	}
	b.Run("crc64iso", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			Update(0, p)
		}
	})
	b.Run("hash-crc64", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		for b.Loop() {
			crc64.Update(0, table, p)
		}
	})
}
