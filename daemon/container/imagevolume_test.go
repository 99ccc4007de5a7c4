package container

import (
	"errors"
	"testing"

	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/state"
)

func TestCheckImageSubPath(t *testing.T) {
	for in, want := range map[string]string{"": "", "etc": "etc", "usr/share/./x/": "usr/share/x", "a..b": "a..b"} {
		got, err := checkImageSubPath(in, "f")
		if err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"/etc", "../etc", "a/../../b", "a/..", "a\x00b", "x\ny"} {
		var inv *errdefs.InvalidArgumentError
		if _, err := checkImageSubPath(bad, "f"); !errors.As(err, &inv) || inv.Field != "f" {
			t.Errorf("%q: %v, want invalid", bad, err)
		}
	}
}

func TestImageVolumeID(t *testing.T) {
	a, b := imageVolumeID("c1", 0), imageVolumeID("c1", 1)
	if a == b || a != imageVolumeID("c1", 0) || !state.ValidID(a) || a == imageVolumeID("c2", 0) {
		t.Errorf("ids %s %s", a, b)
	}
}
