package main

import (
	"os"
	"strings"
	"testing"

	"github.com/crio-appliance/crio/schema"
)

// TestREADMEUpToDate fails when the "Configuration keys" table in README.md
// does not match schema/crio.cue.
func TestREADMEUpToDate(t *testing.T) {
	want, err := Generate(schema.Source)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Current(string(doc))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	if got != want {
		t.Fatalf("README.md's configuration key table is out of date with schema/crio.cue: run `make docs`")
	}
}

// TestEveryKeyDocumented checks the generator sees every field of the schema
// and each has a description.
func TestEveryKeyDocumented(t *testing.T) {
	block, err := Generate(schema.Source)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"`crio.root`", "`crio.api.listen`", "`crio.runtime.runtimes.<name>.runtime_path`",
		"`crio.image.pause_image`", "`crio.network.plugin_dirs`", "`crio.metrics.metrics_port`"} {
		if !strings.Contains(block, "| "+key+" |") {
			t.Errorf("no row for %s", key)
		}
	}
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(line, "| `crio") && strings.HasSuffix(line, "|  |") {
			t.Errorf("key without a description: %s", line)
		}
	}
}

func TestSplice(t *testing.T) {
	doc := "a\n" + BeginMarker + "\nold\n" + EndMarker + "\nb\n"
	out, err := Splice(doc, BeginMarker+"\nnew\n"+EndMarker)
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\n" + BeginMarker + "\nnew\n" + EndMarker + "\nb\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	if _, err := Splice("no markers", "x"); err == nil {
		t.Fatal("no error without markers")
	}
}

// TestInertNoteFromAttribute: "Not yet acted on" comes from @crio(inert),
// in both the README table and crio.conf(5), and nowhere else.
func TestInertNoteFromAttribute(t *testing.T) {
	src := "package schema\n#Config: {crio: {\n\t// Acted on.\n\ta: *1 | int\n\t// Declared only.\n\tb: *2 | int @crio(inert)\n}}\n"
	s, err := Walk(src)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"crio.a": false, "crio.b": true} {
		e, ok := s.Lookup(key)
		if !ok {
			t.Fatalf("no entry %s", key)
		}
		if got := strings.Contains(e.Doc, InertNote); got != want {
			t.Errorf("%s: doc %q, inert note %v, want %v", key, e.Doc, got, want)
		}
	}
	md, err := Generate(schema.Source)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| `crio.runtime.selinux` |") && !strings.Contains(line, InertNote) {
			t.Errorf("selinux row without the note: %s", line)
		}
		if strings.HasPrefix(line, "| `crio.image.image_volumes` |") && strings.Contains(line, "acted on") {
			t.Errorf("image_volumes is acted on: %s", line)
		}
	}
}
