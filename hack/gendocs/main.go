// Command gendocs generates crio's documentation from the definitions it
// documents, so that none of it can drift:
//
//	gendocs                    print the README's "Configuration keys" section
//	gendocs -w README.md       rewrite that section between the markers in place
//	gendocs -man DIR           write DIR/man5/crio.conf.5 (from schema/crio.cue)
//	                           and DIR/man8/crio.8 (from daemon/cli/clispec)
//	gendocs -completions DIR   write DIR/crio (bash), DIR/_crio (zsh), DIR/crio.fish
//
// -man and -completions may be given together and with -w. Nothing runs
// the crio binary, so packages can be cross-built. The man pages carry the
// date of SOURCE_DATE_EPOCH when it is set (none otherwise) and the version
// from -version, else the VERSION file at the module root.
//
// The README section lies between the lines BeginMarker and EndMarker. A
// test in this package fails when README.md is not up to date (run `make docs`).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/crio-appliance/crio/daemon/cli/clispec"
	"github.com/crio-appliance/crio/schema"
)

const (
	BeginMarker = "<!-- BEGIN CONFIG KEYS -->"
	EndMarker   = "<!-- END CONFIG KEYS -->"
	// placeholder stands for any key of a table whose keys are names
	// (crio.runtime.runtimes.<name>).
	placeholder = "<name>"
	// maxTypeLen: longer constraints are summarised in the README, the
	// schema has them.
	maxTypeLen = 60
)

func main() {
	write := flag.String("w", "", "rewrite the section in this Markdown `file`")
	man := flag.String("man", "", "write the man pages under `dir` (man5/crio.conf.5, man8/crio.8)")
	comp := flag.String("completions", "", "write the completion scripts into `dir` (crio, _crio, crio.fish)")
	ver := flag.String("version", "", "crio `version` for the man pages (default: the VERSION file at the module root)")
	flag.Parse()
	if err := run(*write, *man, *comp, *ver); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(write, man, comp, ver string) error {
	s, err := Walk(schema.Source)
	if err != nil {
		return err
	}
	if write == "" && man == "" && comp == "" {
		fmt.Print(Markdown(s))
		return nil
	}
	if write != "" {
		doc, err := os.ReadFile(write)
		if err != nil {
			return err
		}
		out, err := Splice(string(doc), Markdown(s))
		if err != nil {
			return fmt.Errorf("%s: %w", write, err)
		}
		if out != string(doc) {
			if err := os.WriteFile(write, []byte(out), 0o644); err != nil {
				return err
			}
		}
	}
	if man != "" {
		if ver == "" {
			ver = moduleVersion()
		}
		m := Meta{Date: DateFromEpoch(os.Getenv("SOURCE_DATE_EPOCH")), Version: ver}
		if err := WriteMan(man, s, m); err != nil {
			return err
		}
	}
	if comp != "" {
		if err := WriteCompletions(comp); err != nil {
			return err
		}
	}
	return nil
}

// WriteMan writes dir/man5/crio.conf.5 and dir/man8/crio.8.
func WriteMan(dir string, s *Schema, m Meta) error {
	for _, f := range []struct{ path, text string }{
		{filepath.Join(dir, "man5", "crio.conf.5"), ConfPage(s, m)},
		{filepath.Join(dir, "man8", "crio.8"), CrioPage(s, m)},
	} {
		if err := writeFile(f.path, f.text); err != nil {
			return err
		}
	}
	return nil
}

// WriteCompletions writes the scripts of clispec.ScriptFiles into dir.
func WriteCompletions(dir string) error {
	for _, f := range clispec.ScriptFiles {
		text, err := clispec.Script(f.Text)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, f.Name), text); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// moduleVersion reads VERSION next to the go.mod above the working
// directory; "" when there is none.
func moduleVersion() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			b, err := os.ReadFile(filepath.Join(dir, "VERSION"))
			if err != nil {
				return ""
			}
			return strings.TrimSpace(string(b))
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

var errMarkers = errors.New("markers " + fmt.Sprintf("%q and %q", BeginMarker, EndMarker) + " not found in order")

// Splice replaces what lies between the markers in doc with block.
func Splice(doc, block string) (string, error) {
	b := strings.Index(doc, BeginMarker)
	e := strings.Index(doc, EndMarker)
	if b < 0 || e < 0 || e < b {
		return "", errMarkers
	}
	return doc[:b] + block + doc[e+len(EndMarker):], nil
}

// Current returns what lies between the markers in doc, markers included.
func Current(doc string) (string, error) {
	b := strings.Index(doc, BeginMarker)
	e := strings.Index(doc, EndMarker)
	if b < 0 || e < 0 || e < b {
		return "", errMarkers
	}
	return doc[b : e+len(EndMarker)], nil
}
