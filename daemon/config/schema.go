package config

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/format"
	"github.com/crio-appliance/crio/schema"
)

// compiled is the CUE schema ready for checking. It is built per Load: a
// cue.Context is not safe for concurrent use and compiling takes about a
// millisecond.
type compiled struct {
	ctx    *cue.Context
	root   cue.Value
	config cue.Value // #Config: one file, or the merged document
	merged cue.Value // #Merged: adds checks that span files
}

func compileSchema() (*compiled, error) {
	ctx := cuecontext.New()
	root := ctx.CompileString(schema.Source, cue.Filename("schema/crio.cue"))
	if err := root.Err(); err != nil {
		return nil, fmt.Errorf("compiling the embedded schema: %w", err)
	}
	return &compiled{
		ctx:    ctx,
		root:   root,
		config: root.LookupPath(cue.ParsePath("#Config")),
		merged: root.LookupPath(cue.ParsePath("#Merged")),
	}, nil
}

// child finds the schema of key k inside the struct schema s. It knows
// regular fields, optional fields (CRI-O tables crio ignores) and pattern
// fields (the runtimes map): an optional-field lookup also matches pattern
// constraints such as [Name=string]: #RuntimeHandler.
func child(s cue.Value, k string) (cue.Value, bool) {
	for _, p := range []cue.Path{
		cue.MakePath(cue.Str(k)),
		cue.MakePath(cue.Str(k).Optional()),
	} {
		if v := s.LookupPath(p); v.Exists() {
			return v, true
		}
	}
	return cue.Value{}, false
}

// isIgnored says whether the schema marks a table as a CRI-O table that
// crio accepts and ignores (the attribute @crio(ignored)).
func isIgnored(v cue.Value) bool {
	return crioAttr(v) == "ignored"
}

// InertNote is how the rendered configuration and the docs mark a key
// with @crio(inert).
const InertNote = "Not yet acted on: setting it to anything but the default gives a warning."

// isInert says whether the schema marks a key as declared but not yet acted
// on by the daemon (the attribute @crio(inert)).
func isInert(v cue.Value) bool {
	return crioAttr(v) == "inert"
}

func crioAttr(v cue.Value) string {
	a := v.Attribute("crio")
	if a.Err() != nil {
		return ""
	}
	return strings.TrimSpace(a.Contents())
}

// isDefault says whether the value a file gives equals the schema's
// default for the key; a key without a default never is.
func isDefault(field, user cue.Value) bool {
	d, ok := field.Default()
	if !ok || !d.IsConcrete() {
		return false
	}
	want, err1 := d.MarshalJSON()
	got, err2 := user.MarshalJSON()
	return err1 == nil && err2 == nil && string(want) == string(got)
}

// isMap says whether s is a map-like struct (a pattern constraint and no
// fixed fields of its own), such as crio.runtime.runtimes.
func isMap(s cue.Value) bool {
	_, ok := child(s, mapProbe)
	return ok
}

// mapProbe is a name no table declares but any handler-name pattern
// accepts; cue.AnyString does not find pattern constraints.
const mapProbe = "a"

// mapElem is the schema of one entry of a map-like struct.
func mapElem(s cue.Value) cue.Value {
	v, _ := child(s, mapProbe)
	return v
}

// fieldNames lists the keys the schema struct s declares, for suggestions.
func fieldNames(s cue.Value) []string {
	var names []string
	it, err := s.Fields(cue.Optional(true))
	if err != nil {
		return nil
	}
	for it.Next() {
		if sel := it.Selector(); sel.IsString() {
			names = append(names, sel.Unquoted())
		}
	}
	sort.Strings(names)
	return names
}

// lookupSchema walks the #Config schema along a dotted key path.
func lookupSchema(s cue.Value, path []string) (cue.Value, bool) {
	for _, k := range path {
		var ok bool
		if s, ok = child(s, k); !ok {
			return cue.Value{}, false
		}
	}
	return s, true
}

// defaultMarker is CUE's "*" before the default alternative. The default
// is an allowed value like the others (and, as in `*"" | #Duration`, often
// one the rest of the constraint does not cover), so only the marker goes.
var defaultMarker = regexp.MustCompile(`^\*`)

// allowed renders what a schema field accepts, for error messages: its CUE
// expression, default included, and the doc of any definition it uses.
func allowed(c *compiled, field cue.Value) string {
	src := field.Source()
	if f, ok := src.(*ast.Field); ok {
		src = f.Value
	}
	if src == nil {
		return tomlKind(field.IncompleteKind())
	}
	b, err := format.Node(src)
	if err != nil {
		return field.IncompleteKind().String()
	}
	expr := strings.TrimSpace(string(b))
	expr = defaultMarker.ReplaceAllString(expr, "")
	var notes []string
	for _, def := range regexp.MustCompile(`#[A-Za-z]+`).FindAllString(expr, -1) {
		if d := docOf(c.root.LookupPath(cue.ParsePath(def))); d != "" {
			notes = append(notes, def+" is "+strings.TrimSuffix(lowerFirst(d), "."))
		}
	}
	if len(notes) > 0 {
		expr += " (" + strings.Join(notes, "; ") + ")"
	}
	return expr
}

func docOf(v cue.Value) string {
	var parts []string
	for _, cg := range v.Doc() {
		parts = append(parts, strings.TrimSpace(cg.Text()))
	}
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// tomlKind names a CUE kind the way a TOML user thinks of it.
func tomlKind(k cue.Kind) string {
	var names []string
	for _, kn := range []struct {
		k    cue.Kind
		name string
	}{
		{cue.StringKind, "string"},
		{cue.IntKind, "integer"},
		{cue.FloatKind, "float"},
		{cue.BoolKind, "boolean"},
		{cue.ListKind, "array"},
		{cue.StructKind, "table"},
	} {
		if k&kn.k != 0 {
			names = append(names, kn.name)
		}
	}
	if len(names) == 0 {
		return k.String()
	}
	return strings.Join(names, " or ")
}
