package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
)

// Features is what the runtime says it supports (`<runtime> features`,
// the OCI runtime features document).
type Features struct {
	MountOptions []string `json:"mountOptions"`
}

// Features asks the runtime. A runtime without the features command (runc
// before 1.1, some others) answers an error; callers then assume the
// least.
func (r *Runtime) Features(ctx context.Context) (*Features, error) {
	out, err := r.run(ctx, "features")
	if err != nil {
		return nil, err
	}
	var f Features
	if err := json.Unmarshal(out, &f); err != nil {
		return nil, fmt.Errorf("%s features: %w", r.cfg.Name, err)
	}
	return &f, nil
}

// HasMountOption reports whether the runtime takes mount option o.
func (f *Features) HasMountOption(o string) bool {
	return f != nil && slices.Contains(f.MountOptions, o)
}
