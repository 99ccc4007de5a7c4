package config

// Default locations, moved by --config/-c and --config-dir/-d.
const (
	DefaultConfigFile = "/etc/crio/crio.conf"
	DefaultConfigDir  = "/etc/crio/crio.conf.d"
)

// Sources says where the configuration comes from.
type Sources struct {
	// ConfigFile is the main file. When ConfigFileExplicit is false a
	// missing file is not an error (CRI-O runs on defaults).
	ConfigFile         string
	ConfigFileExplicit bool
	// ConfigDir holds drop-ins; only *.conf files are read, in lexical order.
	ConfigDir string
	// Flags are the command-line flags that were set, as dotted key paths
	// ("crio.runtime.log_level") to values (string or []string).
	Flags []Flag
}

// Flag is one command-line override.
type Flag struct {
	Name  string // the flag as typed, e.g. "--root"
	Key   string // dotted key path, e.g. "crio.root"
	Value any    // string or []string
}

// Result is a loaded, validated configuration.
type Result struct {
	Config *Config
	// Origin maps dotted key paths that differ from the default source
	// ("crio.runtime.log_level") to where they were set:
	// "/etc/crio/crio.conf.d/50-x.conf:3" or "flag --log-level".
	Origin map[string]string
	// Warnings are non-fatal findings, such as CRI-O tables crio accepts
	// but ignores.
	Warnings []string
	// Files are the files read, in order.
	Files []string
}
