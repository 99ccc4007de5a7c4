package cli

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/crio-appliance/crio/daemon/cli/clispec"
	"github.com/crio-appliance/crio/daemon/config"
)

// The environment variables behind --registries-conf and
// --registries-conf-dir (see clispec).
const (
	RegistriesConfEnv    = clispec.RegistriesConfEnv
	RegistriesConfDirEnv = clispec.RegistriesConfDirEnv
)

// globalFlags are CRI-O's global options, declared in package clispec,
// from which the help, the man page and the completion scripts are made.
var globalFlags = clispec.GlobalFlags

// listValue collects a repeated flag; commas separate values too, as in
// CRI-O's command line.
type listValue struct{ v *[]string }

func (l listValue) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l listValue) Set(s string) error {
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l.v = append(*l.v, p)
		}
	}
	return nil
}

// Global is the parsed global part of a command line.
type Global struct {
	// Sources are the configuration sources the flags select, with the set
	// flags as overrides.
	Sources config.Sources
	// Set holds the long names of the flags given.
	Set map[string]bool
	// Env are environment variables the flags set (see clispec.Flag.Env);
	// Main applies them before anything reads them.
	Env map[string]string
	// Profile and ProfilePort are --profile and --profile-port; 0 means
	// the default port.
	Profile     bool
	ProfilePort int
}

// ParseGlobal parses the global flags at the front of args and returns the
// rest (the command and its arguments). Only flags actually given become
// overrides, so a flag never hides a file's value by its default. It
// returns flag.ErrHelp for -h/--help.
func ParseGlobal(args []string, errOut io.Writer) (*Global, []string, error) {
	fs := flag.NewFlagSet("crio", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {} // Main prints the help itself

	strs := map[string]*string{}
	bools := map[string]*bool{}
	lists := map[string]*[]string{}
	byName := map[string]clispec.Flag{}
	for _, f := range globalFlags {
		names := []string{f.Long}
		if f.Short != "" {
			names = append(names, f.Short)
		}
		if f.Arg == "" {
			v := new(bool)
			bools[f.Long] = v
			for _, n := range names {
				fs.BoolVar(v, n, false, f.Usage)
			}
		} else if f.Repeated {
			v := new([]string)
			lists[f.Long] = v
			for _, n := range names {
				fs.Var(listValue{v}, n, f.Usage)
			}
		} else {
			v := new(string)
			strs[f.Long] = v
			for _, n := range names {
				fs.StringVar(v, n, "", f.Usage)
			}
		}
		for _, n := range names {
			byName[n] = f
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}

	g := &Global{
		Sources: config.Sources{ConfigFile: config.DefaultConfigFile, ConfigDir: config.DefaultConfigDir},
		Set:     map[string]bool{},
	}
	// Visit walks set flags in name order, not command-line order; long and
	// short forms share one variable, so whichever came last already won.
	typed := map[string]string{}
	fs.Visit(func(fl *flag.Flag) {
		f := byName[fl.Name]
		g.Set[f.Long] = true
		dashes := "--"
		if len(fl.Name) == 1 {
			dashes = "-"
		}
		typed[f.Long] = dashes + fl.Name
	})
	for _, f := range globalFlags {
		if !g.Set[f.Long] {
			continue
		}
		switch f.Long {
		case "config":
			g.Sources.ConfigFile = *strs[f.Long]
			g.Sources.ConfigFileExplicit = true
		case "config-dir":
			g.Sources.ConfigDir = *strs[f.Long]
		case "profile":
			g.Profile = *bools[f.Long]
		case "profile-port":
			port, err := strconv.Atoi(*strs[f.Long])
			if err != nil || port < 1 || port > 65535 {
				fmt.Fprintf(errOut, "invalid value %q for flag --profile-port: a port is 1 to 65535\n", *strs[f.Long])
				return nil, nil, fmt.Errorf("--profile-port %q: not a port", *strs[f.Long])
			}
			g.ProfilePort = port
		case "registries-conf", "registries-conf-dir":
			if g.Env == nil {
				g.Env = map[string]string{}
			}
			g.Env[f.Env] = *strs[f.Long]
		default:
			var v any
			switch {
			case f.Arg == "":
				v = *bools[f.Long]
			case f.Int:
				n, err := strconv.ParseInt(*strs[f.Long], 10, 64)
				if err != nil {
					fmt.Fprintf(errOut, "invalid value %q for flag %s: not a number\n", *strs[f.Long], typed[f.Long])
					return nil, nil, fmt.Errorf("%s %q: not a number", typed[f.Long], *strs[f.Long])
				}
				v = n
			case f.Repeated:
				v = append([]string(nil), *lists[f.Long]...)
			default:
				v = *strs[f.Long]
			}
			g.Sources.Flags = append(g.Sources.Flags, config.Flag{Name: typed[f.Long], Key: f.Key, Value: v})
		}
	}
	return g, fs.Args(), nil
}

// FlagFor returns the override of key, if its flag was set.
func (g *Global) FlagFor(key string) (config.Flag, bool) {
	for _, f := range g.Sources.Flags {
		if f.Key == key {
			return f, true
		}
	}
	return config.Flag{}, false
}

func writeGlobalHelp(w io.Writer) {
	for _, f := range globalFlags {
		names := "    --" + f.Long
		if f.Short != "" {
			names = "-" + f.Short + ", --" + f.Long
		}
		fmt.Fprintf(w, "  %-32s %s\n", strings.TrimSpace(names+" "+f.Arg), f.Usage)
	}
}
