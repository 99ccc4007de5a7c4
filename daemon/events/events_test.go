package events

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/crio-appliance/crio/daemon/metrics"
)

func recv(t *testing.T, s *Subscription) Event {
	t.Helper()
	select {
	case ev := <-s.Events():
		return ev
	case <-time.After(time.Second):
		t.Fatal("no event")
	}
	return Event{}
}

func TestOrderAndFanOut(t *testing.T) {
	b := New(Options{Buffer: 8})
	a, err := b.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Kind{Created, Started, Stopped, Deleted} {
		b.Publish(Event{Kind: k, ID: "x"})
	}
	for _, s := range []*Subscription{a, c} {
		for _, want := range []Kind{Created, Started, Stopped, Deleted} {
			if got := recv(t, s).Kind; got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
		}
	}
}

// A subscriber that does not read is dropped; the publisher never blocks
// and the other subscribers keep receiving.
func TestSlowSubscriberDropped(t *testing.T) {
	b := New(Options{Buffer: 2})
	slow, _ := b.Subscribe()
	fast, _ := b.Subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100 {
			b.Publish(Event{Kind: Created, ID: string(rune('a' + i%26))})
			<-fast.Events()
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a slow subscriber")
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("slow subscriber not dropped")
	}
	if !errors.Is(slow.Err(), ErrDropped) {
		t.Errorf("slow: %v", slow.Err())
	}
	if fast.Err() != nil {
		t.Errorf("fast: %v", fast.Err())
	}
	if n := b.Subscribers(); n != 1 {
		t.Errorf("%d subscribers", n)
	}
}

func TestCloseAndLimits(t *testing.T) {
	b := New(Options{MaxSubscribers: 2})
	s1, _ := b.Subscribe()
	s2, _ := b.Subscribe()
	if _, err := b.Subscribe(); !errors.Is(err, ErrTooMany) {
		t.Fatalf("third subscriber: %v", err)
	}
	s1.Close()
	s1.Close() // idempotent
	if s1.Err() != nil {
		t.Errorf("closed by owner: %v", s1.Err())
	}
	if _, err := b.Subscribe(); err != nil {
		t.Fatalf("after close: %v", err)
	}
	b.Close()
	<-s2.Done()
	if !errors.Is(s2.Err(), ErrClosed) {
		t.Errorf("after broadcaster close: %v", s2.Err())
	}
	if _, err := b.Subscribe(); !errors.Is(err, ErrClosed) {
		t.Errorf("subscribe after close: %v", err)
	}
	b.Publish(Event{Kind: Created}) // no subscribers: nothing happens
	var nilB *Broadcaster
	nilB.Publish(Event{Kind: Created})
	nilB.Close()
}

func TestConcurrentPublishSubscribe(t *testing.T) {
	b := New(Options{Buffer: 4})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				b.Publish(Event{Kind: Started})
			}
		})
		wg.Go(func() {
			for range 50 {
				s, err := b.Subscribe()
				if err != nil {
					continue
				}
				select {
				case <-s.Events():
				case <-s.Done():
				default:
				}
				s.Close()
			}
		})
	}
	wg.Wait()
	if n := b.Subscribers(); n != 0 {
		t.Errorf("%d subscribers left", n)
	}
}

// The event that overflows a subscriber's buffer is counted as dropped.
func TestDroppedEventCounted(t *testing.T) {
	dropped := func() float64 {
		reg, err := metrics.Registry([]string{metrics.ContainersEventsDroppedTotal}, nil)
		if err != nil {
			t.Fatal(err)
		}
		fams, err := reg.Gather()
		if err != nil || len(fams) != 1 {
			t.Fatalf("gather: %v %v", fams, err)
		}
		return fams[0].GetMetric()[0].GetCounter().GetValue()
	}
	before := dropped()
	b := New(Options{Buffer: 1})
	if _, err := b.Subscribe(); err != nil {
		t.Fatal(err)
	}
	b.Publish(Event{ID: "a"}) // fills the buffer
	if got := dropped(); got != before {
		t.Fatalf("dropped moved to %v before any overflow", got)
	}
	b.Publish(Event{ID: "b"}) // overflows: the subscriber and this event go
	b.Publish(Event{ID: "c"}) // no subscriber left to miss it
	if got := dropped(); got != before+1 {
		t.Errorf("containers_events_dropped_total = %v, want %v", got, before+1)
	}
}
