package reserve

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestRetryWaitsForTheFirstCreate(t *testing.T) {
	n := New()
	tk, id, err := n.Reserve(context.Background(), "k8s_a", "h1")
	if tk == nil || id != "" || err != nil {
		t.Fatalf("first Reserve = %v %q %v", tk, id, err)
	}
	var wg sync.WaitGroup
	got := make([]string, 5)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, got[i], _ = n.Reserve(context.Background(), "k8s_a", "h1")
		}()
	}
	time.Sleep(20 * time.Millisecond)
	tk.Done("id1")
	wg.Wait()
	for i, g := range got {
		if g != "id1" {
			t.Errorf("retry %d got %q, want id1", i, g)
		}
	}
	var c *Conflict
	if _, _, err := n.Reserve(context.Background(), "k8s_a", "h2"); !errors.As(err, &c) || c.ID != "id1" {
		t.Errorf("other config: %v, want a Conflict naming id1", err)
	}
	n.Forget("k8s_a", "other")
	if _, id, _ := n.Reserve(context.Background(), "k8s_a", "h1"); id != "id1" {
		t.Errorf("Forget with the wrong id freed the name")
	}
	n.Forget("k8s_a", "id1")
	if tk, _, _ := n.Reserve(context.Background(), "k8s_a", "h2"); tk == nil {
		t.Errorf("name not free after Forget")
	}
}

func TestReleaseLetsAWaiterCreate(t *testing.T) {
	n := New()
	tk, _, _ := n.Reserve(context.Background(), "k8s_b", "h")
	res := make(chan *Ticket)
	go func() {
		t2, _, _ := n.Reserve(context.Background(), "k8s_b", "h")
		res <- t2
	}()
	time.Sleep(20 * time.Millisecond)
	tk.Release()
	if t2 := <-res; t2 == nil {
		t.Fatal("waiter did not get the name after Release")
	}
}

func TestWaitHonoursContext(t *testing.T) {
	n := New()
	n.Reserve(context.Background(), "k8s_c", "h")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := n.Reserve(ctx, "k8s_c", "h"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}

func TestSetRestores(t *testing.T) {
	n := New()
	n.Set("k8s_d", "h", "id9")
	if _, id, _ := n.Reserve(context.Background(), "k8s_d", "h"); id != "id9" {
		t.Errorf("restored name gave %q", id)
	}
}
