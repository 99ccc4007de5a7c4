package clispec

import (
	"slices"
	"strings"
	"testing"
)

// TestDefinitions checks the command line's definitions are consistent:
// unique flag spellings, completion's operands are the shells, one script
// file per shell.
func TestDefinitions(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range WithHelp(GlobalFlags) {
		for _, n := range f.Names() {
			if seen[n] {
				t.Errorf("global flag %s declared twice", n)
			}
			seen[n] = true
		}
		if f.Usage == "" {
			t.Errorf("--%s has no usage", f.Long)
		}
		if f.Key != "" && f.Env != "" {
			t.Errorf("--%s both overrides a key and sets an environment variable", f.Long)
		}
	}
	c, ok := CommandNamed("completion")
	if !ok {
		t.Fatal("no completion command")
	}
	var ops, files []string
	for _, o := range c.Operands {
		ops = append(ops, o.Name)
	}
	for _, f := range ScriptFiles {
		files = append(files, f.Text)
	}
	if !slices.Equal(ops, Shells) || !slices.Equal(files, Shells) {
		t.Errorf("completion operands %v and script files %v must be the shells %v", ops, files, Shells)
	}
	for _, c := range Commands {
		if len(c.Forms) == 0 || c.Description == "" {
			t.Errorf("command %s lacks a form or a description", c.Name)
		}
	}
}

func TestScript(t *testing.T) {
	for _, sh := range Shells {
		s, err := Script(sh)
		if err != nil || !strings.Contains(s, "do not edit") {
			t.Errorf("Script(%s): %v", sh, err)
		}
	}
	if _, err := Script("tcsh"); err == nil {
		t.Error("Script(tcsh): no error")
	}
}
