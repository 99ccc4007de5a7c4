package stagedest

import "sync"

// holds counts, per layer ID, the pulls of this process that stacked or
// found that layer and have not closed their destination. A failed pull
// removes the layers it made, but not one that another pull relies on
// and has not yet made part of an image: that pull found the layer in
// the store and would not stack it again.
var holds = struct {
	sync.Mutex
	n map[string]int
}{n: make(map[string]int)}

// hold marks layer id as relied on by d until d is closed.
func (d *destination) hold(id string) {
	holds.Lock()
	holds.n[id]++
	holds.Unlock()
	d.mu.Lock()
	d.held = append(d.held, id)
	d.mu.Unlock()
}

// noteMade records a layer this pull created.
func (d *destination) noteMade(id string) {
	d.mu.Lock()
	d.made = append(d.made, id)
	d.mu.Unlock()
}

// removeUnused drops d's holds and removes, top down, the layers d made
// that are not layers of the image it committed and that no other pull
// holds. The store itself refuses to remove a layer that has children or
// that an image or container uses.
func (d *destination) removeUnused() {
	d.mu.Lock()
	made, held, chain := d.made, d.held, d.chain
	d.made, d.held = nil, nil
	d.mu.Unlock()
	committed := d.committed.Load()

	holds.Lock()
	defer holds.Unlock()
	for _, id := range held {
		if holds.n[id]--; holds.n[id] <= 0 {
			delete(holds.n, id)
		}
	}
	for i := len(made) - 1; i >= 0; i-- {
		id := made[i]
		if (committed && chain[id]) || holds.n[id] > 0 {
			continue
		}
		_ = d.store.DeleteLayer(id)
	}
}
