package clispec

import (
	"fmt"
	"io"
	"strings"
)

// Script returns the completion script for shell (bash, zsh or fish).
func Script(shell string) (string, error) {
	var b strings.Builder
	switch shell {
	case "bash":
		Bash(&b)
	case "zsh":
		Zsh(&b)
	case "fish":
		Fish(&b)
	default:
		return "", fmt.Errorf("unknown shell %q (want %s)", shell, strings.Join(Shells, ", "))
	}
	return b.String(), nil
}

// ScriptFiles maps the file name a package installs each script under
// (Name) to its shell (Text): crio in bash-completion's completions
// directory, _crio in a Zsh fpath directory, crio.fish in Fish's
// vendor_completions.d.
var ScriptFiles = []Doc{{"crio", "bash"}, {"_crio", "zsh"}, {"crio.fish", "fish"}}

const generated = "Generated from daemon/cli/clispec (crio completion %s); do not edit."

// Names returns the flag's spellings, long first: "--config", "-c".
func (f Flag) Names() []string {
	n := []string{"--" + f.Long}
	if f.Short != "" {
		n = append(n, "-"+f.Short)
	}
	return n
}

// WithHelp is flags plus -h/--help.
func WithHelp(flags []Flag) []Flag {
	return append(append([]Flag(nil), flags...), HelpFlag)
}

// Summary is the command's one-line description, for completion menus.
func (c Command) Summary() string {
	if len(c.Forms) == 0 {
		return ""
	}
	s, _, _ := strings.Cut(c.Forms[0].Text, "\n")
	return s
}

func allNames(flags []Flag) []string {
	var n []string
	for _, f := range flags {
		n = append(n, f.Names()...)
	}
	return n
}

// argFlags are the spellings of the flags that take an argument.
func argFlags(flags []Flag) []string {
	var n []string
	for _, f := range flags {
		if f.Arg != "" {
			n = append(n, f.Names()...)
		}
	}
	return n
}

// Bash writes the Bash completion script. It needs nothing but Bash itself
// (COMP_WORDS, compgen, compopt), so it works from bash-completion's
// directory as well as sourced from a shell's rc file.
func Bash(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Bash completion for crio.\n# "+generated+"\n\n", "bash")
	p(`_crio() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev= i=$((COMP_CWORD - 1))
    # Bash splits --flag=value at "=" (COMP_WORDBREAKS).
    if [[ $cur == = ]]; then
        cur=
        prev=${COMP_WORDS[i]}
    elif ((i > 0)) && [[ ${COMP_WORDS[i]} == = ]]; then
        prev=${COMP_WORDS[i - 1]}
    elif ((i > 0)); then
        prev=${COMP_WORDS[i]}
    fi

    # The command is the first word that is neither a global flag nor its argument.
    local cmd= w j
    for ((j = 1; j < COMP_CWORD; j++)); do
        w=${COMP_WORDS[j]}
        case $w in
        %s)
            if [[ ${COMP_WORDS[j + 1]} == = ]]; then ((j += 2)); else ((j++)); fi ;;
        -*) ;;
        *)
            cmd=$w
            break ;;
        esac
    done

    # The argument of a flag.
    case $cmd/$prev in
`, strings.Join(argFlags(GlobalFlags), "|"))
	bashArgs := func(cmd string, flags []Flag) {
		for _, f := range flags {
			if f.Arg == "" {
				continue
			}
			var pats []string
			for _, n := range f.Names() {
				pats = append(pats, cmd+"/"+n)
			}
			p("    %s)\n", strings.Join(pats, "|"))
			switch {
			case len(f.Values) > 0:
				p("        mapfile -t COMPREPLY < <(compgen -W '%s' -- \"$cur\")\n", strings.Join(f.Values, " "))
			case f.Complete == CompleteFile:
				p("        compopt -o filenames 2>/dev/null\n")
				p("        mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n")
			case f.Complete == CompleteDir:
				p("        compopt -o filenames 2>/dev/null\n")
				p("        mapfile -t COMPREPLY < <(compgen -d -- \"$cur\")\n")
			default:
				p("        COMPREPLY=()\n")
			}
			p("        return ;;\n")
		}
	}
	bashArgs("", GlobalFlags)
	for _, c := range Commands {
		bashArgs(c.Name, c.Flags)
	}
	p("    esac\n\n")
	p("    # Flags (when the word starts with \"-\"), commands and operands.\n")
	p("    local flags operands\n")
	p("    case $cmd in\n")
	var names []string
	for _, c := range Commands {
		names = append(names, c.Name)
	}
	p("    \"\")\n")
	p("        flags='%s'\n", strings.Join(allNames(WithHelp(GlobalFlags)), " "))
	p("        operands='%s' ;;\n", strings.Join(names, " "))
	for _, c := range Commands {
		var ops []string
		for _, o := range c.Operands {
			ops = append(ops, o.Name)
		}
		p("    %s)\n", c.Name)
		p("        flags='%s'\n", strings.Join(allNames(WithHelp(c.Flags)), " "))
		p("        operands='%s' ;;\n", strings.Join(ops, " "))
	}
	p("    esac\n")
	p("    local words=$operands\n")
	p("    [[ $cur == -* ]] && words=$flags\n")
	p("    mapfile -t COMPREPLY < <(compgen -W \"$words\" -- \"$cur\")\n")
	p("}\n\n")
	p("complete -F _crio crio\n")
}

// zq quotes s for a single-quoted Zsh word.
func zq(s string) string { return strings.ReplaceAll(s, "'", `'\''`) }

// zdesc escapes s for the [description] of an _arguments spec.
func zdesc(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`, "'", `'\''`)
	return r.Replace(s)
}

// zname escapes the name part of a _describe "name:description" entry.
func zname(s string) string { return zq(strings.ReplaceAll(s, ":", `\:`)) }

// zspecs writes the _arguments specs of flags, one per line.
func zspecs(p func(string, ...any), flags []Flag, indent string) {
	for _, f := range WithHelp(flags) {
		names := f.Names()
		excl := "(" + strings.Join(names, " ") + ")"
		if f.Long == HelpFlag.Long {
			excl = "(- *)" // --help ends the command line
		}
		rep := ""
		if f.Repeated {
			excl, rep = "", "*"
		}
		var forms []string
		for _, n := range names {
			if f.Arg != "" {
				n += "=" // Go's flag package takes -f=v and -f v
			}
			forms = append(forms, rep+n)
		}
		var spec string
		if len(forms) == 1 {
			spec = "'" + excl + forms[0]
		} else {
			spec = "'" + excl + "'{'" + strings.Join(forms, "','") + "'}'"
		}
		spec += "[" + zdesc(f.Usage) + "]"
		if f.Arg != "" {
			action := " "
			switch {
			case len(f.Values) > 0:
				action = "(" + strings.Join(f.Values, " ") + ")"
			case f.Complete == CompleteFile:
				action = "_files"
			case f.Complete == CompleteDir:
				action = "_files -/"
			}
			spec += ":" + zq(strings.ToLower(f.Arg)) + ":" + action
		}
		spec += "'"
		p("%s%s \\\n", indent, spec)
	}
}

// Zsh writes the Zsh completion script: a #compdef file for a directory in
// fpath, which also registers itself with compdef when sourced.
func Zsh(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("#compdef crio\n# Zsh completion for crio.\n# "+generated+"\n\n", "zsh")
	for _, c := range Commands {
		if len(c.Operands) == 0 {
			continue
		}
		p("_crio_%s_operands() {\n", c.Name)
		p("    local -a operands=(\n")
		for _, o := range c.Operands {
			p("        '%s:%s'\n", zname(o.Name), zq(o.Text))
		}
		p("    )\n")
		p("    _describe -t operands 'crio %s operand' operands\n", c.Name)
		p("}\n\n")
	}
	p("_crio() {\n")
	p("    local curcontext=$curcontext state state_descr line ret=1\n")
	p("    typeset -A opt_args\n")
	p("    _arguments -C \\\n")
	zspecs(p, GlobalFlags, "        ")
	p("        '1:command:->command' \\\n")
	p("        '*::argument:->argument' && ret=0\n")
	p("    case $state in\n")
	p("    command)\n")
	p("        local -a commands=(\n")
	for _, c := range Commands {
		p("            '%s:%s'\n", zname(c.Name), zq(c.Summary()))
	}
	p("        )\n")
	p("        _describe -t commands 'crio command' commands && ret=0 ;;\n")
	p("    argument)\n")
	p("        curcontext=${curcontext%%:*:*}:crio-$words[1]:\n")
	p("        case $words[1] in\n")
	for _, c := range Commands {
		p("        %s)\n", c.Name)
		p("            _arguments \\\n")
		zspecs(p, c.Flags, "                ")
		if len(c.Operands) > 0 {
			p("                '1::operand:_crio_%s_operands' \\\n", c.Name)
		}
		p("                && ret=0 ;;\n")
	}
	p("        esac ;;\n")
	p("    esac\n")
	p("    return ret\n")
	p("}\n\n")
	p("if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then\n")
	p("    _crio \"$@\"\n")
	p("else\n")
	p("    compdef _crio crio\n")
	p("fi\n")
}

// fq quotes s as a single-quoted Fish word.
func fq(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

// Fish writes the Fish completion script.
func Fish(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Fish completion for crio.\n# "+generated+"\n\n", "fish")
	var quoted []string
	for _, n := range argFlags(GlobalFlags) {
		quoted = append(quoted, fq(n))
	}
	p(`# __crio_command prints the command: the first word after crio that is
# neither a global flag nor its argument.
function __crio_command
    set -l words (commandline -opc)
    set -e words[1]
    set -l skip 0
    for w in $words
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case %s
                set skip 1
            case '-*'
            case '*'
                echo $w
                return 0
        end
    end
    return 1
end

function __crio_no_command
    not __crio_command >/dev/null
end

function __crio_using_command
    set -l cmd (__crio_command)
    and test "$cmd" = $argv[1]
end

complete -c crio -f
`, strings.Join(quoted, " "))
	flags := func(cond string, fl []Flag) {
		for _, f := range WithHelp(fl) {
			line := "complete -c crio -n " + fq(cond)
			if f.Short != "" {
				line += " -s " + f.Short
			}
			line += " -l " + f.Long
			if f.Arg != "" {
				switch {
				case len(f.Values) > 0:
					line += " -x -a " + fq(strings.Join(f.Values, " "))
				case f.Complete == CompleteFile:
					line += " -r -F"
				case f.Complete == CompleteDir:
					line += " -x -a '(__fish_complete_directories)'"
				default:
					line += " -x"
				}
			}
			p("%s -d %s\n", line, fq(f.Usage))
		}
	}
	p("\n# Global flags and commands.\n")
	flags("__crio_no_command", GlobalFlags)
	for _, c := range Commands {
		p("complete -c crio -n __crio_no_command -a %s -d %s\n", c.Name, fq(c.Summary()))
	}
	for _, c := range Commands {
		p("\n# crio %s\n", c.Name)
		cond := "__crio_using_command " + c.Name
		flags(cond, c.Flags)
		for _, o := range c.Operands {
			p("complete -c crio -n %s -a %s -d %s\n", fq(cond), fq(o.Name), fq(o.Text))
		}
	}
}
