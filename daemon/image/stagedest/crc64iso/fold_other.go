//go:build !amd64 && !arm64

package crc64iso

const canFold = false

func fold(uint64, []byte, *[4]uint64) (uint64, uint64) {
	panic("crc64iso: no folding on this architecture")
}
