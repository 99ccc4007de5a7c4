package spec

import (
	"fmt"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// ErrNotFound marks a referenced file that does not exist (a Localhost
// seccomp profile, a device, a user name in the image): the request is
// well-formed but names something absent.
var ErrNotFound = errdefs.New(errdefs.ErrNotFound, "not found")

// ErrUnsupported marks a well-formed request for a feature this runtime
// does not implement (image volumes, ID-mapped mounts, user namespaces):
// the CRI asks for Unimplemented then, which clients such as critest
// recognise.
var ErrUnsupported = errdefs.New(errdefs.ErrUnimplemented, "not supported by this runtime")

func unsupported(field, what string) error {
	return fmt.Errorf("%s: %s: %w", field, what, ErrUnsupported)
}
