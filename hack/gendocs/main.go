// Command gendocs generates the "Configuration keys" section of README.md
// from the configuration schema, schema/crio.cue.
//
//	gendocs              print the generated section
//	gendocs -w README.md rewrite the section between the markers in place
//
// The section lies between the lines BeginMarker and EndMarker. A test in
// this package fails when README.md is not up to date (run `make docs`).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/token"

	"github.com/crio-appliance/crio/schema"
)

const (
	BeginMarker = "<!-- BEGIN CONFIG KEYS -->"
	EndMarker   = "<!-- END CONFIG KEYS -->"
	// placeholder stands for any key of a table whose keys are names
	// (crio.runtime.runtimes.<name>).
	placeholder = "<name>"
	// maxTypeLen: longer constraints are summarised, the schema has them.
	maxTypeLen = 60
)

func main() {
	write := flag.String("w", "", "rewrite the section in this Markdown `file`")
	flag.Parse()
	block, err := Generate(schema.Source)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
	if *write == "" {
		fmt.Print(block)
		return
	}
	doc, err := os.ReadFile(*write)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
	out, err := Splice(string(doc), block)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gendocs: %s: %v\n", *write, err)
		os.Exit(1)
	}
	if out != string(doc) {
		if err := os.WriteFile(*write, []byte(out), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gendocs:", err)
			os.Exit(1)
		}
	}
}

// Splice replaces what lies between the markers in doc with block.
func Splice(doc, block string) (string, error) {
	b := strings.Index(doc, BeginMarker)
	e := strings.Index(doc, EndMarker)
	if b < 0 || e < 0 || e < b {
		return "", fmt.Errorf("markers %q and %q not found in order", BeginMarker, EndMarker)
	}
	return doc[:b] + block + doc[e+len(EndMarker):], nil
}

// Current returns what lies between the markers in doc, markers included.
func Current(doc string) (string, error) {
	b := strings.Index(doc, BeginMarker)
	e := strings.Index(doc, EndMarker)
	if b < 0 || e < 0 || e < b {
		return "", fmt.Errorf("markers %q and %q not found in order", BeginMarker, EndMarker)
	}
	return doc[b : e+len(EndMarker)], nil
}

type row struct{ key, typ, def, doc string }

// Generate renders the section, markers included, from the CUE schema source.
func Generate(src string) (string, error) {
	ctx := cuecontext.New()
	root := ctx.CompileString(src, cue.Filename("schema/crio.cue"))
	if err := root.Err(); err != nil {
		return "", err
	}
	config := root.LookupPath(cue.ParsePath("#Config"))
	if !config.Exists() {
		return "", fmt.Errorf("schema has no #Config")
	}
	var rows []row
	if err := walk(config, "", &rows); err != nil {
		return "", err
	}
	var b bytes.Buffer
	b.WriteString(BeginMarker + "\n")
	b.WriteString("<!-- Generated from schema/crio.cue by `make docs` (hack/gendocs); do not edit. -->\n\n")
	b.WriteString("| Key | Type | Default | Description |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", code(r.key), r.typ, r.def, cell(r.doc))
	}
	types, err := namedTypes(root)
	if err != nil {
		return "", err
	}
	if len(types) > 0 {
		b.WriteString("\nNamed types used above:\n\n| Type | Meaning |\n|---|---|\n")
		for _, r := range types {
			fmt.Fprintf(&b, "| %s | %s |\n", code(r.key), cell(r.doc))
		}
	}
	b.WriteString(EndMarker)
	return b.String(), nil
}

func walk(v cue.Value, prefix string, rows *[]row) error {
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return err
	}
	for it.Next() {
		f := it.Value()
		key := prefix + it.Selector().Unquoted()
		doc := docText(f)
		if a := f.Attribute("crio"); a.Err() == nil && a.Contents() == "ignored" {
			kind := "ignored"
			if f.IncompleteKind() == cue.StructKind {
				kind = "table, ignored"
			}
			*rows = append(*rows, row{key, kind, "", doc})
			continue
		}
		if f.IncompleteKind() != cue.StructKind {
			*rows = append(*rows, row{key, typeOf(f), defaultOf(f), doc})
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
			def := ""
			if len(names) > 0 {
				def = code(strings.Join(names, ", "))
			}
			*rows = append(*rows, row{key, "tables by name", def, doc})
			if err := walk(probe, key+"."+placeholder+".", rows); err != nil {
				return err
			}
			continue
		}
		*rows = append(*rows, row{key, "table", "", doc})
		if err := walk(f, key+".", rows); err != nil {
			return err
		}
	}
	return nil
}

// namedTypes lists the top-level definitions that are not tables, such as
// #AbsPath, with their doc comments.
func namedTypes(root cue.Value) ([]row, error) {
	it, err := root.Fields(cue.Definitions(true))
	if err != nil {
		return nil, err
	}
	var out []row
	for it.Next() {
		if !it.Selector().IsDefinition() || it.Value().IncompleteKind() == cue.StructKind {
			continue
		}
		out = append(out, row{key: it.Selector().String(), doc: docText(it.Value())})
	}
	return out, nil
}

func docText(v cue.Value) string {
	var parts []string
	for _, g := range v.Doc() {
		parts = append(parts, strings.Join(strings.Fields(g.Text()), " "))
	}
	return strings.Join(parts, " ")
}

// typeOf renders the field's constraint without its default, from the source.
func typeOf(v cue.Value) string {
	kind := v.IncompleteKind().String()
	field, ok := v.Source().(*ast.Field)
	if !ok {
		return code(kind)
	}
	// An enumeration (every disjunct a literal, the default among them) is
	// listed in full; otherwise the default is dropped, as a value of the
	// remaining constraint.
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
			return code(kind)
		}
		a := strings.Join(strings.Fields(string(b)), " ")
		if !seen[a] {
			seen[a] = true
			alts = append(alts, a)
		}
	}
	t := strings.Join(alts, " | ")
	if t == "" {
		return code(kind)
	}
	if !enum && len(t) > maxTypeLen {
		return code(kind) + " (constrained, see schema/crio.cue)"
	}
	return code(t)
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
	s := string(b)
	s = strings.ReplaceAll(s, `","`, `", "`)
	return code(s)
}

// code renders s as a Markdown code span inside a table cell.
func code(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ReplaceAll(s, "|", `\|`)
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
