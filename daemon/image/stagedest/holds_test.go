package stagedest

import (
	"testing"

	"go.podman.io/storage"
)

// TestRemoveUnused: a closing destination removes the layers it made,
// except those of the image it committed and those another destination
// of this process still holds.
func TestRemoveUnused(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.GetStore(storage.StoreOptions{
		GraphRoot: dir + "/root", RunRoot: dir + "/run", GraphDriverName: "vfs",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = store.Shutdown(true) })
	layer := func() string {
		l, err := store.CreateLayer("", "", nil, "", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return l.ID
	}
	exists := func(id string) bool {
		_, err := store.Layer(id)
		return err == nil
	}
	shared, own, committed, kept := layer(), layer(), layer(), layer()

	failed := &destination{store: store}
	failed.hold(shared)
	failed.noteMade(shared)
	failed.hold(own)
	failed.noteMade(own)
	other := &destination{store: store}
	other.hold(shared) // found it stacked, relies on it

	done := &destination{store: store, chain: map[string]bool{committed: true}}
	done.hold(committed)
	done.noteMade(committed)
	done.committed.Store(true)
	done.hold(kept) // found, not made: never removed

	failed.removeUnused()
	if exists(own) {
		t.Error("a failed pull kept the layer it made")
	}
	if !exists(shared) {
		t.Error("a failed pull removed a layer another pull holds")
	}
	done.removeUnused()
	if !exists(committed) || !exists(kept) {
		t.Error("a committed pull removed a layer of its image, or one it did not make")
	}
	other.removeUnused()
	if !exists(shared) {
		t.Error("a pull removed a layer it did not make")
	}
	holds.Lock()
	n := len(holds.n)
	holds.Unlock()
	if n != 0 {
		t.Errorf("%d holds left after every destination closed", n)
	}
}
