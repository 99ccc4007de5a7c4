package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/crio-appliance/crio/daemon/config"
)

// globalFlag is one CRI-O global option. key is the configuration key a
// set flag overrides; "" for the options that choose the files instead.
type globalFlag struct {
	long, short string
	key         string
	arg         string // placeholder in the help
	usage       string
	repeated    bool
	// env, for a flag that is not a configuration key, is the environment
	// variable the flag sets for the libraries that read it.
	env string
}

// globalFlags are CRI-O's names, so that unit files and scripts written for
// CRI-O work unchanged.
var globalFlags = []globalFlag{
	{long: "config", short: "c", arg: "FILE", usage: "main configuration file (default " + config.DefaultConfigFile + "); must exist when given"},
	{long: "config-dir", short: "d", arg: "DIR", usage: "drop-in directory, *.conf read in lexical order (default " + config.DefaultConfigDir + ")"},
	{long: "log-level", short: "l", key: "crio.runtime.log_level", arg: "LEVEL", usage: "log level: trace, debug, info, warn, error, fatal or panic"},
	{long: "root", short: "r", key: "crio.root", arg: "DIR", usage: "storage root directory"},
	{long: "runroot", key: "crio.runroot", arg: "DIR", usage: "storage state directory"},
	{long: "listen", key: "crio.api.listen", arg: "PATH", usage: "CRI socket path"},
	{long: "default-runtime", key: "crio.runtime.default_runtime", arg: "NAME", usage: "runtime handler used when a pod names none"},
	{long: "cgroup-manager", key: "crio.runtime.cgroup_manager", arg: "NAME", usage: "cgroup manager: cgroupfs or systemd"},
	{long: "cni-config-dir", key: "crio.network.network_dir", arg: "DIR", usage: "CNI configuration directory"},
	{long: "cni-plugin-dir", key: "crio.network.plugin_dirs", arg: "DIR", usage: "CNI plugin directory; repeat (or separate with commas) for several", repeated: true},
	{long: "pause-image", key: "crio.image.pause_image", arg: "IMAGE", usage: "image of the pod infra container"},
	{long: "signature-policy", key: "crio.image.signature_policy", arg: "FILE", usage: "signature policy file (default /etc/containers/policy.json)"},
	// CRI-O keeps these two out of crio.conf; so do we.
	{long: "registries-conf", env: RegistriesConfEnv, arg: "FILE", usage: "registries.conf (default /etc/containers/registries.conf); sets " + RegistriesConfEnv},
	{long: "registries-conf-dir", env: RegistriesConfDirEnv, arg: "DIR", usage: "registries.conf drop-in directory (default /etc/containers/registries.conf.d); sets " + RegistriesConfDirEnv},
}

// The environment variables behind --registries-conf and
// --registries-conf-dir. The first is containers/image's own; the image
// service reads both.
const (
	RegistriesConfEnv    = "CONTAINERS_REGISTRIES_CONF"
	RegistriesConfDirEnv = "CONTAINERS_REGISTRIES_CONF_DIR"
)

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
	// Env are environment variables the flags set (see globalFlag.env);
	// Main applies them before anything reads them.
	Env map[string]string
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
	lists := map[string]*[]string{}
	byName := map[string]globalFlag{}
	for _, f := range globalFlags {
		names := []string{f.long}
		if f.short != "" {
			names = append(names, f.short)
		}
		if f.repeated {
			v := new([]string)
			lists[f.long] = v
			for _, n := range names {
				fs.Var(listValue{v}, n, f.usage)
			}
		} else {
			v := new(string)
			strs[f.long] = v
			for _, n := range names {
				fs.StringVar(v, n, "", f.usage)
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
		g.Set[f.long] = true
		dashes := "--"
		if len(fl.Name) == 1 {
			dashes = "-"
		}
		typed[f.long] = dashes + fl.Name
	})
	for _, f := range globalFlags {
		if !g.Set[f.long] {
			continue
		}
		switch f.long {
		case "config":
			g.Sources.ConfigFile = *strs[f.long]
			g.Sources.ConfigFileExplicit = true
		case "config-dir":
			g.Sources.ConfigDir = *strs[f.long]
		case "registries-conf", "registries-conf-dir":
			if g.Env == nil {
				g.Env = map[string]string{}
			}
			g.Env[f.env] = *strs[f.long]
		default:
			var v any
			if f.repeated {
				v = append([]string(nil), *lists[f.long]...)
			} else {
				v = *strs[f.long]
			}
			g.Sources.Flags = append(g.Sources.Flags, config.Flag{Name: typed[f.long], Key: f.key, Value: v})
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
		names := "    --" + f.long
		if f.short != "" {
			names = "-" + f.short + ", --" + f.long
		}
		fmt.Fprintf(w, "  %-32s %s\n", names+" "+f.arg, f.usage)
	}
}
