package oci

import (
	"context"
	"testing"
)

func TestFeatures(t *testing.T) {
	e := newEnv(t)
	f, err := e.rt.Features(context.Background())
	if err != nil {
		t.Skipf("runtime without a features command: %v", err)
	}
	if !f.HasMountOption("rbind") || f.HasMountOption("no-such-option") {
		t.Errorf("mount options %v", f.MountOptions)
	}
	var none *Features
	if none.HasMountOption("rro") {
		t.Error("nil features claim rro")
	}
}
