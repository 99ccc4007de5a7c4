// Package reserve holds the names of pods and containers (k8s_<...>) for
// their creates. The kubelet retries a create whose deadline passed, often
// while the first attempt is still running; CRI-O answers such retries
// with "name is reserved". Here a retry of the same request waits for the
// first attempt and gets its object, and only a different request under
// the same name is refused.
package reserve

import (
	"context"
	"fmt"
	"sync"
)

// Names maps names to the create that holds them. The zero value is not
// usable; call New.
type Names struct {
	mu sync.Mutex
	m  map[string]*claim
}

// claim is one name's holder: in flight while done is open, else the
// object id.
type claim struct {
	hash string // the request's config hash
	id   string
	done chan struct{}
}

// New returns an empty set of names.
func New() *Names { return &Names{m: map[string]*claim{}} }

// Conflict is the error for a name held by a request with another config.
type Conflict struct {
	Name string
	ID   string // the holder's id; "" while its create is in flight
}

func (c *Conflict) Error() string {
	return fmt.Sprintf("%s (id %.12s) was created with a different configuration", c.Name, c.ID)
}

// Ticket is a caller's hold on a name: it must end with Done or Release.
type Ticket struct {
	n    *Names
	name string
	c    *claim
}

// Reserve claims name for a create of a request whose config hashes to
// hash. Exactly one of its results is set:
//   - a Ticket: the caller creates the object, then calls Done or Release;
//   - an id: the same request already made that object;
//   - an error: a *Conflict, or ctx's error while waiting for an
//     in-flight create of the same request.
func (n *Names) Reserve(ctx context.Context, name, hash string) (*Ticket, string, error) {
	for {
		n.mu.Lock()
		c, ok := n.m[name]
		if !ok {
			c = &claim{hash: hash, done: make(chan struct{})}
			n.m[name] = c
			n.mu.Unlock()
			return &Ticket{n: n, name: name, c: c}, "", nil
		}
		if c.hash != hash {
			id := c.id
			n.mu.Unlock()
			return nil, "", &Conflict{Name: name, ID: id}
		}
		if c.done == nil {
			id := c.id
			n.mu.Unlock()
			return nil, id, nil
		}
		done := c.done
		n.mu.Unlock()
		select {
		case <-done: // look again: it either succeeded or let the name go
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
}

// Done records the object the create made; waiting retries get its id.
// Register the object where retries look it up before calling Done.
func (t *Ticket) Done(id string) {
	t.n.mu.Lock()
	t.c.id = id
	close(t.c.done)
	t.c.done = nil
	t.n.mu.Unlock()
}

// Release gives the name up after a failed create; a waiting retry then
// tries the create itself.
func (t *Ticket) Release() {
	t.n.mu.Lock()
	if t.n.m[t.name] == t.c {
		delete(t.n.m, t.name)
	}
	close(t.c.done)
	t.c.done = nil
	t.n.mu.Unlock()
}

// Set records an existing object's name, for objects restored at start.
func (n *Names) Set(name, hash, id string) {
	n.mu.Lock()
	n.m[name] = &claim{hash: hash, id: id}
	n.mu.Unlock()
}

// Forget frees name if object id holds it, when the object is removed.
func (n *Names) Forget(name, id string) {
	n.mu.Lock()
	if c, ok := n.m[name]; ok && c.done == nil && c.id == id {
		delete(n.m, name)
	}
	n.mu.Unlock()
}
