package stagedest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// PruneStale removes the overlay staging directories (under graphRoot)
// that no process is using: those of a pull that a killed crio left.
// containers/storage removes them itself only when a store shuts down
// cleanly. It must run before this process stages anything: a process
// does not conflict with its own record locks. It returns how many it
// removed.
func PruneStale(graphRoot string) (int, error) {
	base := filepath.Join(graphRoot, "overlay", "staging")
	entries, err := os.ReadDir(base)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading staging directories: %w", err)
	}
	removed := 0
	var errs []error
	for _, e := range entries {
		dir := filepath.Join(base, e.Name())
		stale, release := stagingDirStale(dir)
		if stale {
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, err)
			} else {
				removed++
			}
		}
		release()
	}
	return removed, errors.Join(errs...)
}

// stagingDirStale reports whether dir's lock file (the one overlay holds
// while a layer is staged there) can be locked, making it if it is
// missing, as containers/storage does when it prunes at shut-down: a
// staging directory without one was left between its making and its
// locking, or after its stacking. release drops the lock, after the
// removal.
func stagingDirStale(dir string) (stale bool, release func()) {
	fd, err := unix.Open(filepath.Join(dir, "staging.lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, func() {}
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: int16(unix.SEEK_SET)}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk); err != nil {
		unix.Close(fd)
		return false, func() {}
	}
	return true, func() { unix.Close(fd) }
}
