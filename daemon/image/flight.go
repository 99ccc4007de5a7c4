package image

import (
	"context"
	"sync"
)

// flightGroup runs one pull per key and lets every concurrent caller wait
// for it. Unlike x/sync/singleflight, the shared pull is not tied to the
// first caller's context: it runs until it finishes or until every waiter
// has given up, so one kubelet timeout does not fail the others' pull and an
// abandoned pull does not run on forever.
type flightGroup struct {
	// base bounds every run: cancelling it (the service closing) stops
	// them all, and wg lets Close wait until they have let go of the store.
	base  context.Context
	wg    sync.WaitGroup
	mu    sync.Mutex
	calls map[string]*flight
}

type flight struct {
	done    chan struct{}
	id      string
	err     error
	waiters int
	cancel  context.CancelFunc
}

// do runs fn for key unless a run is already in flight, and waits for the
// result or for ctx. joined reports whether the caller shared another
// caller's run.
func (g *flightGroup) do(ctx context.Context, key string, fn func(context.Context) (string, error)) (id string, joined bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*flight{}
	}
	f, joined := g.calls[key]
	if !joined {
		fctx, cancel := context.WithCancel(g.base)
		f = &flight{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = f
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			f.id, f.err = fn(fctx)
			g.mu.Lock()
			if g.calls[key] == f {
				delete(g.calls, key)
			}
			g.mu.Unlock()
			cancel()
			close(f.done)
		}()
	}
	f.waiters++
	g.mu.Unlock()

	select {
	case <-f.done:
		return f.id, joined, f.err
	case <-ctx.Done():
		g.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			f.cancel()
			// A caller arriving now starts afresh instead of joining a
			// run that is being torn down.
			if g.calls[key] == f {
				delete(g.calls, key)
			}
		}
		g.mu.Unlock()
		return "", joined, ctx.Err()
	}
}
