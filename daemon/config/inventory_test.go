package config

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"cuelang.org/go/encoding/toml"
)

// docKey is one key CRI-O's crio.conf(5) documents.
type docKey struct {
	table string // dotted TOML table, e.g. "crio.runtime.runtimes.h"
	key   string
	value string // the documented default, as written
	line  int
}

var (
	docHeading = regexp.MustCompile(`^#{2,4} (CRIO(\.[A-Z_]+)*) TABLE$`)
	docKeyLine = regexp.MustCompile(`^\*\*([a-z0-9_]+)\*\*=(.*)$`)
)

// criOTable maps a crio.conf(5) heading to a TOML table. Map-like tables
// (handlers, workloads) get a sample entry name; CRI-O's doc spells the
// workload resources table in the singular.
func criOTable(heading string) string {
	t := strings.ToLower(heading)
	switch t {
	case "crio.runtime.runtimes":
		return "crio.runtime.runtimes.sample"
	case "crio.runtime.workloads":
		return "crio.runtime.workloads.sample"
	case "crio.runtime.workload.resources":
		return "crio.runtime.workloads.sample.resources"
	}
	return t
}

// documentedKeys extracts every table and key from the fixture.
func documentedKeys(t *testing.T, path string) (tables []string, keys []docKey) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if m := docHeading.FindStringSubmatch(line); m != nil {
			table = criOTable(m[1])
			tables = append(tables, table)
			continue
		}
		if m := docKeyLine.FindStringSubmatch(line); m != nil {
			if table == "" {
				t.Fatalf("%s:%d: key %s outside any table", path, n, m[1])
			}
			keys = append(keys, docKey{table: table, key: m[1], value: m[2], line: n})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return tables, keys
}

// TestEveryCRIOKeyIsKnown loads each key CRI-O documents and fails on any
// "unknown key" (or unknown table): a current CRI-O drop-in must load, even
// where crio only warns that it does not act on a key.
func TestEveryCRIOKeyIsKnown(t *testing.T) {
	tables, keys := documentedKeys(t, "testdata/crio.conf.5.md")
	if len(keys) < 100 {
		t.Fatalf("only %d keys extracted from the fixture; has its format changed?", len(keys))
	}
	for _, table := range tables {
		// A table on its own (as a drop-in may declare it) must be known.
		checkNoUnknown(t, "table ["+table+"]", fmt.Sprintf("[%s]\n", table))
	}
	for _, k := range keys {
		// The documented default when it is a TOML value, else a string:
		// this test is about names; types are checked elsewhere.
		val := k.value
		if !isTOMLValue(val) {
			val = `""`
		}
		checkNoUnknown(t, fmt.Sprintf("fixture line %d: %s.%s", k.line, k.table, k.key),
			fmt.Sprintf("[%s]\n%s = %s\n", k.table, k.key, val))
	}
}

func isTOMLValue(v string) bool {
	_, err := toml.NewDecoder("value", strings.NewReader("x = "+v+"\n")).Decode()
	return err == nil
}

func checkNoUnknown(t *testing.T, what, body string) {
	t.Helper()
	dir := tree(t, map[string]string{"crio.conf.d/99-crio.conf": body})
	_, err := load(t, dir)
	var errs Errors
	if err == nil || !asErrors(err, &errs) {
		return
	}
	for _, d := range errs {
		if strings.HasPrefix(d.Msg, "unknown key") || strings.HasPrefix(d.Msg, "invalid name") {
			t.Errorf("%s: %s", what, d)
		}
	}
}
