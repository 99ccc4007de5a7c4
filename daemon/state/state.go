// Package state keeps crio's records on disk: one JSON file per pod or
// container, each replaced atomically, so that a daemon restarted after a
// crash rebuilds its view from whole records, never torn ones.
package state

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// NewID returns a fresh 64-hex-digit id, the form CRI-O and containerd use
// for pods and containers.
func NewID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// ValidID says whether id has the form NewID makes. Ids become file names,
// so nothing else may reach the file system.
func ValidID(id string) bool {
	if len(id) != 64 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// WriteFileAtomic replaces path with data through a synced temporary file
// and a rename, then syncs the directory: after a crash the file holds
// either the old or the new content.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeFileAtomic(path, data, perm, true)
}

// WriteRunFile replaces path, a file on the run root, through a temporary
// file and a rename, without syncing: readers see the old or the new
// content whole, and a crash of crio keeps it; a reboot clears the run
// root, so a sync would buy nothing.
func WriteRunFile(path string, data []byte, perm os.FileMode) error {
	return writeFileAtomic(path, data, perm, false)
}

// writeFileAtomic is WriteFileAtomic, with the two fsyncs only when sync is
// set. Without them the rename still replaces the file whole for every
// reader and across a crash of this process (the page cache holds it);
// only a crash of the machine may lose it.
func writeFileAtomic(path string, data []byte, perm os.FileMode, sync bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		// Only a failed write leaves the temporary file: removing it
		// after a rename would cost an unlink and an rmdir that fail.
		_ = os.Remove(tmp)
		return err
	}
	if !sync {
		return nil
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: the rename is already visible
		d.Close()
	}
	return nil
}

// Codec turns one kind of record into bytes and back.
type Codec[T any] struct {
	// Kind names the records in errors ("pod", "container").
	Kind   string
	ID     func(T) string
	Encode func(T) ([]byte, error)
	Decode func([]byte) (T, error)
}

// RecordVersion is the format version of the records this crio writes and
// the newest it reads. Every record carries it (the top-level key
// "recordVersion"), so that a later crio can convert or restore an older
// record, and an older crio refuses a newer record by name instead of
// misreading it. Records written before the key existed are version 1.
// Bump it when a record's meaning changes incompatibly, and teach
// LoadAll's callers to read the old version.
const RecordVersion = 1

// versionKey is the top-level key of a record that holds RecordVersion;
// seqKey the one that orders the writes of one record (see Records).
const (
	versionKey = "recordVersion"
	seqKey     = "recordSeq"
)

// ErrNewerRecord marks a record written by a later crio in a format this
// one does not read.
var ErrNewerRecord = errors.New("record format is newer than this crio reads")

// stamp adds the format version and the write's sequence number to an
// encoded record, which must be a JSON object.
func stamp(data []byte, seq uint64) ([]byte, error) {
	data = bytes.TrimSpace(data)
	if len(data) < 2 || data[0] != '{' {
		return nil, fmt.Errorf("record is not a JSON object")
	}
	head := fmt.Sprintf(`{%q:%d,%q:%d`, versionKey, RecordVersion, seqKey, seq)
	rest := bytes.TrimSpace(data[1:])
	if rest[0] != '}' {
		head += ","
	}
	return append([]byte(head), rest...), nil
}

// header reads a record's format version (1 when it has none) and
// sequence number (0 when it has none: written before the key existed).
func header(data []byte) (version int, seq uint64, err error) {
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(data, &hdr); err != nil {
		return 0, 0, err
	}
	version = 1
	if raw, ok := hdr[versionKey]; ok {
		if err := json.Unmarshal(raw, &version); err != nil || version < 1 {
			return 0, 0, fmt.Errorf("invalid %s %s", versionKey, raw)
		}
	}
	if raw, ok := hdr[seqKey]; ok {
		if err := json.Unmarshal(raw, &seq); err != nil {
			return 0, 0, fmt.Errorf("invalid %s %s", seqKey, raw)
		}
	}
	return version, seq, nil
}

// lastSeq is the sequence number of the latest record write of this
// process, for all kinds.
var lastSeq atomic.Uint64

// nextSeq numbers a write: above every write before it in this process
// and every record LoadAll saw, and, so that a daemon restarted before
// LoadAll still numbers above its predecessor, at least the wall clock.
func nextSeq() uint64 {
	for {
		old := lastSeq.Load()
		n := max(old+1, uint64(time.Now().UnixNano()))
		if lastSeq.CompareAndSwap(old, n) {
			return n
		}
	}
}

// observeSeq makes later writes number above seq.
func observeSeq(seq uint64) {
	for {
		old := lastSeq.Load()
		if seq <= old || lastSeq.CompareAndSwap(old, seq) {
			return
		}
	}
}

// Records keeps the records of one kind: file <id>.json in Dir, synced,
// and the same file name in VolatileDir, not synced, for the writes that
// need not outlive the machine. Every write carries a sequence number;
// LoadAll takes, per record, the newer of the two files.
//
// Dir (under the storage root) survives a reboot; VolatileDir is on the
// run root, a tmpfs that a reboot clears. What a record names decides
// where a write goes. Before crio makes something that outlives a reboot
// (a storage layer, a network's address reservation, a directory under
// /var), the record naming it is written with Save, synced: after a crash
// of the machine it still tells the next start what to release. Every
// other write (states, process ids, exit codes, addresses) describes
// things a reboot ends anyway, and goes with SaveVolatile: a crash of crio
// keeps it (the run root holds it), a crash of the machine loses it and
// the record falls back to its last synced write, whose resources the
// next start releases. A volatile write never replaces a synced file (on
// some file systems a rename over a synced file without fsync can leave
// it empty after a crash, losing both versions), and costs no fsync.
type Records[T any] struct {
	Dir string
	// VolatileDir holds the volatile writes; "" sends them to Dir, synced.
	VolatileDir string
	Codec       Codec[T]
}

func (r Records[T]) path(id string) string         { return filepath.Join(r.Dir, id+".json") }
func (r Records[T]) volatilePath(id string) string { return filepath.Join(r.VolatileDir, id+".json") }

// Save writes v's record to Dir and syncs it before it returns: the record
// survives a crash of the machine.
func (r Records[T]) Save(v T) error { return r.save(v, r.path, true) }

// SaveVolatile writes v's record to VolatileDir without a sync: it
// survives a crash of crio, not one of the machine (see Records).
func (r Records[T]) SaveVolatile(v T) error {
	if r.VolatileDir == "" {
		return r.Save(v)
	}
	return r.save(v, r.volatilePath, false)
}

func (r Records[T]) save(v T, path func(string) string, sync bool) error {
	id := r.Codec.ID(v)
	if !ValidID(id) {
		return fmt.Errorf("save %s %q: invalid id", r.Codec.Kind, id)
	}
	data, err := r.Codec.Encode(v)
	if err == nil {
		data, err = stamp(data, nextSeq())
	}
	if err == nil {
		err = writeFileAtomic(path(id), data, 0o600, sync)
		if !sync && errors.Is(err, os.ErrNotExist) {
			// The run root is empty after a reboot: made once, at the
			// first volatile write, not checked at every write.
			if err = os.MkdirAll(r.VolatileDir, 0o700); err == nil {
				err = writeFileAtomic(path(id), data, 0o600, sync)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("save %s %s: %w", r.Codec.Kind, id, err)
	}
	return nil
}

// Delete removes id's record; a missing record is not an error. The
// volatile file goes first: a crash in between leaves the synced one,
// an older state whose resources the next start releases again.
func (r Records[T]) Delete(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("delete %s record %q: invalid id", r.Codec.Kind, id)
	}
	paths := []string{r.path(id)}
	if r.VolatileDir != "" {
		paths = []string{r.volatilePath(id), r.path(id)}
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete %s record %s: %w", r.Codec.Kind, id, err)
		}
	}
	return nil
}

// LoadAll reads every record, at start (it removes temporary files that a
// crash left from interrupted writes), taking the newer of a record's two
// files. A file that cannot be read or decoded, or whose id does not match
// its name, is reported in errs and skipped, so one bad file does not hide
// the others (nor a record's other file).
func (r Records[T]) LoadAll() (out []T, errs []error) {
	type found struct {
		data []byte
		seq  uint64
		name string
	}
	newest := map[string]found{}
	refused := map[string]bool{} // a file of the record is from a later crio
	var ids []string
	dirs := []string{r.Dir}
	if r.VolatileDir != "" {
		dirs = append(dirs, r.VolatileDir)
	}
	for _, dir := range dirs {
		files, ferrs := r.readDir(dir, true)
		errs = append(errs, ferrs...)
		for id, f := range files {
			ver, seq, err := header(f.data)
			if err == nil && ver > RecordVersion {
				// Refused by name and left in place, so that crio, once
				// back, still finds it; so is the record's other file,
				// which may be older than what the later crio wrote.
				refused[id] = true
				err = fmt.Errorf("%w: version %d, this crio reads up to %d; left in place, not restored (run the crio that wrote it, or remove the pod)", ErrNewerRecord, ver, RecordVersion)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s record %s: %w", r.Codec.Kind, f.name, err))
				continue
			}
			observeSeq(seq)
			prev, seen := newest[id]
			if !seen {
				ids = append(ids, id)
			}
			if !seen || seq > prev.seq {
				newest[id] = found{data: f.data, seq: seq, name: f.name}
			}
		}
	}
	for _, id := range ids {
		if refused[id] {
			continue
		}
		f := newest[id]
		v, err := r.Codec.Decode(f.data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s record %s: %w", r.Codec.Kind, f.name, err))
			continue
		}
		if got := r.Codec.ID(v); got != id || !ValidID(got) {
			errs = append(errs, fmt.Errorf("%s record %s: id %q does not match the file", r.Codec.Kind, f.name, got))
			continue
		}
		out = append(out, v)
	}
	return out, errs
}

// Persist copies, synced, every volatile file newer than its record's
// synced file into Dir: at a clean stop, so that the records a reboot
// then finds are the latest ones (with internal_wipe off, the kubelet
// sees every pod again, not ready). The volatile files stay: a write that
// races with Persist is newer still, and LoadAll prefers it while the run
// root holds it.
func (r Records[T]) Persist() error {
	if r.VolatileDir == "" {
		return nil
	}
	volatile, errs := r.readDir(r.VolatileDir, false)
	for id, f := range volatile {
		_, seq, err := header(f.data)
		if err != nil {
			continue // LoadAll reports it; the synced file stands
		}
		if data, err := os.ReadFile(r.path(id)); err == nil {
			if _, done, err := header(data); err == nil && done >= seq {
				continue
			}
		}
		if err := writeFileAtomic(r.path(id), f.data, 0o600, true); err != nil {
			errs = append(errs, fmt.Errorf("persist %s record %s: %w", r.Codec.Kind, id, err))
		}
	}
	return errors.Join(errs...)
}

type recordFile struct {
	data []byte
	name string // the path, for errors
}

// readDir reads the record files of one directory by id; at start
// (removeTemps), it also removes the temporary files of writes a crash cut
// short, which later, while writes may run, would be theirs.
func (r Records[T]) readDir(dir string, removeTemps bool) (map[string]recordFile, []error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("reading %s records: %w", r.Codec.Kind, err)}
	}
	out := map[string]recordFile{}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() && strings.HasPrefix(name, ".") && strings.Contains(name, ".json.tmp") {
			// A write cut short by a crash before its rename: never a
			// record, and nothing else would ever remove it. LoadAll runs
			// at start, before any Save of this daemon.
			if removeTemps {
				_ = os.Remove(filepath.Join(dir, name))
			}
			continue
		}
		id, ok := strings.CutSuffix(name, ".json")
		if e.IsDir() || !ok || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s record %s: %w", r.Codec.Kind, path, err))
			continue
		}
		out[id] = recordFile{data: data, name: path}
	}
	return out, errs
}

// LookupPrefix finds the value whose id is id, or else the only one whose
// id starts with id (crictl users type prefixes). An ambiguous or empty
// prefix finds nothing. The caller holds whatever lock guards m.
func LookupPrefix[V any](m map[string]V, id string) (V, bool) {
	if v, ok := m[id]; ok {
		return v, true
	}
	var found V
	var n int
	if id != "" {
		for full, v := range m {
			if strings.HasPrefix(full, id) {
				found = v
				n++
			}
		}
	}
	if n != 1 {
		var zero V
		return zero, false
	}
	return found, true
}

// Values returns m's values, read under mu, so that a List can then look at
// each one under its own lock without holding the service's.
func Values[V any](mu sync.Locker, m map[string]V) []V {
	mu.Lock()
	defer mu.Unlock()
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// LabelsMatch reports whether have holds every key of want with its value
// (the CRI's label selector; an empty want matches everything).
func LabelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}
