//go:build amd64 || arm64

package crc64iso

// fold folds p (a multiple of 16 bytes, at least 64) with the register raw
// XORed into its first 8 bytes down to one 16-byte block congruent to it,
// returned as its two little-endian halves. k is foldConstants.
//
//go:noescape
func fold(raw uint64, p []byte, k *[4]uint64) (lo, hi uint64)
