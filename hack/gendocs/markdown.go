package main

import (
	"bytes"
	"fmt"
	"strings"
)

// Generate renders the README section, markers included, from the CUE
// schema source.
func Generate(src string) (string, error) {
	s, err := Walk(src)
	if err != nil {
		return "", err
	}
	return Markdown(s), nil
}

// Markdown renders the README section, markers included.
func Markdown(s *Schema) string {
	var b bytes.Buffer
	b.WriteString(BeginMarker + "\n")
	b.WriteString("<!-- Generated from schema/crio.cue by `make docs` (hack/gendocs); do not edit. -->\n\n")
	b.WriteString("| Key | Type | Default | Description |\n|---|---|---|---|\n")
	for _, e := range s.Entries {
		var typ, def string
		switch e.Kind {
		case KindKey:
			typ, def = mdType(e), code(e.Default)
		case KindTable:
			typ = "table"
		case KindNamedTables:
			typ, def = "tables by name", code(strings.Join(e.Names, ", "))
		case KindIgnored:
			typ = "ignored"
		case KindIgnoredTable:
			typ = "table, ignored"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", code(e.Key), typ, def, cell(e.Doc))
	}
	if len(s.Types) > 0 {
		b.WriteString("\nNamed types used above:\n\n| Type | Meaning |\n|---|---|\n")
		for _, t := range s.Types {
			fmt.Fprintf(&b, "| %s | %s |\n", code(t.Key), cell(t.Doc))
		}
	}
	b.WriteString(EndMarker)
	return b.String()
}

// mdType is a key's type cell: long constraints are summarised, the schema
// has them.
func mdType(e Entry) string {
	switch {
	case e.Type == "":
		return code(e.Base)
	case !e.Enum && len(e.Type) > maxTypeLen:
		return code(e.Base) + " (constrained, see schema/crio.cue)"
	}
	return code(e.Type)
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
