package config

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"cuelang.org/go/cue"
)

// TOML renders the effective configuration as commented TOML that Load
// accepts back. withOrigin adds, for each key set by a file or a flag, a
// comment naming the file:line or flag that set it.
func (r *Result) TOML(withOrigin bool) string {
	origin := map[string]string{}
	if withOrigin {
		origin = r.Origin
	}
	return render(r.Config, origin, "The effective configuration of crio.")
}

// DefaultTOML renders the defaults.
func DefaultTOML() string {
	return render(Default(), nil, "The default configuration of crio.")
}

func render(cfg *Config, origin map[string]string, title string) string {
	c, err := compileSchema()
	if err != nil {
		return "# " + err.Error() + "\n"
	}
	doc, err := toMap(cfg)
	if err != nil {
		return "# " + err.Error() + "\n"
	}
	w := &tomlWriter{origin: origin}
	fmt.Fprintf(&w.b, "# %s\n", title)
	w.b.WriteString("# Files: /etc/crio/crio.conf, then /etc/crio/crio.conf.d/*.conf in lexical order,\n")
	w.b.WriteString("# then command-line flags. Tables merge key by key; arrays are replaced, except\n")
	w.b.WriteString("# storage_option, which drop-ins extend. Unknown keys are errors.\n")
	w.table(c.config, doc, nil)
	return w.b.String()
}

type tomlWriter struct {
	b      strings.Builder
	origin map[string]string
}

// table writes the leaf keys of one table, then its sub-tables, which is
// the order TOML needs.
func (w *tomlWriter) table(schemaNode cue.Value, doc map[string]any, path []string) {
	type sub struct {
		name   string
		schema cue.Value
	}
	var subs []sub
	wroteHeader := false
	it, err := schemaNode.Fields()
	if err != nil {
		return
	}
	for it.Next() {
		if !it.Selector().IsString() {
			continue
		}
		k := it.Selector().Unquoted()
		s := it.Value()
		if s.IncompleteKind() == cue.StructKind {
			subs = append(subs, sub{k, s})
			continue
		}
		if !wroteHeader && len(path) > 0 {
			fmt.Fprintf(&w.b, "\n[%s]\n", strings.Join(path, "."))
			wroteHeader = true
		}
		p := append(append([]string(nil), path...), k)
		w.b.WriteString("\n")
		w.comment(docOf(s))
		if isInert(s) {
			w.comment(InertNote)
		}
		if o, ok := w.origin[strings.Join(p, ".")]; ok {
			w.comment("Set by " + o + ".")
		}
		fmt.Fprintf(&w.b, "%s = %s\n", k, tomlValue(doc[k]))
	}
	for _, s := range subs {
		p := append(append([]string(nil), path...), s.name)
		sd, _ := doc[s.name].(map[string]any)
		if !isMap(s.schema) {
			if d := docOf(s.schema); d != "" && len(path) > 0 {
				w.b.WriteString("\n")
				w.comment(d)
			}
			w.table(s.schema, sd, p)
			continue
		}
		// A map of tables, such as the runtime handlers.
		names := make([]string, 0, len(sd))
		for n := range sd {
			names = append(names, n)
		}
		sort.Strings(names)
		w.b.WriteString("\n")
		w.comment(docOf(s.schema))
		elem := mapElem(s.schema)
		for _, n := range names {
			m, _ := sd[n].(map[string]any)
			w.table(elem, m, append(p, n))
		}
	}
}

func (w *tomlWriter) comment(text string) {
	if text == "" {
		return
	}
	line := "#"
	for _, word := range strings.Fields(text) {
		if len(line)+1+len(word) > 78 && line != "#" {
			w.b.WriteString(line + "\n")
			line = "#"
		}
		line += " " + word
	}
	w.b.WriteString(line + "\n")
}

// tomlValue writes a document value as TOML. JSON string escapes are valid
// TOML basic-string escapes.
func tomlValue(v any) string {
	switch t := v.(type) {
	case string:
		return quote(t)
	case []any:
		parts := make([]string, len(t))
		for i, x := range t {
			parts[i] = tomlValue(x)
		}
		if len(parts) == 0 {
			return "[]"
		}
		return "[\n\t" + strings.Join(parts, ",\n\t") + ",\n]"
	case nil:
		return `""`
	default:
		return fmt.Sprint(t)
	}
}

func quote(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}
