package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

type rec struct {
	ID   string `json:"id"`
	Note string `json:"note"`
}

func records(dir string) Records[*rec] {
	return Records[*rec]{Dir: dir, Codec: Codec[*rec]{
		Kind:   "thing",
		ID:     func(r *rec) string { return r.ID },
		Encode: func(r *rec) ([]byte, error) { return json.Marshal(r) },
		Decode: func(b []byte) (*rec, error) {
			var r rec
			return &r, json.Unmarshal(b, &r)
		},
	}}
}

func TestRecordsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	rs := records(dir)
	a, b := &rec{ID: NewID(), Note: "a"}, &rec{ID: NewID(), Note: "b"}
	for _, r := range []*rec{a, b} {
		if err := rs.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	a.Note = "a2"
	if err := rs.Save(a); err != nil {
		t.Fatal(err)
	}
	// Garbage beside the records: a torn temp file, a record under the
	// wrong name, a file that is not JSON.
	os.WriteFile(filepath.Join(dir, ".x.json.tmp123"), []byte("{"), 0o600)
	os.WriteFile(filepath.Join(dir, strings.Repeat("0", 64)+".json"), []byte(`{"id":"`+b.ID+`"}`), 0o600)
	os.WriteFile(filepath.Join(dir, strings.Repeat("1", 64)+".json"), []byte("not json"), 0o600)

	got, errs := rs.LoadAll()
	if len(got) != 2 || len(errs) != 2 {
		t.Fatalf("LoadAll: %d records, errors %v; want 2 and 2", len(got), errs)
	}
	// The torn temp file (a crash mid-write) is removed, nothing else.
	if _, err := os.Stat(filepath.Join(dir, ".x.json.tmp123")); !os.IsNotExist(err) {
		t.Errorf("torn temp file kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, strings.Repeat("1", 64)+".json")); err != nil {
		t.Errorf("a bad record was removed: %v", err)
	}
	notes := map[string]string{}
	for _, r := range got {
		notes[r.ID] = r.Note
	}
	if notes[a.ID] != "a2" || notes[b.ID] != "b" {
		t.Errorf("records = %v", notes)
	}
	if err := rs.Delete(a.ID); err != nil {
		t.Fatal(err)
	}
	if err := rs.Delete(a.ID); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if err := rs.Delete("../../etc/passwd"); err == nil {
		t.Error("Delete accepted a path as id")
	}
	if err := rs.Save(&rec{ID: "../x"}); err == nil {
		t.Error("Save accepted a path as id")
	}
}

func TestLoadAllMissingDir(t *testing.T) {
	got, errs := records(filepath.Join(t.TempDir(), "none")).LoadAll()
	if got != nil || errs != nil {
		t.Errorf("missing dir: %v %v", got, errs)
	}
}

func TestIDs(t *testing.T) {
	id := NewID()
	if !ValidID(id) || id == NewID() {
		t.Errorf("NewID %q", id)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("g", 64), strings.Repeat("a", 65)} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestLookupPrefix(t *testing.T) {
	m := map[string]int{"abc1": 1, "abc2": 2, "def": 3}
	for id, want := range map[string]int{"abc1": 1, "d": 3, "abc": 0, "": 0, "x": 0} {
		got, ok := LookupPrefix(m, id)
		if got != want || ok != (want != 0) {
			t.Errorf("LookupPrefix(%q) = %d, %v; want %d", id, got, ok, want)
		}
	}
}

// TestRecordFormatVersion: records carry their format version; one without
// it (written before versioning) loads; one from a later crio is refused
// with ErrNewerRecord, named, and left in place, and the others still load.
func TestRecordFormatVersion(t *testing.T) {
	dir := t.TempDir()
	rs := records(dir)
	cur := &rec{ID: NewID(), Note: "current"}
	if err := rs.Save(cur); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, cur.ID+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct {
		V int `json:"recordVersion"`
	}
	if err := json.Unmarshal(data, &hdr); err != nil || hdr.V != RecordVersion {
		t.Fatalf("saved record %s: recordVersion %d (%v), want %d", data, hdr.V, err, RecordVersion)
	}

	old, future := NewID(), NewID()
	write := func(id, body string) {
		if err := os.WriteFile(filepath.Join(dir, id+".json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(old, `{"id":"`+old+`","note":"old"}`)
	write(future, `{"recordVersion":99,"id":"`+future+`","note":"future"}`)

	got, errs := rs.LoadAll()
	notes := map[string]bool{}
	for _, r := range got {
		notes[r.Note] = true
	}
	if len(got) != 2 || !notes["current"] || !notes["old"] {
		t.Errorf("loaded %v, want the current and the unversioned record", notes)
	}
	if len(errs) != 1 || !errors.Is(errs[0], ErrNewerRecord) || !strings.Contains(errs[0].Error(), future+".json") ||
		!strings.Contains(errs[0].Error(), "version 99") {
		t.Fatalf("errors %v, want one ErrNewerRecord naming %s and version 99", errs, future)
	}
	if _, err := os.Stat(filepath.Join(dir, future+".json")); err != nil {
		t.Errorf("the newer record was not left in place: %v", err)
	}
}

func TestStamp(t *testing.T) {
	for in, want := range map[string]string{
		`{}`:           `{"recordVersion":1,"recordSeq":7}`,
		` {"a":1} `:    `{"recordVersion":1,"recordSeq":7,"a":1}`,
		"{\n \"a\":1}": `{"recordVersion":1,"recordSeq":7,"a":1}`,
	} {
		got, err := stamp([]byte(in), 7)
		if err != nil || string(got) != want {
			t.Errorf("stamp(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := stamp([]byte(`[1]`), 7); err == nil {
		t.Error("a JSON array was stamped")
	}
}

func TestValues(t *testing.T) {
	var mu sync.Mutex
	got := Values(&mu, map[string]int{"a": 1, "b": 2, "c": 3})
	slices.Sort(got)
	if !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("Values = %v", got)
	}
	if !mu.TryLock() {
		t.Fatal("Values left the lock held")
	}
	mu.Unlock()
	if got := Values(&mu, map[string]int(nil)); len(got) != 0 {
		t.Errorf("Values(nil) = %v", got)
	}
}

func TestLabelsMatch(t *testing.T) {
	have := map[string]string{"app": "web", "tier": "front", "empty": ""}
	for _, tc := range []struct {
		want  map[string]string
		match bool
	}{
		{nil, true},
		{map[string]string{"app": "web"}, true},
		{map[string]string{"app": "web", "tier": "front"}, true},
		{map[string]string{"empty": ""}, true},
		{map[string]string{"app": "db"}, false},
		{map[string]string{"missing": ""}, false},
		{map[string]string{"app": "web", "missing": "x"}, false},
	} {
		if got := LabelsMatch(have, tc.want); got != tc.match {
			t.Errorf("LabelsMatch(%v) = %v, want %v", tc.want, got, tc.match)
		}
	}
	if !LabelsMatch(nil, nil) || LabelsMatch(nil, map[string]string{"a": "b"}) {
		t.Error("nil labels")
	}
}

func volatileRecords(t *testing.T) (Records[*rec], string, string) {
	dir, vdir := t.TempDir(), filepath.Join(t.TempDir(), "run", "records")
	rs := records(dir)
	rs.VolatileDir = vdir
	return rs, dir, vdir
}

// loadOne loads rs and wants exactly one record, with note want.
func loadOne(t *testing.T, rs Records[*rec], want string) {
	t.Helper()
	got, errs := rs.LoadAll()
	if len(errs) != 0 || len(got) != 1 || got[0].Note != want {
		t.Fatalf("LoadAll = %v, %v; want one record %q", got, errs, want)
	}
}

// TestSaveVolatile: a volatile write goes to the volatile directory (made
// when missing, as after a reboot), never over the synced file; LoadAll
// takes the newer of the two, whichever directory it is in; Delete
// removes both; no temporary file stays behind.
func TestSaveVolatile(t *testing.T) {
	rs, dir, vdir := volatileRecords(t)
	r := &rec{ID: NewID(), Note: "early"}
	if err := rs.SaveVolatile(r); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rs.path(r.ID)); !os.IsNotExist(err) {
		t.Fatalf("a volatile write reached the synced directory: %v", err)
	}
	loadOne(t, rs, "early")

	r.Note = "synced"
	if err := rs.Save(r); err != nil {
		t.Fatal(err)
	}
	loadOne(t, rs, "synced") // newer than the volatile file still there

	r.Note = "running"
	if err := rs.SaveVolatile(r); err != nil {
		t.Fatal(err)
	}
	loadOne(t, rs, "running")
	data, err := os.ReadFile(rs.path(r.ID))
	if err != nil || !strings.Contains(string(data), `"synced"`) {
		t.Fatalf("the synced file changed under a volatile write: %s, %v", data, err)
	}

	// A crash of the machine: the run root is empty again.
	if err := os.RemoveAll(vdir); err != nil {
		t.Fatal(err)
	}
	loadOne(t, rs, "synced")
	if err := rs.SaveVolatile(r); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, vdir} {
		entries, _ := os.ReadDir(d)
		if len(entries) != 1 {
			t.Fatalf("%s holds %d files, want the record alone", d, len(entries))
		}
	}
	fi, err := os.Stat(rs.volatilePath(r.ID))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("volatile record file: %v, %v; want mode 0600", fi, err)
	}

	if err := rs.Delete(r.ID); err != nil {
		t.Fatal(err)
	}
	if got, errs := rs.LoadAll(); len(got) != 0 || len(errs) != 0 {
		t.Fatalf("after Delete, LoadAll = %v, %v", got, errs)
	}
	if err := rs.SaveVolatile(&rec{ID: "../x"}); err == nil {
		t.Fatal("SaveVolatile accepted an invalid id")
	}
}

// TestVolatileDamaged: a volatile file a crash emptied or tore is reported
// by name, and the record's synced file stands in for it.
func TestVolatileDamaged(t *testing.T) {
	rs, _, _ := volatileRecords(t)
	r := &rec{ID: NewID(), Note: "synced"}
	if err := rs.Save(r); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"", `{"recordVersion":1,"recordSeq":`} {
		if err := os.MkdirAll(rs.VolatileDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(rs.volatilePath(r.ID), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		got, errs := rs.LoadAll()
		if len(got) != 1 || got[0].Note != "synced" {
			t.Errorf("volatile file %q: loaded %v, want the synced record", body, got)
		}
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), rs.volatilePath(r.ID)) {
			t.Errorf("volatile file %q: errors %v, want one naming it", body, errs)
		}
	}
}

// TestSeqAfterRestart: a daemon whose clock went back still numbers its
// writes above every record it loaded.
func TestSeqAfterRestart(t *testing.T) {
	rs, dir, _ := volatileRecords(t)
	id := NewID()
	future := uint64(time.Now().Add(24 * time.Hour).UnixNano())
	body := fmt.Sprintf(`{"recordVersion":1,"recordSeq":%d,"id":%q,"note":"from tomorrow"}`, future, id)
	if err := os.WriteFile(filepath.Join(dir, id+".json"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	loadOne(t, rs, "from tomorrow")
	if err := rs.SaveVolatile(&rec{ID: id, Note: "today"}); err != nil {
		t.Fatal(err)
	}
	loadOne(t, rs, "today")
}

// TestVolatileDirUnset: without a volatile directory, volatile writes are
// synced writes to Dir.
func TestVolatileDirUnset(t *testing.T) {
	dir := t.TempDir()
	rs := records(dir)
	r := &rec{ID: NewID(), Note: "v"}
	if err := rs.SaveVolatile(r); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rs.path(r.ID)); err != nil {
		t.Fatal(err)
	}
	loadOne(t, rs, "v")
}

// TestPersist: at a clean stop the volatile writes newer than their synced
// files reach Dir, so that a reboot (the run root emptied) finds them;
// the others are left alone.
func TestPersist(t *testing.T) {
	rs, dir, vdir := volatileRecords(t)
	running := &rec{ID: NewID(), Note: "synced"}
	if err := rs.Save(running); err != nil {
		t.Fatal(err)
	}
	running.Note = "running"
	if err := rs.SaveVolatile(running); err != nil {
		t.Fatal(err)
	}
	early := &rec{ID: NewID(), Note: "early"}
	if err := rs.SaveVolatile(early); err != nil {
		t.Fatal(err)
	}
	stopping := &rec{ID: NewID(), Note: "volatile"}
	if err := rs.SaveVolatile(stopping); err != nil {
		t.Fatal(err)
	}
	stopping.Note = "stopping" // a synced write after the volatile one
	if err := rs.Save(stopping); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(rs.path(stopping.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Persist(); err != nil {
		t.Fatal(err)
	}
	if after, err := os.Stat(rs.path(stopping.ID)); err != nil || !os.SameFile(before, after) {
		t.Errorf("Persist rewrote a synced file newer than its volatile one (%v)", err)
	}
	if err := os.RemoveAll(vdir); err != nil { // the reboot
		t.Fatal(err)
	}
	got, errs := rs.LoadAll()
	notes := map[string]string{}
	for _, r := range got {
		notes[r.ID] = r.Note
	}
	if len(errs) != 0 || len(notes) != 3 || notes[running.ID] != "running" || notes[early.ID] != "early" || notes[stopping.ID] != "stopping" {
		t.Fatalf("after Persist and a reboot: %v, %v", notes, errs)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("%s holds %d files, want the 3 records", dir, len(entries))
	}
}

// TestNewerFormatHidesOtherFile: a record one of whose files a later crio
// wrote is not restored from its other file, whatever the sequence
// numbers say: that file may be older than what the later crio knew.
func TestNewerFormatHidesOtherFile(t *testing.T) {
	rs, dir, _ := volatileRecords(t)
	r := &rec{ID: NewID(), Note: "current"}
	if err := rs.SaveVolatile(r); err != nil {
		t.Fatal(err)
	}
	future := fmt.Sprintf(`{"recordVersion":99,"recordSeq":1,"id":%q,"note":"future"}`, r.ID)
	if err := os.WriteFile(filepath.Join(dir, r.ID+".json"), []byte(future), 0o600); err != nil {
		t.Fatal(err)
	}
	got, errs := rs.LoadAll()
	if len(got) != 0 || len(errs) != 1 || !errors.Is(errs[0], ErrNewerRecord) {
		t.Fatalf("LoadAll = %v, %v; want nothing and one ErrNewerRecord", got, errs)
	}
}
