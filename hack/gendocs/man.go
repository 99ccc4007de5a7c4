package main

import (
	"strings"

	"github.com/crio-appliance/crio/daemon/cli/clispec"
	"github.com/crio-appliance/crio/daemon/config"
)

// ConfPage renders crio.conf(5) from the walked schema: a section per
// table (CRIO TABLE, CRIO.API TABLE, ...), in schema order, each listing
// its keys with their default, allowed values or type, and documentation;
// the handler tables get their own section.
func ConfPage(s *Schema, m Meta) string {
	var p page
	p.header("CRIO.CONF", "5", "schema/crio.cue", "File Formats Manual", m)
	p.sh("NAME")
	p.line(`crio.conf \- configuration files of the crio container runtime`)
	p.sh("SYNOPSIS")
	p.line("%s", bold(config.DefaultConfigFile))
	p.line(".br")
	p.line("%s", bold(config.DefaultConfigDir+"/*.conf"))

	p.sh("DESCRIPTION")
	p.para("crio, a Kubernetes container runtime compatible with CRI-O, reads its configuration from TOML files with CRI-O's tables and keys. " +
		"Every file is checked against crio's schema before the daemon starts: an unknown key, a value of the wrong type or out of range is an error that names the file, the line and the key, and the daemon does not start. " +
		"Keys that CRI-O knows but crio does not act on are accepted with a warning, so that files written for CRI-O keep working.")
	p.para("The files are read in this order, each later one overriding the earlier ones:")
	p.line(".IP 1. 4")
	p.line("the main file, %s, or the file given with %s; a missing default file is fine, a missing file given with the flag is an error;", bold(config.DefaultConfigFile), bold("--config"))
	p.line(".IP 2. 4")
	p.line("every file whose name ends in %s in the drop-in directory, %s, or the one given with %s, in lexical order of their names; other files there are ignored;", bold(".conf"), bold(config.DefaultConfigDir), bold("--config-dir"))
	p.line(".IP 3. 4")
	p.line("the command-line flags that were given (see %s).", `\fBcrio\fR(8)`)
	p.para("Drop-in files merge into what was read before them:")
	for _, rule := range []string{
		"the last file to set a key wins, key by key; tables merge key by key;",
		"an array is replaced whole, except crio.storage_option, to which each drop-in appends;",
		"a drop-in that declares a new [crio.runtime.runtimes.<name>] table adds a runtime handler beside the others; a drop-in that declares a handler that already exists replaces that handler's whole table, so keys it does not repeat go back to their defaults;",
		"once every file is merged, crio.runtime.default_runtime must name a declared handler.",
	} {
		p.line(`.IP \(bu 2`)
		p.line("%s", esc(rule))
	}
	p.para("crio config prints the effective configuration as a file crio accepts back; crio config --origin also names the file and line, or the flag, that set each key; crio config validate checks the files without starting anything.")

	p.sh("FORMAT")
	p.para("Each key below is shown with its default. Its allowed values are listed when there are few; otherwise its type is given as a CUE constraint (schema/crio.cue in crio's sources), whose named types are described under VALUE TYPES. " +
		"Strings are TOML strings, durations are strings such as \"30s\", arrays are TOML arrays.")

	// Sections: one per table that has keys or sub-tables, in schema order.
	for _, t := range s.Entries {
		if t.Kind != KindTable && t.Kind != KindNamedTables {
			continue
		}
		p.sh(strings.ToUpper(t.Key) + " TABLE")
		members := t.Key
		if t.Kind == KindNamedTables {
			members = t.Key + "." + placeholder
			p.para(t.Doc)
			p.para("Each handler is a table [" + members + "], " + placeholder + " being the handler's name as a RuntimeClass gives it. " +
				"The tables declared by default: " + strings.Join(t.Names, ", ") + ". Its keys:")
		} else {
			p.para(t.Doc)
		}
		var ignored []Entry
		for _, e := range s.Entries {
			if e.Parent() != members {
				continue
			}
			switch e.Kind {
			case KindKey:
				confKey(&p, e)
			case KindTable, KindNamedTables:
				p.tp(bold("["+e.Key+"]"), "A table: see "+strings.ToUpper(e.Key)+" TABLE.")
			case KindIgnored, KindIgnoredTable:
				ignored = append(ignored, e)
			}
		}
		if len(ignored) > 0 {
			p.ss("CRI-O keys accepted and ignored")
			p.para("These CRI-O keys are accepted, so that CRI-O's files keep working, and ignored with a warning that names them.")
			for _, e := range ignored {
				tag := bold(e.Name())
				if e.Kind == KindIgnoredTable {
					tag = bold("[" + e.Key + "]")
				}
				p.tp(tag, e.Doc)
			}
		}
	}

	p.sh("VALUE TYPES")
	p.para("Named types of the constraints above:")
	for _, t := range s.Types {
		p.tp(ital(t.Key), t.Doc)
	}

	p.sh("FILES")
	p.tp(bold(config.DefaultConfigFile), "The main configuration file.")
	p.tp(bold(config.DefaultConfigDir+"/"), "The drop-in directory; its *.conf files are read in lexical order.")
	p.tp(bold("/etc/containers/registries.conf"), "Registries, mirrors and short-name aliases, read by the image service (see containers-registries.conf(5)).")
	p.tp(bold("/etc/containers/policy.json"), "The signature policy when crio.image.signature_policy is empty (see containers-policy.json(5)).")

	p.sh("SEE ALSO")
	p.line(`\fBcrio\fR(8), \fBcrictl\fR(1), \fBcontainers\-registries.conf\fR(5), \fBcontainers\-policy.json\fR(5), \fBcontainers\-storage.conf\fR(5)`)
	return p.String()
}

// confKey writes one key: "name = default", its documentation, then its
// allowed values or type.
func confKey(p *page, e Entry) {
	tag := bold(e.Name())
	if e.Default != "" {
		tag += " = " + breakable(e.Default)
	}
	p.tp(tag, e.Doc)
	p.line(".br")
	switch {
	case e.Enum:
		p.line("Allowed values: %s.", breakable(strings.ReplaceAll(e.Type, " | ", ", ")))
	case e.Type != "":
		p.line("Type: \\fI%s\\fR.", breakable(e.Type))
	default:
		p.line("Type: %s.", ital(e.Base))
	}
}

// CrioPage renders crio(8) from the command line's definitions in
// daemon/cli/clispec.
func CrioPage(s *Schema, m Meta) string {
	var p page
	p.header("CRIO", "8", "daemon/cli/clispec", "System Manager's Manual", m)
	p.sh("NAME")
	p.line(`crio \- Kubernetes container runtime compatible with CRI\-O`)
	p.sh("SYNOPSIS")
	p.line(`\fBcrio\fR [\fIglobal options\fR] [\fIcommand\fR [\fIcommand options\fR]]`)

	listen := "/var/run/crio/crio.sock"
	if e, ok := s.Lookup("crio.api.listen"); ok && e.Default != "" {
		listen = strings.Trim(e.Default, `"`)
	}
	p.sh("DESCRIPTION")
	p.para("crio implements the Kubernetes Container Runtime Interface (CRI, v1) for the kubelet. " +
		"It pulls images into containers/storage, sets up pods (namespaces, cgroups, CNI networking) and runs containers with an OCI runtime such as runc under the conmon monitor. " +
		"It reads CRI-O's configuration files and serves on CRI-O's socket, " + listen + " by default, so that it can replace CRI-O.")
	p.para("Without a command crio checks its configuration, refusing to start if it is invalid, and runs the daemon until it is stopped by a signal. " +
		"Global options come before the command; those that correspond to a configuration key override the files for that key (see crio.conf(5)).")

	p.sh("GLOBAL OPTIONS")
	for _, f := range clispec.WithHelp(clispec.GlobalFlags) {
		p.tp(flagTag(f), flagText(f))
	}

	p.sh("COMMANDS")
	for _, c := range clispec.Commands {
		p.ss(c.Name)
		for i, f := range c.Forms {
			if i > 0 {
				p.line(".br")
			}
			p.line(`\fBcrio\fR [\fIglobal options\fR] %s %s`, bold(c.Name), esc(f.Name))
		}
		p.para(c.Description)
		for _, f := range c.Flags {
			p.tp(flagTag(f), f.Usage)
		}
		for _, o := range c.Operands {
			p.tp(bold(o.Name), o.Text)
		}
	}

	p.sh("SIGNALS")
	for _, sig := range clispec.Signals {
		p.tp(bold(sig.Name), sig.Text)
	}

	p.sh("EXIT STATUS")
	for _, c := range clispec.ExitCodes {
		p.tp(bold(c.Name), c.Text)
	}

	p.sh("ENVIRONMENT")
	for _, f := range clispec.GlobalFlags {
		if f.Env != "" {
			p.tp(bold(f.Env), "Read by the image service; --"+f.Long+" sets it.")
		}
	}

	p.sh("FILES")
	p.tp(bold(config.DefaultConfigFile), "The main configuration file (see crio.conf(5)).")
	p.tp(bold(config.DefaultConfigDir+"/*.conf"), "Configuration drop-ins, read in lexical order after the main file.")
	p.tp(bold(listen), "The default CRI socket (crio.api.listen); it also answers HTTP GET /info and /config, which crio status uses.")

	p.sh("SEE ALSO")
	p.line(`\fBcrio.conf\fR(5), \fBcrictl\fR(1), \fBrunc\fR(8), \fBconmon\fR(8), \fBcontainers\-registries.conf\fR(5), \fBcontainers\-policy.json\fR(5)`)
	return p.String()
}

// flagTag is "-c, --config FILE" in roff.
func flagTag(f clispec.Flag) string {
	var names []string
	if f.Short != "" {
		names = append(names, bold("-"+f.Short))
	}
	names = append(names, bold("--"+f.Long))
	tag := strings.Join(names, ", ")
	if f.Arg != "" {
		tag += " " + ital(f.Arg)
	}
	return tag
}

// flagText is a global flag's usage plus what it overrides or sets.
func flagText(f clispec.Flag) string {
	t := f.Usage
	if len(f.Values) > 0 && !mentionsAll(f.Usage, f.Values) {
		t += " (one of " + strings.Join(f.Values, ", ") + ")"
	}
	t += "."
	if f.Key != "" {
		t += " Overrides " + f.Key + "."
	}
	if f.Repeated {
		t += " May be repeated."
	}
	return t
}

func mentionsAll(text string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}
