package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// Update changes the cgroup limits of a created or running container with
// `<runtime> update --resources FILE`. runc merges the file into the limits
// it recorded at create (and orders the memory and swap writes itself), so
// a field left out stays as it is.
func (r *Runtime) Update(ctx context.Context, id string, res *rspec.LinuxResources) error {
	if res == nil {
		return errors.New("update: no resources")
	}
	data, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("update %s: encode resources: %w", id, err)
	}
	// A file rather than stdin: every OCI runtime's update takes a path,
	// not all of them read "-".
	f, err := os.CreateTemp("", "crio-update-*.json")
	if err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	_, err = r.run(ctx, "update", "--resources", f.Name(), id)
	return err
}
