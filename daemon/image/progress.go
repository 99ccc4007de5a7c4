package image

import (
	"context"
	"strings"
	"time"

	"go.podman.io/image/v5/types"

	"github.com/crio-appliance/crio/daemon/metrics"
)

// meterInterval is how often containers/image reports progress when no
// pull_progress_timeout asks for more: the byte counters only need the
// totals, which the Done event completes.
const meterInterval = time.Second

// progressWatch reads containers/image's progress reports. It counts the
// bytes and layers for the image pull metrics and cancels a pull whose
// blob transfers have stalled: containers/image reports on Progress at
// most every Interval while bytes arrive; when nothing is reported for the
// timeout, the context is cancelled with ErrPullStalled as its cause.
type progressWatch struct {
	Progress chan types.ProgressProperties
	Interval time.Duration
	stop     chan struct{}
	done     chan struct{}
}

// watchProgress returns a derived context and the channel to pass to
// copy.Options. With timeout zero it only counts. Call stop when the copy
// has returned; it returns once every report is counted, so a scrape after
// PullImage sees the whole pull.
func watchProgress(ctx context.Context, timeout time.Duration) (context.Context, *progressWatch, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &progressWatch{
		Progress: make(chan types.ProgressProperties),
		Interval: meterInterval,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	var expired <-chan time.Time
	var t *time.Timer
	if timeout > 0 {
		// Report well within the timeout so a slow but moving transfer
		// always resets the timer in time.
		w.Interval = max(timeout/10, 10*time.Millisecond)
		t = time.NewTimer(timeout)
		expired = t.C
	}
	go func() {
		defer close(w.done)
		if t != nil {
			defer t.Stop()
		}
		for {
			select {
			case p := <-w.Progress:
				meter(p)
				if t != nil {
					t.Reset(timeout)
				}
			case <-expired:
				cancel(ErrPullStalled)
				expired = nil
				// Keep draining: the library sends synchronously and must
				// not block on its way out.
			case <-w.stop:
				return
			}
		}
	}()
	return ctx, w, func() { close(w.stop); <-w.done; cancel(nil) }
}

// meter feeds one progress report to the image pull metrics. Read and
// Done reports carry the bytes since the previous report of that blob.
func meter(p types.ProgressProperties) {
	switch p.Event {
	case types.ProgressEventRead:
		metrics.PullBytes(p.Artifact.MediaType, p.Artifact.Size, p.OffsetUpdate)
	case types.ProgressEventDone:
		metrics.PullBytes(p.Artifact.MediaType, p.Artifact.Size, p.OffsetUpdate)
		// The histogram is of layers: the image config is a blob too,
		// but no layer.
		if !strings.Contains(p.Artifact.MediaType, "config") {
			metrics.PullLayerDone(int64(p.Offset))
		}
	case types.ProgressEventSkipped:
		metrics.PullLayerSkipped(p.Artifact.Size)
	}
}
