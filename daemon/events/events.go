// Package events fans container and pod lifecycle events out to the
// clients of the CRI GetContainerEvents stream (the kubelet's evented
// PLEG, crictl events).
//
// Publishing never blocks: the runtime must not wait for a client. Each
// subscriber has a bounded buffer; one that falls behind is dropped (its
// subscription ends with ErrDropped and a log line) rather than slowing
// anything down, and its client reconnects and relists, as it must after
// any gap in the stream.
package events

import (
	"log/slog"
	"sync"

	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/metrics"
)

// Kind is what happened.
type Kind int

const (
	Created Kind = iota + 1
	Started
	Stopped
	Deleted
)

func (k Kind) String() string {
	switch k {
	case Created:
		return "created"
	case Started:
		return "started"
	case Stopped:
		return "stopped"
	case Deleted:
		return "deleted"
	}
	return "unknown"
}

// Event is one lifecycle change of a container, or of a pod sandbox
// itself (then ID == PodID, as CRI-O reports the sandbox's own events).
type Event struct {
	Kind  Kind
	ID    string
	PodID string
	At    int64 // Unix nanoseconds
	// Record is the publisher's copy of the container or pod record as it
	// was at the event, so a subscriber reading the event later (or after
	// a removal) still reports that state. Publishers hand over a copy and
	// never touch it again.
	Record any
}

// Publisher is what the lifecycle services need: *Broadcaster implements
// it, and a nil *Broadcaster publishes nothing.
type Publisher interface {
	Publish(Event)
}

var (
	// ErrDropped ends a subscription whose buffer overflowed.
	ErrDropped = errdefs.New(errdefs.ErrResourceExhausted, "event subscriber dropped: it did not keep up")
	// ErrClosed ends every subscription when the broadcaster closes.
	ErrClosed = errdefs.New(errdefs.ErrUnavailable, "event broadcaster closed")
	// ErrTooMany refuses a subscription beyond MaxSubscribers.
	ErrTooMany = errdefs.New(errdefs.ErrResourceExhausted, "too many event subscribers")
)

// Options size a Broadcaster.
type Options struct {
	// Buffer is each subscriber's queue length; 0 means 1024. A kubelet
	// reading at all keeps up with far more than any node produces.
	Buffer int
	// MaxSubscribers bounds the open streams (each holds a buffer); 0
	// means 64.
	MaxSubscribers int
	Logger         *slog.Logger
}

// Broadcaster delivers every published event to every subscriber.
type Broadcaster struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

// New returns a Broadcaster with no subscribers.
func New(opts Options) *Broadcaster {
	if opts.Buffer <= 0 {
		opts.Buffer = 1024
	}
	if opts.MaxSubscribers <= 0 {
		opts.MaxSubscribers = 64
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Broadcaster{opts: opts, log: log, subs: map[*Subscription]struct{}{}}
}

// Subscription receives events from Subscribe on until Done is closed.
type Subscription struct {
	c    chan Event
	done chan struct{}
	b    *Broadcaster
	err  error // set before done is closed
}

// Events delivers the events in the order they were published.
func (s *Subscription) Events() <-chan Event { return s.c }

// Done is closed when the subscription ends: dropped, closed by its owner,
// or the broadcaster closed. Events still buffered may be read, but the
// stream has a gap after them when Err is ErrDropped.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err says why the subscription ended (nil while it runs, and after Close).
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the subscription; idempotent.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.endLocked(s, nil)
}

// Subscribe adds a subscriber.
func (b *Broadcaster) Subscribe() (*Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if len(b.subs) >= b.opts.MaxSubscribers {
		return nil, ErrTooMany
	}
	s := &Subscription{c: make(chan Event, b.opts.Buffer), done: make(chan struct{}), b: b}
	b.subs[s] = struct{}{}
	return s, nil
}

// Publish hands ev to every subscriber without waiting: a subscriber whose
// buffer is full is dropped.
func (b *Broadcaster) Publish(ev Event) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.c <- ev:
		default:
			b.log.Warn("dropping a container event subscriber that does not keep up; it must reconnect and relist",
				"buffer", b.opts.Buffer, "event", ev.Kind.String(), "id", ev.ID)
			b.endLocked(s, ErrDropped)
			metrics.EventDropped()
		}
	}
}

// Close ends every subscription and refuses new ones. The daemon calls it
// before it stops serving: an event stream never ends by itself, and a
// graceful stop waits for every open RPC.
func (b *Broadcaster) Close() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.endLocked(s, ErrClosed)
	}
}

// Subscribers is the number of open subscriptions.
func (b *Broadcaster) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func (b *Broadcaster) endLocked(s *Subscription, err error) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	s.err = err
	close(s.done)
}
