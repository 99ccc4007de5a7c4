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

// versionKey is the top-level key of a record that holds RecordVersion.
const versionKey = "recordVersion"

// ErrNewerRecord marks a record written by a later crio in a format this
// one does not read.
var ErrNewerRecord = errors.New("record format is newer than this crio reads")

// stampVersion adds the format version to an encoded record, which must be
// a JSON object.
func stampVersion(data []byte) ([]byte, error) {
	data = bytes.TrimSpace(data)
	if len(data) < 2 || data[0] != '{' {
		return nil, fmt.Errorf("record is not a JSON object")
	}
	head := fmt.Sprintf(`{%q:%d`, versionKey, RecordVersion)
	rest := bytes.TrimSpace(data[1:])
	if rest[0] != '}' {
		head += ","
	}
	return append([]byte(head), rest...), nil
}

// recordVersion reads a record's format version; 1 when it has none.
func recordVersion(data []byte) (int, error) {
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(data, &hdr); err != nil {
		return 0, err
	}
	raw, ok := hdr[versionKey]
	if !ok {
		return 1, nil
	}
	var v int
	if err := json.Unmarshal(raw, &v); err != nil || v < 1 {
		return 0, fmt.Errorf("invalid %s %s", versionKey, raw)
	}
	return v, nil
}

// Records is a directory of records of one kind, file <id>.json each.
type Records[T any] struct {
	Dir   string
	Codec Codec[T]
}

func (r Records[T]) path(id string) string { return filepath.Join(r.Dir, id+".json") }

// Save writes v's record, replacing the previous one, and syncs it to disk
// before it returns: the record survives a crash of the machine.
func (r Records[T]) Save(v T) error { return r.save(v, true) }

// SaveNoSync writes v's record like Save, without the two fsyncs: the
// record survives a crash of crio (the page cache keeps it), not
// necessarily one of the machine. It is for the first writes of a record,
// while everything the record names is gone after a reboot anyway
// (processes, mounts, cgroups, files on the run root's tmpfs): if the
// machine crashes, losing such a record leaks nothing. A write that names
// something on disk (a storage layer, a network's address reservation, a
// directory under /var) uses Save, and so do all writes after it:
// replacing a synced record by an unsynced one could, on some file
// systems, lose both in a crash.
func (r Records[T]) SaveNoSync(v T) error { return r.save(v, false) }

func (r Records[T]) save(v T, sync bool) error {
	id := r.Codec.ID(v)
	if !ValidID(id) {
		return fmt.Errorf("save %s %q: invalid id", r.Codec.Kind, id)
	}
	data, err := r.Codec.Encode(v)
	if err == nil {
		data, err = stampVersion(data)
	}
	if err == nil {
		err = writeFileAtomic(r.path(id), data, 0o600, sync)
	}
	if err != nil {
		return fmt.Errorf("save %s %s: %w", r.Codec.Kind, id, err)
	}
	return nil
}

// Delete removes id's record; a missing record is not an error.
func (r Records[T]) Delete(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("delete %s record %q: invalid id", r.Codec.Kind, id)
	}
	if err := os.Remove(r.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete %s record %s: %w", r.Codec.Kind, id, err)
	}
	return nil
}

// LoadAll reads every record, at start (it removes temporary files that a
// crash left from interrupted writes). A record that cannot be read or decoded, or
// whose id does not match its file name, is reported in errs and skipped,
// so one bad file does not hide the others.
func (r Records[T]) LoadAll() (out []T, errs []error) {
	entries, err := os.ReadDir(r.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("reading %s records: %w", r.Codec.Kind, err)}
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() && strings.HasPrefix(name, ".") && strings.Contains(name, ".json.tmp") {
			// A write cut short by a crash before its rename: never a
			// record, and nothing else would ever remove it. LoadAll runs
			// at start, before any Save of this daemon.
			_ = os.Remove(filepath.Join(r.Dir, name))
			continue
		}
		id, ok := strings.CutSuffix(name, ".json")
		if e.IsDir() || !ok || strings.HasPrefix(name, ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(r.Dir, name))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s record %s: %w", r.Codec.Kind, name, err))
			continue
		}
		// A record from a later crio is refused by name and left in
		// place, so that crio, once back, still finds it.
		ver, err := recordVersion(data)
		if err == nil && ver > RecordVersion {
			err = fmt.Errorf("%w: version %d, this crio reads up to %d; left in place, not restored (run the crio that wrote it, or remove the pod)", ErrNewerRecord, ver, RecordVersion)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s record %s: %w", r.Codec.Kind, name, err))
			continue
		}
		v, err := r.Codec.Decode(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s record %s: %w", r.Codec.Kind, name, err))
			continue
		}
		if got := r.Codec.ID(v); got != id || !ValidID(got) {
			errs = append(errs, fmt.Errorf("%s record %s: id %q does not match the file", r.Codec.Kind, name, got))
			continue
		}
		out = append(out, v)
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
