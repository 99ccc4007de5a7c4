package image

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/storage"
)

// Service is the image service. It is safe for concurrent use.
type Service struct {
	opts    Options
	store   storage.Store
	pins    *pinMatcher
	flights flightGroup
	details detailsCache
	fs      fsCache
	// fsRefresh counts background FsInfo refreshes, waited for by Close.
	fsRefresh sync.WaitGroup

	stopPulls context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

// New opens the store (checking and repairing it after an unclean stop)
// and returns a ready service. Close it on graceful shutdown.
func New(opts Options) (*Service, error) {
	if err := opts.normalize(); err != nil {
		return nil, fmt.Errorf("image service options: %w", err)
	}
	store, err := openStore(&opts)
	if err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Service{
		opts:      opts,
		store:     store,
		pins:      newPinMatcher(opts.PinnedImages),
		flights:   flightGroup{base: base},
		stopPulls: cancel,
	}
	return s, nil
}

// Store is the storage the service manages, for the container service to
// create container layers on top of images. Do not Shutdown it; Close the
// service instead.
func (s *Service) Store() storage.Store { return s.store }

// ReloadRegistries makes the next pull re-read registries.conf and its
// drop-ins (CRI-O does this on SIGHUP). policy.json is read on every pull.
func (s *Service) ReloadRegistries() {
	sysregistriesv2.InvalidateCache()
}

// Close stops in-flight pulls, releases the store without unmounting layers
// of running containers, and syncs the store's file system, so that the
// clean-shutdown marker the daemon writes next vouches for what is on disk.
// Calling it again returns the first result.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.stopPulls()
		s.flights.wg.Wait()
		s.fsRefresh.Wait()
		graphRoot := s.store.GraphRoot()
		if err := closeStore(s.store); err != nil {
			// No marker: the next start checks the store.
			s.closeErr = fmt.Errorf("shutting down storage: %w", err)
			return
		}
		syncFS(graphRoot)
	})
	return s.closeErr
}

// isNotFound is errors.Is(err, ErrNotFound), for readability at call sites.
func isNotFoundErr(err error) bool { return errors.Is(err, ErrNotFound) }
