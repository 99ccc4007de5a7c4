package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crio-appliance/crio/daemon/cli/clispec"
	"github.com/crio-appliance/crio/schema"
)

// The tests below run groff, man, lexgrog, bash, zsh and fish. They do not
// skip when one is missing: CI installs the Debian packages groff-base,
// man-db, zsh and fish (bash is essential).
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s not found: install the Debian package %s (apt-get install %s)", tool, pkg, pkg)
	}
	return path
}

var testMeta = Meta{Date: "2026-01-02", Version: "9.9.9-test"}

func walked(t *testing.T) *Schema {
	t.Helper()
	s, err := Walk(schema.Source)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sections splits a roff page at its .SH lines: heading to body.
func sections(page string) map[string]string {
	out := map[string]string{}
	cur := ""
	for _, line := range strings.Split(page, "\n") {
		if h, ok := strings.CutPrefix(line, ".SH "); ok {
			cur = strings.Trim(h, `"`)
			continue
		}
		out[cur] += line + "\n"
	}
	return out
}

// TestConfPageHasEveryKey: every table of the schema has its section in
// crio.conf(5), and every key (ignored ones too) is documented in the
// section of its table, with its doc text and its default.
func TestConfPageHasEveryKey(t *testing.T) {
	s := walked(t)
	page := ConfPage(s, testMeta)
	secs := sections(page)
	sectionOf := map[string]string{}
	for _, e := range s.Entries {
		switch e.Kind {
		case KindTable:
			sectionOf[e.Key] = strings.ToUpper(e.Key) + " TABLE"
		case KindNamedTables:
			sectionOf[e.Key+"."+placeholder] = strings.ToUpper(e.Key) + " TABLE"
		}
	}
	for _, want := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "CRIO TABLE", "CRIO.API TABLE", "CRIO.RUNTIME TABLE",
		"CRIO.RUNTIME.RUNTIMES TABLE", "CRIO.IMAGE TABLE", "CRIO.NETWORK TABLE", "CRIO.METRICS TABLE", "VALUE TYPES", "FILES", "SEE ALSO"} {
		if _, ok := secs[want]; !ok {
			t.Errorf("crio.conf.5 has no section %s", want)
		}
	}
	keys := 0
	for _, e := range s.Entries {
		if e.Kind == KindTable || e.Kind == KindNamedTables {
			continue
		}
		sec, ok := sectionOf[e.Parent()]
		if !ok {
			t.Errorf("%s: no section for its table %s", e.Key, e.Parent())
			continue
		}
		body := secs[sec]
		tag := bold(e.Name())
		if e.Kind == KindIgnoredTable {
			tag = bold("[" + e.Key + "]")
		}
		if !strings.Contains(body, ".TP\n"+tag) {
			t.Errorf("%s: not documented in section %s", e.Key, sec)
		}
		if !strings.Contains(body, esc(e.Doc)) {
			t.Errorf("%s: doc text missing from section %s", e.Key, sec)
		}
		if e.Default != "" && !strings.Contains(body, tag+" = "+breakable(e.Default)) {
			t.Errorf("%s: default %s missing", e.Key, e.Default)
		}
		keys++
	}
	if keys < 100 {
		t.Errorf("only %d keys walked", keys)
	}
	for _, ty := range s.Types {
		if !strings.Contains(secs["VALUE TYPES"], ital(ty.Key)) {
			t.Errorf("named type %s not in VALUE TYPES", ty.Key)
		}
	}
}

// TestCrioPageHasEveryFlagAndCommand: crio(8) documents every global flag,
// every command with its flags and operands, and every signal.
func TestCrioPageHasEveryFlagAndCommand(t *testing.T) {
	page := CrioPage(walked(t), testMeta)
	secs := sections(page)
	for _, want := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "GLOBAL OPTIONS", "COMMANDS", "SIGNALS", "EXIT STATUS", "FILES", "SEE ALSO"} {
		if _, ok := secs[want]; !ok {
			t.Errorf("crio.8 has no section %s", want)
		}
	}
	for _, f := range clispec.WithHelp(clispec.GlobalFlags) {
		if !strings.Contains(secs["GLOBAL OPTIONS"], ".TP\n"+flagTag(f)+"\n") {
			t.Errorf("global flag --%s not in GLOBAL OPTIONS", f.Long)
		}
	}
	for _, c := range clispec.Commands {
		if !strings.Contains(secs["COMMANDS"], `.SS "`+c.Name+`"`) {
			t.Errorf("command %s not in COMMANDS", c.Name)
		}
		for _, f := range c.Flags {
			if !strings.Contains(secs["COMMANDS"], ".TP\n"+flagTag(f)+"\n") {
				t.Errorf("crio %s --%s not in COMMANDS", c.Name, f.Long)
			}
		}
		for _, o := range c.Operands {
			if !strings.Contains(secs["COMMANDS"], ".TP\n"+bold(o.Name)+"\n") {
				t.Errorf("crio %s %s not in COMMANDS", c.Name, o.Name)
			}
		}
	}
	for _, sig := range []string{"SIGHUP", "SIGTERM", "SIGINT"} {
		if !strings.Contains(secs["SIGNALS"], bold(sig)) {
			t.Errorf("%s not in SIGNALS", sig)
		}
	}
	if !strings.Contains(secs["SEE ALSO"], `\fBcrio.conf\fR(5)`) || !strings.Contains(secs["SEE ALSO"], `\fBcrictl\fR(1)`) {
		t.Errorf("SEE ALSO lacks crio.conf(5) or crictl(1)")
	}
}

// TestFlagsMatchSchema: a global flag that overrides a key names a key of
// the schema, and its completion values are the key's allowed values.
func TestFlagsMatchSchema(t *testing.T) {
	s := walked(t)
	for _, f := range clispec.GlobalFlags {
		if f.Key == "" {
			continue
		}
		e, ok := s.Lookup(f.Key)
		if !ok || e.Kind != KindKey {
			t.Errorf("--%s overrides %s, which is not a key of the schema", f.Long, f.Key)
			continue
		}
		if e.Enum {
			var allowed []string
			for _, v := range strings.Split(e.Type, " | ") {
				allowed = append(allowed, strings.Trim(v, `"`))
			}
			a, b := slices.Sorted(slices.Values(allowed)), slices.Sorted(slices.Values(f.Values))
			if !slices.Equal(a, b) {
				t.Errorf("--%s completes %v, but %s allows %v", f.Long, f.Values, f.Key, allowed)
			}
		}
	}
}

// generate writes the man pages and completion scripts into a new
// directory and returns it.
func generate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteMan(filepath.Join(dir, "man"), walked(t), testMeta); err != nil {
		t.Fatal(err)
	}
	if err := WriteCompletions(filepath.Join(dir, "completions")); err != nil {
		t.Fatal(err)
	}
	return dir
}

var manPages = []string{"man/man5/crio.conf.5", "man/man8/crio.8"}

// TestManPagesRender: groff renders both pages without a warning (-ww),
// man -l formats them, and lexgrog parses their NAME section.
func TestManPagesRender(t *testing.T) {
	groff := need(t, "groff", "groff-base")
	man := need(t, "man", "man-db")
	lexgrog := need(t, "lexgrog", "man-db")
	dir := generate(t)
	for _, p := range manPages {
		path := filepath.Join(dir, p)
		var stderr bytes.Buffer
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", path)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || stderr.Len() > 0 {
			t.Errorf("groff -man -Tutf8 -ww -z %s: %v\n%s", p, err, stderr.String())
		}
		stderr.Reset()
		cmd = exec.Command(man, "-l", path)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 || !bytes.Contains(out, []byte("SEE ALSO")) {
			t.Errorf("man -l %s: %v\n%s", p, err, stderr.String())
		}
		if out, err := exec.Command(lexgrog, path).CombinedOutput(); err != nil {
			t.Errorf("lexgrog %s: %v\n%s", p, err, out)
		}
	}
}

// TestCompletionScripts: every script parses in its shell (bash -n, zsh -n,
// fish -n) and names every global flag, command, command flag and operand.
func TestCompletionScripts(t *testing.T) {
	shells := map[string][]string{
		"bash": {need(t, "bash", "bash"), "-n"},
		"zsh":  {need(t, "zsh", "zsh"), "-n"},
		"fish": {need(t, "fish", "fish"), "-n"},
	}
	dir := filepath.Join(generate(t), "completions")
	for _, f := range clispec.ScriptFiles {
		path := filepath.Join(dir, f.Name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		sh := shells[f.Text]
		if out, err := exec.Command(sh[0], append(sh[1:], path)...).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("%s -n %s: %v\n%s", f.Text, f.Name, err, out)
		}
		for _, fl := range clispec.WithHelp(clispec.GlobalFlags) {
			if !strings.Contains(text, fl.Long) || (fl.Short != "" && !strings.Contains(text, fl.Short)) {
				t.Errorf("%s lacks global flag --%s/-%s", f.Name, fl.Long, fl.Short)
			}
		}
		for _, c := range clispec.Commands {
			if !strings.Contains(text, c.Name) {
				t.Errorf("%s lacks command %s", f.Name, c.Name)
			}
			for _, fl := range c.Flags {
				spelling := "--" + fl.Long
				if f.Text == "fish" {
					spelling = "-l " + fl.Long
				}
				if !strings.Contains(text, spelling) {
					t.Errorf("%s lacks crio %s --%s", f.Name, c.Name, fl.Long)
				}
			}
			for _, o := range c.Operands {
				if !strings.Contains(text, o.Name) {
					t.Errorf("%s lacks crio %s %s", f.Name, c.Name, o.Name)
				}
			}
		}
	}
}

// TestBashCompletes drives the Bash script's function as readline would.
func TestBashCompletes(t *testing.T) {
	bash := need(t, "bash", "bash")
	dir := filepath.Join(generate(t), "completions")
	script := `source "$1"
t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _crio; echo "${COMPREPLY[*]}"; }
t crio ""
t crio --config-d
t crio -l d
t crio --log-level = w
t crio -c /x.conf con
t crio config ""
t crio config --o
t crio status ""
t crio completion ""
t crio --cgroup-manager ""
t crio --pro
t crio --enable-m
t crio status containers --
`
	out, err := exec.Command(bash, "-c", script, "bash", filepath.Join(dir, "crio")).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := []string{
		"version config firstboot status completion help",
		"--config-dir",
		"debug",
		"warn",
		"config",
		"validate",
		"--origin",
		"info config containers",
		"bash zsh fish",
		"cgroupfs systemd",
		"--profile --profile-port",
		"--enable-metrics",
		"--socket --id --help",
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("bash completions:\ngot  %q\nwant %q", got, want)
	}
}

// TestFishCompletes asks Fish for completions of command lines.
func TestFishCompletes(t *testing.T) {
	fish := need(t, "fish", "fish")
	dir := filepath.Join(generate(t), "completions")
	for line, want := range map[string][]string{
		"crio ":                  {"completion", "config", "firstboot", "help", "status", "version"},
		"crio --cgroup-manager ": {"cgroupfs", "systemd"},
		"crio -c x config ":      {"validate"},
		"crio status --s":        {"--socket"},
		"crio status --i":        {"--id"},
		"crio --profile":         {"--profile", "--profile-port"},
		"crio version --":        {"--help", "--json"},
	} {
		out, err := exec.Command(fish, "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", filepath.Join(dir, "crio.fish"), line).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", line, err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			word, _, _ := strings.Cut(l, "\t")
			got = append(got, word)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("fish: complete -C %q = %q, want %q", line, got, want)
		}
	}
}

// TestDeterministic: two generations are byte-identical, and the pages'
// date comes from SOURCE_DATE_EPOCH only.
func TestDeterministic(t *testing.T) {
	a, b := generate(t), generate(t)
	files := append([]string(nil), manPages...)
	for _, f := range clispec.ScriptFiles {
		files = append(files, "completions/"+f.Name)
	}
	for _, f := range files {
		x, err := os.ReadFile(filepath.Join(a, f))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) || len(x) == 0 {
			t.Errorf("%s differs between two runs", f)
		}
	}
	if d := DateFromEpoch("1700000000"); d != "2023-11-14" {
		t.Errorf("DateFromEpoch = %q", d)
	}
	if d := DateFromEpoch("12x"); d != "" {
		t.Errorf("DateFromEpoch(\"12x\") = %q", d)
	}
	if d := DateFromEpoch(""); d != "" {
		t.Errorf("DateFromEpoch(\"\") = %q", d)
	}
	page := CrioPage(walked(t), Meta{Version: "1.2.3"})
	if !strings.Contains(page, `.TH "CRIO" 8 "" "crio 1.2.3" "System Manager's Manual"`) {
		t.Errorf("unexpected .TH line:\n%s", strings.SplitN(page, "\n", 3)[1])
	}
}

func TestEsc(t *testing.T) {
	for in, want := range map[string]string{
		`a\b`:         `a\eb`,
		"--config":    `\-\-config`,
		".x":          `\&.x`,
		"'x":          `\&'x`,
		"µs":          `\[u00B5]s`,
		"a\nb":        "a b",
		`"quoted" ok`: `"quoted" ok`,
	} {
		if got := esc(in); got != want {
			t.Errorf("esc(%q) = %q, want %q", in, got, want)
		}
	}
	if got := quoteArg(`a "b"`); got != `"a \(dqb\(dq"` {
		t.Errorf("quoteArg = %q", got)
	}
}

// zshDriver types a command line and a Tab into an interactive zsh (in a
// zpty) with the script in its fpath, and waits until every expected word
// shows up in what zsh prints (the completion list or the inserted match).
// $1 is the script's directory, $2 the line, the rest the expected words.
const zshDriver = `
zmodload zsh/zpty || exit 3
dir=$1 line=$2
shift 2
zpty z zsh -f -i
zpty -w z "PROMPT='> '; fpath=($dir \$fpath); autoload -U compinit; compinit -u -D; setopt nobeep; crio() {}"
zpty -w -n z "$line"$'\t'
local all= out w missing
for i in {1..100}; do
	while zpty -r -t z out; do all+=$out; done
	missing=()
	for w in "$@"; do [[ $all == *"$w"* ]] || missing+=($w); done
	(( $#missing == 0 )) && break
	sleep 0.1
done
zpty -d z
if (( $#missing )); then
	print -r -- "missing: $missing"
	print -r -- "${all//$'\e'/^[}"
	exit 1
fi
`

// TestZshCompletes drives the Zsh script through an interactive zsh.
func TestZshCompletes(t *testing.T) {
	zsh := need(t, "zsh", "zsh")
	dir := filepath.Join(generate(t), "completions")
	for _, c := range []struct {
		line string
		want []string
	}{
		{"crio ", []string{"version", "config", "status", "completion", "help", "print version and build information"}},
		{"crio --cgroup-manager ", []string{"cgroupfs", "systemd"}},
		{"crio --log-level=", []string{"trace", "debug", "panic"}},
		{"crio -c /x.conf status ", []string{"info", "config", "containers", "the daemon's configuration"}},
		{"crio --profile-", []string{"--profile-port"}},
		{"crio completion ", []string{"bash", "zsh", "fish"}},
		{"crio version --", []string{"--json", "print JSON"}},
	} {
		args := append([]string{"-f", "-c", zshDriver, "zsh", dir, c.line}, c.want...)
		if out, err := exec.Command(zsh, args...).CombinedOutput(); err != nil {
			t.Errorf("zsh: %q<Tab>: %v\n%s", c.line, err, out)
		}
	}
}
