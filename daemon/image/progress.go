package image

import (
	"context"
	"time"

	"go.podman.io/image/v5/types"
)

// progressWatch cancels a pull whose blob transfers have stalled.
// containers/image reports on Progress at most every Interval while bytes
// arrive; when nothing is reported for the timeout, the context is
// cancelled with ErrPullStalled as its cause.
type progressWatch struct {
	Progress chan types.ProgressProperties
	Interval time.Duration
	stop     chan struct{}
}

// watchProgress returns a derived context and the channel to pass to
// copy.Options. With timeout zero it does nothing. Call stop when the copy
// has returned.
func watchProgress(ctx context.Context, timeout time.Duration) (context.Context, *progressWatch, func()) {
	if timeout <= 0 {
		return ctx, &progressWatch{}, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	w := &progressWatch{
		Progress: make(chan types.ProgressProperties),
		// Report well within the timeout so a slow but moving transfer
		// always resets the timer in time.
		Interval: max(timeout/10, 10*time.Millisecond),
		stop:     make(chan struct{}),
	}
	go func() {
		t := time.NewTimer(timeout)
		defer t.Stop()
		for {
			select {
			case <-w.Progress:
				t.Reset(timeout)
			case <-t.C:
				cancel(ErrPullStalled)
				// Keep draining: the library sends synchronously and must
				// not block on its way out.
				for {
					select {
					case <-w.Progress:
					case <-w.stop:
						return
					}
				}
			case <-w.stop:
				return
			}
		}
	}()
	return ctx, w, func() { close(w.stop); cancel(nil) }
}
