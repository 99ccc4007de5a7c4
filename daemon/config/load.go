package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/encoding/toml"
)

// Load reads, merges and validates the configuration. The error, when not
// nil, is an Errors value listing every problem found, each naming file,
// line and key.
func Load(src Sources) (*Result, error) {
	c, err := compileSchema()
	if err != nil {
		return nil, err
	}
	l := &loader{c: c, origin: map[string]string{}, handlers: map[string]string{}}

	files, diags := configFiles(src)
	l.diags = append(l.diags, diags...)

	merged, err := toMap(Default())
	if err != nil {
		return nil, err
	}
	for name := range merged["crio"].(map[string]any)["runtime"].(map[string]any)["runtimes"].(map[string]any) {
		l.handlers[name] = builtinHandler
	}
	for _, f := range files {
		doc, ok := l.checkFile(f)
		if ok {
			l.merge(merged, doc, nil, f)
		}
	}
	l.applyFlags(merged, src.Flags)

	cfg := l.validateMerged(merged)
	if len(l.diags) > 0 {
		return nil, l.diags.sorted(files)
	}
	return &Result{Config: cfg, Origin: l.origin, Warnings: l.warnings, Files: files}, nil
}

type loader struct {
	c        *compiled
	diags    Errors
	warnings []string
	// origin maps a dotted key path to "file:line" or "flag --x".
	origin map[string]string
	// handlers maps a runtime handler name to where it was last declared.
	handlers map[string]string
	// badKeys are key paths that already have a diagnostic, so the merged
	// check does not report them twice.
	badKeys map[string]bool
}

// configFiles lists the files to read: the main file, then *.conf drop-ins
// in lexical order. Only an explicitly named main file must exist.
func configFiles(src Sources) ([]string, Errors) {
	var files []string
	var diags Errors
	if src.ConfigFile != "" {
		switch _, err := os.Stat(src.ConfigFile); {
		case err == nil:
			files = append(files, src.ConfigFile)
		case errors.Is(err, fs.ErrNotExist) && !src.ConfigFileExplicit:
		default:
			diags = append(diags, Diagnostic{File: src.ConfigFile, Msg: fmt.Sprintf("cannot read configuration file: %v", unwrapPathErr(err))})
		}
	}
	if src.ConfigDir != "" {
		entries, err := os.ReadDir(src.ConfigDir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			diags = append(diags, Diagnostic{File: src.ConfigDir, Msg: fmt.Sprintf("cannot read drop-in directory: %v", unwrapPathErr(err))})
		default:
			var names []string
			for _, e := range entries {
				// Like CRI-O: only regular *.conf files; editors' backups
				// and disabled files (x.conf.bak) are skipped.
				if e.IsDir() || !strings.HasSuffix(e.Name(), ".conf") {
					continue
				}
				names = append(names, e.Name())
			}
			sort.Strings(names)
			for _, n := range names {
				files = append(files, filepath.Join(src.ConfigDir, n))
			}
		}
	}
	return files, diags
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkFile parses one file, checks it against #Config and returns it as a
// plain document with unknown keys removed. ok is false when the file could
// not be parsed at all.
func (l *loader) checkFile(path string) (map[string]any, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		l.diags = append(l.diags, Diagnostic{File: path, Msg: fmt.Sprintf("cannot read configuration file: %v", unwrapPathErr(err))})
		return nil, false
	}
	expr, err := toml.NewDecoder(path, strings.NewReader(string(data))).Decode()
	if err != nil {
		l.diags = append(l.diags, Diagnostic{File: path, Line: firstLine(err), Msg: "invalid TOML: " + firstMsg(err)})
		return nil, false
	}
	fv := l.c.ctx.BuildExpr(expr)
	if err := fv.Err(); err != nil {
		l.diags = append(l.diags, Diagnostic{File: path, Line: firstLine(err), Msg: "invalid TOML: " + firstMsg(err)})
		return nil, false
	}

	doc, err := plain(fv)
	if err != nil {
		l.diags = append(l.diags, Diagnostic{File: path, Msg: err.Error()})
		return nil, false
	}
	l.walkKeys(path, fv, l.c.config, nil, doc)

	// Type and constraint errors, one per key, located in this file.
	for key, errs := range groupByPath(l.c.config.Unify(fv).Validate()) {
		if l.badKeys[key] {
			continue
		}
		l.markBad(key)
		p := strings.Split(key, ".")
		line := 0
		for _, e := range errs {
			for _, pos := range cueerrors.Positions(e) {
				if pos.Filename() == path {
					line = pos.Line()
					break
				}
			}
			if line > 0 {
				break
			}
		}
		l.diags = append(l.diags, Diagnostic{File: path, Line: line, Key: key, Msg: l.describe(p, fv.LookupPath(cue.ParsePath(quotePath(p))))})
		deletePath(doc, p)
	}
	return doc, true
}

// walkKeys checks every key of a file against the schema: unknown keys are
// errors (with a suggestion) and are deleted from doc; keys of CRI-O tables
// crio ignores give a warning; every other key records its origin.
// builtinHandler marks a handler declared by the defaults, not a file.
const builtinHandler = "the defaults"

func (l *loader) walkKeys(file string, fv, schemaNode cue.Value, path []string, doc map[string]any) {
	it, err := fv.Fields()
	if err != nil {
		return
	}
	for it.Next() {
		k := it.Selector().Unquoted()
		v := it.Value()
		p := append(append([]string(nil), path...), k)
		key := strings.Join(p, ".")
		line := v.Pos().Line()
		s, ok := child(schemaNode, k)
		if !ok {
			msg := "unknown key"
			if isMap(schemaNode) {
				msg = "invalid name"
			} else if sug := suggest(k, fieldNames(schemaNode)); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			} else if names := fieldNames(schemaNode); len(names) > 0 && len(path) > 0 {
				msg += fmt.Sprintf(" in [%s]", strings.Join(path, "."))
			}
			l.diags = append(l.diags, Diagnostic{File: file, Line: line, Key: key, Msg: msg})
			l.markBad(key)
			deletePath(doc, p)
			continue
		}
		if isIgnored(s) {
			what := key + " is a CRI-O key"
			if s.IncompleteKind() == cue.StructKind {
				what = "[" + key + "] is a CRI-O table"
			}
			l.warnings = append(l.warnings, fmt.Sprintf("%s:%d: %s that crio accepts and ignores", file, line, what))
			deletePath(doc, p)
			continue
		}
		if isHandler(p) {
			// Replacing the built-in handler loses nothing (keys not
			// repeated take their defaults either way), so only a table
			// that another file declared is worth a warning: that is
			// where operators lose settings without noticing.
			if prev, ok := l.handlers[k]; ok && prev != builtinHandler {
				l.warnings = append(l.warnings, fmt.Sprintf("%s:%d: [%s] re-declares handler %q (declared in %s): the whole table is replaced, keys not repeated here take their defaults", file, line, key, k, prev))
			}
			l.handlers[k] = fmt.Sprintf("%s:%d", file, line)
		}
		if v.IncompleteKind() == cue.StructKind && s.IncompleteKind()&cue.StructKind != 0 {
			l.walkKeys(file, v, s, p, doc)
			continue
		}
		l.origin[key] = fmt.Sprintf("%s:%d", file, line)
		// Operators must not believe a setting took effect when crio
		// does nothing with it; the default value changes nothing, so it
		// stays quiet (packaged CRI-O files spell many defaults out).
		if isInert(s) && !isDefault(s, v) {
			l.warnings = append(l.warnings, fmt.Sprintf("%s:%d: %s is set but crio does not act on it yet; the setting has no effect", file, line, key))
		}
	}
}

// isHandler says whether path names one runtime handler table.
func isHandler(p []string) bool {
	return len(p) == 4 && p[0] == "crio" && p[1] == "runtime" && p[2] == "runtimes"
}

func (l *loader) markBad(key string) {
	if l.badKeys == nil {
		l.badKeys = map[string]bool{}
	}
	l.badKeys[key] = true
}

// describe explains why the value at path p does not fit the schema.
func (l *loader) describe(p []string, user cue.Value) string {
	field, ok := lookupSchema(l.c.config, p)
	if !ok {
		return "not allowed here"
	}
	want := field.IncompleteKind()
	got := user.IncompleteKind()
	if user.Exists() && got&want == 0 {
		return fmt.Sprintf("wrong type: got %s, want %s", tomlKind(got), tomlKind(want))
	}
	shown := "value"
	if user.Exists() {
		if b, err := user.MarshalJSON(); err == nil {
			shown = "value " + string(b)
		}
	}
	return fmt.Sprintf("invalid %s; allowed: %s", shown, allowed(l.c, field))
}

// applyFlags sets the command-line overrides on the merged document.
func (l *loader) applyFlags(doc map[string]any, flags []Flag) {
	for _, f := range flags {
		p := strings.Split(f.Key, ".")
		field, ok := lookupSchema(l.c.config, p)
		if !ok {
			l.diags = append(l.diags, Diagnostic{File: "flag " + f.Name, Key: f.Key, Msg: "unknown key"})
			continue
		}
		v := f.Value
		if ss, ok := v.([]string); ok {
			list := make([]any, len(ss))
			for i, s := range ss {
				list[i] = s
			}
			v = list
		}
		setPath(doc, p, v)
		l.origin[f.Key] = "flag " + f.Name
		if isInert(field) && !isDefault(field, l.c.ctx.Encode(v)) {
			l.warnings = append(l.warnings, fmt.Sprintf("flag %s: %s is set but crio does not act on it yet; the setting has no effect", f.Name, f.Key))
		}
	}
}

// validateMerged checks the merged document against #Merged and decodes it,
// defaults filled in, into a Config.
func (l *loader) validateMerged(doc map[string]any) *Config {
	mv := l.c.ctx.Encode(doc)
	final := l.c.merged.Unify(mv)
	for key := range groupByPath(final.Validate(cue.Concrete(true))) {
		if l.badKeys[key] {
			continue
		}
		l.markBad(key)
		d := l.locate(key)
		p := strings.Split(key, ".")
		user := mv.LookupPath(cue.ParsePath(quotePath(p)))
		switch {
		case key == "crio.runtime.default_runtime":
			d.Msg = l.unknownHandler(user, doc)
		case (key == "crio.api.stream_tls_cert" || key == "crio.api.stream_tls_key") && isEmptyString(user):
			// Say why "" is wrong here although it is the default, and
			// point at the key that made it wrong.
			d = l.locate("crio.api.stream_enable_tls")
			d.Key = key
			d.Msg = "stream_enable_tls = true needs a certificate and a key: set " + key + " to an absolute path"
		default:
			d.Msg = l.describe(p, user)
		}
		l.diags = append(l.diags, d)
	}
	if len(l.diags) > 0 {
		return nil
	}
	b, err := final.MarshalJSON()
	if err != nil {
		l.diags = append(l.diags, Diagnostic{File: "configuration", Msg: err.Error()})
		return nil
	}
	var top struct {
		Crio Config `json:"crio"`
	}
	if err := json.Unmarshal(b, &top); err != nil {
		l.diags = append(l.diags, Diagnostic{File: "configuration", Msg: err.Error()})
		return nil
	}
	return &top.Crio
}

func isEmptyString(v cue.Value) bool {
	s, err := v.String()
	return err == nil && s == ""
}

// locate finds where a key of the merged document was set.
func (l *loader) locate(key string) Diagnostic {
	o, ok := l.origin[key]
	if !ok {
		return Diagnostic{File: "defaults", Key: key}
	}
	if strings.HasPrefix(o, "flag ") {
		return Diagnostic{File: o, Key: key}
	}
	i := strings.LastIndexByte(o, ':')
	line := 0
	fmt.Sscanf(o[i+1:], "%d", &line)
	return Diagnostic{File: o[:i], Line: line, Key: key}
}

func (l *loader) unknownHandler(user cue.Value, doc map[string]any) string {
	name, _ := user.String()
	runtimes, _ := getPath(doc, []string{"crio", "runtime", "runtimes"}).(map[string]any)
	var names []string
	for n := range runtimes {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Sprintf("%q is not a declared runtime handler (declared: %s); add a [crio.runtime.runtimes.%s] table or pick a declared one", name, strings.Join(names, ", "), name)
}

// groupByPath groups CUE errors by the dotted key path they concern, with
// the leading definition (#Config, #Merged) dropped.
func groupByPath(err error) map[string][]cueerrors.Error {
	out := map[string][]cueerrors.Error{}
	for _, e := range cueerrors.Errors(err) {
		p := e.Path()
		if len(p) > 0 && strings.HasPrefix(p[0], "#") {
			p = p[1:]
		}
		// List element errors belong to the list's key.
		for len(p) > 0 && isIndex(p[len(p)-1]) {
			p = p[:len(p)-1]
		}
		parts := make([]string, len(p))
		for i, k := range p {
			if u, err := strconv.Unquote(k); err == nil {
				k = u
			}
			parts[i] = k
		}
		key := strings.Join(parts, ".")
		out[key] = append(out[key], e)
	}
	return out
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// quotePath turns key parts into a CUE path, quoting names like "kata-vm".
func quotePath(p []string) string {
	q := make([]string, len(p))
	for i, k := range p {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q, ".")
}

func firstLine(err error) int {
	for _, pos := range cueerrors.Positions(err) {
		if pos.Line() > 0 {
			return pos.Line()
		}
	}
	return 0
}

func firstMsg(err error) string {
	if errs := cueerrors.Errors(err); len(errs) > 0 {
		f, a := errs[0].Msg()
		return fmt.Sprintf(f, a...)
	}
	return err.Error()
}
