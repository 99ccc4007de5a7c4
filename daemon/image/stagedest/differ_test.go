package stagedest

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/vbatts/tar-split/tar/asm"
	tarstorage "github.com/vbatts/tar-split/tar/storage"
)

// TestPackTarMatchesTarSplit: packTar records a tar exactly as tar-split's
// own asm.NewInputTarStream does, for headers of every kind (a PAX long
// name too), empty and non-empty files (with their checksums, which
// checksummer computes), and padding after the end.
func TestPackTarMatchesTarSplit(t *testing.T) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o700},
		{Name: "dir/" + strings.Repeat("long", 40), Typeflag: tar.TypeReg, Mode: 0o644, Size: 5},
		{Name: "empty", Typeflag: tar.TypeReg, Mode: 0o600},
		{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "dir"},
		{Name: "hard", Typeflag: tar.TypeLink, Linkname: "empty"},
		{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 70000},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			content := make([]byte, h.Size)
			for i := range content {
				content[i] = byte(i * i >> 3)
			}
			if _, err := tw.Write(content); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	raw.Write(make([]byte, 3000)) // padding beyond the end-of-archive blocks

	var want bytes.Buffer
	payload, done, err := asm.NewInputTarStreamWithDone(bytes.NewReader(raw.Bytes()), tarstorage.NewJSONPacker(&want), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, payload); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var got bytes.Buffer
	if err := packTar(bytes.NewReader(raw.Bytes()), tarstorage.NewJSONPacker(&got), &checksummer{}); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Fatalf("packTar wrote\n%s\ntar-split writes\n%s", got.String(), want.String())
	}
}

func TestPackTarRejectsGarbage(t *testing.T) {
	err := packTar(strings.NewReader(strings.Repeat("not a tar ", 100)), tarstorage.NewJSONPacker(io.Discard), tarstorage.NewDiscardFilePutter())
	if err == nil {
		t.Fatal("garbage was recorded as a tar")
	}
}
