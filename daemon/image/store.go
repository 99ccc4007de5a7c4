package image

import (
	"errors"
	"fmt"
	"path/filepath"

	"go.podman.io/storage"
	storagetypes "go.podman.io/storage/types"

	"github.com/crio-appliance/crio/daemon/image/stagedest"
)

// storeOptions starts from storage.conf (as CRI-O does) and lets every
// non-empty crio setting win over it.
func storeOptions(o *Options) (storagetypes.StoreOptions, error) {
	so, err := storage.DefaultStoreOptions()
	if err != nil {
		return so, fmt.Errorf("reading storage.conf defaults: %w", err)
	}
	if o.Root != "" {
		so.GraphRoot = o.Root
	}
	if o.RunRoot != "" {
		so.RunRoot = o.RunRoot
	}
	if o.StorageDriver != "" {
		so.GraphDriverName = o.StorageDriver
	}
	if len(o.StorageOptions) > 0 {
		so.GraphDriverOptions = append([]string(nil), o.StorageOptions...)
	}
	if o.ImageStore != "" {
		so.ImageStore = o.ImageStore
	}
	return so, nil
}

// storeWasUsed reports whether a store already holds metadata at the
// location, so an absent clean-shutdown marker means a crash rather than a
// first start.
func storeWasUsed(so storagetypes.StoreOptions) bool {
	if so.GraphRoot == "" {
		return false
	}
	matches, _ := filepath.Glob(filepath.Join(so.GraphRoot, "*-layers", "layers.json"))
	if len(matches) > 0 {
		return true
	}
	matches, _ = filepath.Glob(filepath.Join(so.GraphRoot, "*-images", "images.json"))
	return len(matches) > 0
}

// openStore opens the store and, after an unclean stop, checks and repairs
// it before anything else reads it.
func openStore(o *Options) (storage.Store, error) {
	so, err := storeOptions(o)
	if err != nil {
		return nil, err
	}
	unclean := storeWasUsed(so) && previousRunUnclean(o)

	store, err := storage.GetStore(so)
	if err != nil {
		return nil, fmt.Errorf("opening storage (root %s, runroot %s, driver %q): %w",
			so.GraphRoot, so.RunRoot, so.GraphDriverName, err)
	}
	if unclean {
		if o.InternalRepair {
			o.Logger.Warn("previous shutdown was not clean; checking image storage", "root", store.GraphRoot())
			if err := repairStore(store, o); err != nil {
				o.Logger.Error("storage repair incomplete", "error", err)
			}
		} else {
			o.Logger.Warn("previous shutdown was not clean and internal_repair is off; storage not checked")
		}
	}
	if stagedest.Supported(store) {
		// Layers a killed crio was unpacking; cheap when there are none.
		n, err := stagedest.PruneStale(store.GraphRoot())
		if err != nil {
			o.Logger.Warn("removing layers left half unpacked", "error", err)
		}
		if n > 0 {
			o.Logger.Info("removed layers left half unpacked by an earlier pull", "count", n)
		}
	}
	return store, nil
}

// closeStore releases the store without unmounting layers that running
// containers still use; those keep running while the daemon is down.
func closeStore(store storage.Store) error {
	_, err := store.Shutdown(false)
	if f, ok := store.(interface{ Free() }); ok {
		f.Free()
	}
	if errors.Is(err, storage.ErrLayerUsedByContainer) {
		return nil
	}
	return err
}

// previousRunUnclean: anything but the caller's word that the last run
// ended cleanly.
func previousRunUnclean(o *Options) bool { return o.PreviousShutdown != ShutdownClean }
