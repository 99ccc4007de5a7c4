package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/token"
	"github.com/crio-appliance/crio/daemon/config"
)

// Kind is what a schema entry is.
type Kind int

const (
	KindKey          Kind = iota // a key with a value
	KindTable                    // a table ([crio.api])
	KindNamedTables              // a table of tables by name ([crio.runtime.runtimes.<name>])
	KindIgnored                  // a CRI-O key accepted and ignored
	KindIgnoredTable             // a CRI-O table accepted and ignored
)

// InertNote ends the description of every key marked @crio(inert); the
// same words as `crio config` prints.
const InertNote = config.InertNote

// Entry is one table or key of the schema, in schema order. It is raw
// text; each renderer (Markdown, roff) formats it.
type Entry struct {
	// Key is the dotted path, placeholder standing for a handler name.
	Key  string
	Kind Kind
	// Type is the constraint without its default, as CUE source ("" when
	// it cannot be rendered); Base is the value's kind (string, int, ...).
	Type, Base string
	// Enum is set when every allowed value is a literal: Type lists them all.
	Enum bool
	// Default is the default as JSON, list items separated by ", ".
	Default string
	// Names are the tables a KindNamedTables declares by default.
	Names []string
	Doc   string
}

// Parent is the key of the table the entry belongs to.
func (e Entry) Parent() string {
	if i := strings.LastIndex(e.Key, "."); i >= 0 {
		return e.Key[:i]
	}
	return ""
}

// Name is the last component of the key.
func (e Entry) Name() string {
	return e.Key[strings.LastIndex(e.Key, ".")+1:]
}

// Schema is the walked schema: its entries and its named types.
type Schema struct {
	Entries []Entry
	// Types are the top-level definitions that are not tables, such as
	// #AbsPath (Key), with their doc comments.
	Types []Entry
}

// Lookup returns the entry of key.
func (s *Schema) Lookup(key string) (Entry, bool) {
	for _, e := range s.Entries {
		if e.Key == key {
			return e, true
		}
	}
	return Entry{}, false
}

// Walk compiles the CUE schema source and lists its tables and keys, depth
// first in schema order, and its named types. Both the README table and
// crio.conf(5) are rendered from it.
func Walk(src string) (*Schema, error) {
	ctx := cuecontext.New()
	root := ctx.CompileString(src, cue.Filename("schema/crio.cue"))
	if err := root.Err(); err != nil {
		return nil, err
	}
	config := root.LookupPath(cue.ParsePath("#Config"))
	if !config.Exists() {
		return nil, fmt.Errorf("schema has no #Config")
	}
	s := &Schema{}
	if err := walk(config, "", &s.Entries); err != nil {
		return nil, err
	}
	it, err := root.Fields(cue.Definitions(true))
	if err != nil {
		return nil, err
	}
	for it.Next() {
		if !it.Selector().IsDefinition() || it.Value().IncompleteKind() == cue.StructKind {
			continue
		}
		s.Types = append(s.Types, Entry{Key: it.Selector().String(), Doc: docText(it.Value())})
	}
	return s, nil
}

func walk(v cue.Value, prefix string, out *[]Entry) error {
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return err
	}
	for it.Next() {
		f := it.Value()
		key := prefix + it.Selector().Unquoted()
		doc := docText(f)
		a := f.Attribute("crio")
		if a.Err() == nil && a.Contents() == "inert" {
			// Said from the attribute, so the docs cannot drift from the
			// test that checks the attribute against the code.
			doc = strings.TrimSpace(doc + " " + InertNote)
		}
		if a.Err() == nil && a.Contents() == "ignored" {
			kind := KindIgnored
			if f.IncompleteKind() == cue.StructKind {
				kind = KindIgnoredTable
			}
			*out = append(*out, Entry{Key: key, Kind: kind, Doc: doc})
			continue
		}
		if f.IncompleteKind() != cue.StructKind {
			e := Entry{Key: key, Kind: KindKey, Base: f.IncompleteKind().String(), Default: defaultOf(f), Doc: doc}
			e.Type, e.Enum = typeOf(f)
			*out = append(*out, e)
			continue
		}
		// A table whose keys are names: document the pattern once as <name>.
		probe := f.LookupPath(cue.MakePath(cue.Str("zz-gendocs-probe").Optional()))
		if probe.Exists() && probe.IncompleteKind() == cue.StructKind {
			var names []string
			nit, err := f.Fields()
			if err != nil {
				return err
			}
			for nit.Next() {
				names = append(names, nit.Selector().Unquoted())
			}
			*out = append(*out, Entry{Key: key, Kind: KindNamedTables, Names: names, Doc: doc})
			if err := walk(probe, key+"."+placeholder+".", out); err != nil {
				return err
			}
			continue
		}
		*out = append(*out, Entry{Key: key, Kind: KindTable, Doc: doc})
		if err := walk(f, key+".", out); err != nil {
			return err
		}
	}
	return nil
}

func docText(v cue.Value) string {
	var parts []string
	for _, g := range v.Doc() {
		parts = append(parts, strings.Join(strings.Fields(g.Text()), " "))
	}
	return strings.Join(parts, " ")
}

// typeOf renders the field's constraint without its default, from the
// source, and says whether it is an enumeration. An enumeration (every
// disjunct a literal, the default among them) is listed in full; otherwise
// the default is dropped, as a value of the remaining constraint.
func typeOf(v cue.Value) (string, bool) {
	field, ok := v.Source().(*ast.Field)
	if !ok {
		return "", false
	}
	ds := disjuncts(field.Value)
	enum := true
	for _, d := range ds {
		if u, ok := d.(*ast.UnaryExpr); ok && u.Op == token.MUL {
			d = u.X
		}
		if _, ok := d.(*ast.BasicLit); !ok {
			enum = false
		}
	}
	var alts []string
	seen := map[string]bool{}
	for _, d := range ds {
		if u, ok := d.(*ast.UnaryExpr); ok && u.Op == token.MUL {
			if !enum {
				continue
			}
			d = u.X
		}
		b, err := format.Node(d, format.Simplify())
		if err != nil {
			return "", false
		}
		a := strings.Join(strings.Fields(string(b)), " ")
		if !seen[a] {
			seen[a] = true
			alts = append(alts, a)
		}
	}
	return strings.Join(alts, " | "), enum
}

func disjuncts(e ast.Expr) []ast.Expr {
	if p, ok := e.(*ast.ParenExpr); ok {
		return []ast.Expr{p}
	}
	if b, ok := e.(*ast.BinaryExpr); ok && b.Op == token.OR {
		return append(disjuncts(b.X), disjuncts(b.Y)...)
	}
	return []ast.Expr{e}
}

func defaultOf(v cue.Value) string {
	d, ok := v.Default()
	if !ok || !d.IsConcrete() {
		return ""
	}
	b, err := json.Marshal(d)
	if err != nil {
		return ""
	}
	return strings.ReplaceAll(string(b), `","`, `", "`)
}
