package container

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// Limits on what one container config may carry beyond what daemon/spec
// checks: the parts this package stores and reports.
const (
	maxNameLen       = 253
	maxImageLen      = 4096
	maxMapEntries    = 1024
	maxMapKeyLen     = 512
	maxMapTotalBytes = 256 << 10 // Kubernetes' own limit on annotations
	maxLogPathLen    = 4096
)

// nameRE: container names are DNS labels in Kubernetes; a little wider
// here, but never a path separator or a CNI/conmon argument separator.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// validateRequest checks what this package itself uses from the request.
func validateRequest(cfg *runtimeapi.ContainerConfig) error {
	if cfg == nil {
		return errdefs.Invalid("config", "missing")
	}
	md := cfg.GetMetadata()
	if md == nil {
		return errdefs.Invalid("config.metadata", "missing")
	}
	if len(md.GetName()) > maxNameLen || !nameRE.MatchString(md.GetName()) {
		return errdefs.Invalid("config.metadata.name", "%q is not a valid container name (letters, digits, '.', '_', '-')", errdefs.Clip(md.GetName()))
	}
	img := cfg.GetImage().GetImage()
	if img == "" {
		return errdefs.Invalid("config.image.image", "no image given")
	}
	if len(img) > maxImageLen || strings.ContainsAny(img, "\x00\n\r ") {
		return errdefs.Invalid("config.image.image", "%q is not an image reference", errdefs.Clip(img))
	}
	if u := cfg.GetImage().GetUserSpecifiedImage(); len(u) > maxImageLen || strings.ContainsAny(u, "\x00\n\r") {
		return errdefs.Invalid("config.image.user_specified_image", "%q is not an image reference", errdefs.Clip(u))
	}
	if err := checkMap("config.labels", cfg.GetLabels()); err != nil {
		return err
	}
	if err := checkMap("config.annotations", cfg.GetAnnotations()); err != nil {
		return err
	}
	if len(cfg.GetCDIDevices()) > 0 {
		return errdefs.Invalid("config.CDI_devices", "CDI devices are not supported by this runtime")
	}
	return nil
}

func checkMap(field string, m map[string]string) error {
	if len(m) > maxMapEntries {
		return errdefs.Invalid(field, "more than %d entries", maxMapEntries)
	}
	total := 0
	for k, v := range m {
		if k == "" || len(k) > maxMapKeyLen || strings.ContainsAny(k, "\x00\n\r") {
			return errdefs.Invalid(field, "key %q is empty, too long or has control characters", errdefs.Clip(k))
		}
		if strings.ContainsRune(v, 0) {
			return errdefs.Invalid(field+"["+errdefs.Clip(k)+"]", "contains a NUL byte")
		}
		total += len(k) + len(v)
	}
	if total > maxMapTotalBytes {
		return errdefs.Invalid(field, "more than %d bytes in total", maxMapTotalBytes)
	}
	return nil
}

// logPath places the container's log inside the pod's log directory. The
// CRI's log_path is relative to it; an absolute path, or one that climbs
// out with "..", is refused: the kubelet never sends one, and a hostile
// client must not make conmon write anywhere on the host.
func logPath(logDir, rel, id string) (string, error) {
	const field = "config.log_path"
	if logDir == "" {
		return "", precondition("the pod has no log directory")
	}
	if rel == "" {
		rel = id + ".log"
	}
	if len(rel) > maxLogPathLen || strings.ContainsAny(rel, "\x00\n\r") {
		return "", errdefs.Invalid(field, "%q has control characters or is too long", errdefs.Clip(rel))
	}
	if filepath.IsAbs(rel) {
		return "", errdefs.Invalid(field, "%q must be relative to the pod's log_directory", errdefs.Clip(rel))
	}
	clean := filepath.Clean(rel)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || strings.HasSuffix(rel, "/") {
		return "", errdefs.Invalid(field, "%q does not name a file inside the pod's log_directory", errdefs.Clip(rel))
	}
	return filepath.Join(logDir, clean), nil
}

// containerName is the name CRI-O gives a container, which the kubelet
// and tools recognise in listings.
func containerName(cfg *runtimeapi.ContainerConfig, pod *runtimeapi.PodSandboxMetadata) string {
	return fmt.Sprintf("k8s_%s_%s_%s_%s_%d", cfg.GetMetadata().GetName(), pod.GetName(), pod.GetNamespace(), pod.GetUid(), cfg.GetMetadata().GetAttempt())
}
