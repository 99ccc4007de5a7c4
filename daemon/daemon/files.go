package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/crio-appliance/crio/daemon/config"
	"github.com/crio-appliance/crio/daemon/state"
)

// dirSpec is a directory the daemon needs before it serves.
type dirSpec struct {
	key  string // configuration key, for error messages
	path string
	mode fs.FileMode
}

// dirsFor lists the directories of cfg. Storage and pod logs are private to
// root (0700, as containers/storage and CRI-O create them); the rest only
// hold files whose own modes protect them.
func dirsFor(cfg *config.Config) []dirSpec {
	parent := func(p string) string {
		if p == "" {
			return ""
		}
		return filepath.Dir(p)
	}
	return []dirSpec{
		{"crio.root", cfg.Root, 0o700},
		{"crio.runroot", cfg.RunRoot, 0o700},
		{"crio.imagestore", cfg.ImageStore, 0o700},
		{"crio.log_dir", cfg.LogDir, 0o700},
		{"crio.runtime.container_exits_dir", cfg.Runtime.ContainerExitsDir, 0o700},
		{"crio.runtime.container_attach_socket_dir", cfg.Runtime.ContainerAttachSocketDir, 0o755},
		{"crio.runtime.namespaces_dir", cfg.Runtime.NamespacesDir, 0o755},
		{"crio.version_file", parent(cfg.VersionFile), 0o755},
		{"crio.version_file_persist", parent(cfg.VersionFilePersist), 0o755},
		{"crio.clean_shutdown_file", parent(cfg.CleanShutdownFile), 0o755},
	}
}

// createDirs creates every directory of cfg that is missing. Existing ones
// keep their mode: an administrator may have chosen it.
func createDirs(cfg *config.Config) error {
	for _, d := range dirsFor(cfg) {
		if d.path == "" {
			continue
		}
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("create directory for %s: %w", d.key, err)
		}
	}
	return nil
}

// writeVersionFiles records the running version. CRI-O uses version_file
// (on a tmpfs) to notice a reboot and version_file_persist to notice an
// upgrade; both are written once every service is up, just before the
// socket is served.
func writeVersionFiles(cfg *config.Config, v string) error {
	for _, p := range []string{cfg.VersionFile, cfg.VersionFilePersist} {
		if p == "" {
			continue
		}
		if err := state.WriteFileAtomic(p, []byte(v+"\n"), 0o644); err != nil {
			return fmt.Errorf("write version file: %w", err)
		}
	}
	return nil
}

// versionFileMissing reports whether the version file is absent, which is
// how a reboot shows (it lives on a tmpfs). An empty path disables the
// check. Any other error counts as present: wiping on a hiccup would
// destroy running pods.
func versionFileMissing(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return errors.Is(err, fs.ErrNotExist)
}

// consumeCleanShutdownMarker reports whether the marker exists and removes
// it, so that a crash of this run leaves no marker behind.
func consumeCleanShutdownMarker(path string) (bool, error) {
	if path == "" {
		return false, nil
	}
	err := os.Remove(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("remove clean shutdown marker: %w", err)
}

// writeCleanShutdownMarker creates the marker durably: it must survive the
// power cut that follows a shutdown, or the next start repairs storage for
// nothing.
func writeCleanShutdownMarker(path string) error {
	if path == "" {
		return nil
	}
	if err := state.WriteFileAtomic(path, nil, 0o644); err != nil {
		return fmt.Errorf("write clean shutdown marker: %w", err)
	}
	return nil
}
