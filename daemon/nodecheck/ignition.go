package nodecheck

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	ignconfig "github.com/coreos/ignition/v2/config"
	igntypes "github.com/coreos/ignition/v2/config/v3_6_experimental/types"
	"github.com/vincent-petithory/dataurl"

	"github.com/crio-appliance/crio/daemon/config"
)

// File is one file an Ignition config writes, decoded.
type File struct {
	Path      string // absolute node path
	JSONPath  string // "$.storage.files.N"
	Data      []byte
	Mode      fs.FileMode
	Overwrite bool
}

// Ignition is a parsed Ignition config.
type Ignition struct {
	Config igntypes.Config
	Files  []File
}

// ParseIgnition parses an Ignition config (spec 3.0 to 3.5) and decodes
// every file it writes. The errors name the JSON path, with line and
// column where Ignition's parser gives them; warnings are non-fatal
// reports.
func ParseIgnition(raw []byte) (*Ignition, config.Errors, []string) {
	var errs config.Errors
	var warns []string
	cfg, rpt, err := ignconfig.Parse(raw)
	for _, e := range rpt.Entries {
		msg := e.String()
		if e.Kind.IsFatal() {
			errs = append(errs, config.Diagnostic{File: "ignition", Msg: msg})
		} else {
			warns = append(warns, "ignition: "+msg)
		}
	}
	if err != nil {
		if len(errs) == 0 {
			errs = append(errs, config.Diagnostic{File: "ignition", Msg: err.Error()})
		}
		return nil, errs, warns
	}
	ign := &Ignition{Config: cfg}
	for i, f := range cfg.Storage.Files {
		jp := fmt.Sprintf("$.storage.files.%d", i)
		file := File{Path: f.Path, JSONPath: jp, Mode: 0o644, Overwrite: f.Overwrite != nil && *f.Overwrite}
		if f.Mode != nil {
			file.Mode = fs.FileMode(*f.Mode) & fs.ModePerm
		}
		if len(f.Append) > 0 {
			errs = append(errs, config.Diagnostic{File: jp + ".append", Msg: "appending to a file is not supported by crio's validation"})
		}
		data, err := decodeResource(f.Contents.Source, f.Contents.Compression)
		if err != nil {
			errs = append(errs, config.Diagnostic{File: jp + ".contents", Msg: err.Error()})
			continue
		}
		file.Data = data
		ign.Files = append(ign.Files, file)
	}
	for i, l := range cfg.Storage.Links {
		_ = l
		warns = append(warns, fmt.Sprintf("$.storage.links.%d: links are not laid over the root for validation", i))
	}
	return ign, errs, warns
}

// decodeResource decodes an inline source: a data URL, optionally gzip
// compressed. A nil or empty source is an empty file. Remote sources are
// refused: a node without network cannot fetch them.
func decodeResource(source, compression *string) ([]byte, error) {
	if source == nil || *source == "" {
		return nil, nil
	}
	u, err := url.Parse(*source)
	if err != nil {
		return nil, fmt.Errorf("source: %v", err)
	}
	if u.Scheme != "data" {
		return nil, fmt.Errorf("source: %s URL: remote sources are not supported; a node without network cannot fetch them, embed the file as a data URL", u.Scheme)
	}
	du, err := dataurl.DecodeString(*source)
	if err != nil {
		return nil, fmt.Errorf("source: bad data URL: %v", err)
	}
	data := du.Data
	if compression != nil && *compression != "" {
		if *compression != "gzip" {
			return nil, fmt.Errorf("compression %q: only gzip is supported", *compression)
		}
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("gzip: %v", err)
		}
		data, err = io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("gzip: %v", err)
		}
	}
	return data, nil
}

// Overlay is a temporary tree holding the Ignition config's files and
// copies of the node files the checks read, so that the node's root is
// never written.
type Overlay struct {
	Dir   string
	shown map[string]string
}

// Remove deletes the temporary tree.
func (o *Overlay) Remove() error { return os.RemoveAll(o.Dir) }

// Display names a node path: an Ignition file as its JSON path and path.
func (o *Overlay) Display(p string) string {
	if s, ok := o.shown[p]; ok {
		return s
	}
	return p
}

// NewOverlay lays ign's files over root in a temporary directory, as
// Ignition would write them (a file that exists on the node and is not
// marked overwrite is an error, as it is for Ignition), then copies the
// node files under the given node directories and files that the
// Ignition config does not replace.
func NewOverlay(ign *Ignition, root string, nodePaths []string) (*Overlay, config.Errors, error) {
	tmp, err := os.MkdirTemp("", "crio-validate-")
	if err != nil {
		return nil, nil, err
	}
	o := &Overlay{Dir: tmp, shown: map[string]string{}}
	var errs config.Errors
	for _, f := range ign.Files {
		p := filepath.Clean(f.Path)
		hostPath := filepath.Join(root, p)
		if st, err := os.Lstat(hostPath); err == nil && !f.Overwrite {
			if st.IsDir() {
				errs = append(errs, config.Diagnostic{File: f.JSONPath + ".path", Msg: fmt.Sprintf("%s is a directory on the node", p)})
				continue
			}
			existing, _ := os.ReadFile(hostPath)
			if !bytes.Equal(existing, f.Data) {
				errs = append(errs, config.Diagnostic{File: f.JSONPath + ".overwrite", Msg: fmt.Sprintf("%s exists on the node and overwrite is false: Ignition would fail", p)})
			}
		}
		dst := filepath.Join(tmp, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			o.Remove()
			return nil, nil, err
		}
		if err := os.WriteFile(dst, f.Data, f.Mode|0o200); err != nil {
			o.Remove()
			return nil, nil, err
		}
		o.shown[p] = fmt.Sprintf("%s.contents (%s)", f.JSONPath, p)
	}
	for _, np := range nodePaths {
		if err := copyAbsent(filepath.Join(root, np), filepath.Join(tmp, np)); err != nil {
			o.Remove()
			return nil, nil, err
		}
	}
	return o, errs, nil
}

// copyAbsent copies src (file or tree) to dst, keeping what dst already
// has. A missing src is not an error.
func copyAbsent(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		t := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(t, 0o755)
		}
		if _, err := os.Lstat(t); err == nil {
			return nil
		}
		st, err := os.Stat(p) // follow links: the checks read through them
		if err != nil || !st.Mode().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(t), 0o755); err != nil {
			return err
		}
		return os.WriteFile(t, data, st.Mode().Perm()|0o200)
	})
}

// CheckIgnition validates the node as it would be once ign's files are
// written over root: opts.Root is ignored and replaced by the overlay.
// Binaries (CNI plugins, runtimes) are looked up in the overlay first,
// then under root.
func CheckIgnition(ign *Ignition, root string, opts Options) (*Report, error) {
	if root == "" {
		root = "/"
	}
	// What the checks read: crio's files, containers' files and the
	// usual CNI and seccomp locations; other paths named by the
	// configuration are copied once it is loaded.
	paths := []string{opts.Sources.ConfigFile, opts.Sources.ConfigDir, "/etc/containers"}
	for _, p := range []string{opts.RegistriesConf, opts.RegistriesConfDir} {
		if p != "" {
			paths = append(paths, p)
		}
	}
	o, errs, err := NewOverlay(ign, root, paths)
	if err != nil {
		return nil, err
	}
	defer o.Remove()
	// First pass: load crio's configuration to learn the other paths.
	first := Check(Options{Root: o.Dir, Sources: opts.Sources, RegistriesConf: opts.RegistriesConf, RegistriesConfDir: opts.RegistriesConfDir})
	if cfg := first.Config; cfg != nil {
		more := []string{cfg.Network.NetworkDir, cfg.Image.SignaturePolicy, cfg.Runtime.SeccompProfile}
		more = append(more, cfg.Network.PluginDirs...)
		for _, p := range more {
			if p != "" && filepath.IsAbs(p) {
				if err := copyAbsent(filepath.Join(root, p), filepath.Join(o.Dir, p)); err != nil {
					return nil, err
				}
			}
		}
	}
	opts.Root = o.Dir
	opts.Display = o.Display
	opts.altRoot = root
	rep := Check(opts)
	rep.Errors = append(errs, rep.Errors...)
	return rep, nil
}
