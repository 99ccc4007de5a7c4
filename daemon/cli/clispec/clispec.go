// Package clispec declares crio's command line as data: the global flags,
// the commands with their flags and operands, the signals and the exit
// codes. Package cli parses and serves from these definitions; the help
// text, the completion scripts (Bash, Zsh, Fish) and the crio(8) man page
// (hack/gendocs) are rendered from them, so none of them can drift from
// what the binary accepts.
//
// The package is a leaf (it imports only daemon/config's constants), so the
// generators build and run on the build machine without the daemon.
package clispec

import "github.com/crio-appliance/crio/daemon/config"

// Exit codes of crio.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// ExitCodes documents the exit codes, in order.
var ExitCodes = []Doc{
	{"0", "success"},
	{"1", "an error: an invalid configuration (every error is printed), a daemon that failed or could not be reached"},
	{"2", "a usage error: an unknown flag, command or argument"},
}

// Doc is a named item with its description.
type Doc struct{ Name, Text string }

// Complete says how a shell completes a flag's argument.
type Complete int

const (
	CompleteNone Complete = iota // free text (no suggestions)
	CompleteFile                 // a file name
	CompleteDir                  // a directory name
)

// Flag is one option. A flag without Arg is boolean.
type Flag struct {
	Long, Short string
	// Key is the configuration key a set global flag overrides; "" for the
	// flags that choose the files or set Env instead.
	Key string
	// Arg is the argument's placeholder in help and man page; "" for a
	// boolean flag.
	Arg   string
	Usage string
	// Repeated flags collect every value (commas also separate values).
	Repeated bool
	// Int flags set an integer key: the argument must be a number.
	Int bool
	// Env, for a flag that is not a configuration key, is the environment
	// variable the flag sets for the libraries that read it.
	Env string
	// Complete and Values drive shell completion of the argument: Values,
	// when set, are the only valid arguments.
	Complete Complete
	Values   []string
}

// Command is a command after the global flags.
type Command struct {
	Name string
	// Forms are the ways to call it, one help line each: the arguments
	// after the command name and what that form does.
	Forms []Doc
	// Description is the man page's paragraph about the command.
	Description string
	Flags       []Flag
	// Operands are the words the command accepts as its one operand, with
	// what each does (status info, config validate, completion bash, ...).
	Operands []Doc
}

// The environment variables behind --registries-conf and
// --registries-conf-dir. The first is containers/image's own; the image
// service reads both.
const (
	RegistriesConfEnv    = "CONTAINERS_REGISTRIES_CONF"
	RegistriesConfDirEnv = "CONTAINERS_REGISTRIES_CONF_DIR"
)

// LogLevels are the values of --log-level (crio.runtime.log_level).
var LogLevels = []string{"trace", "debug", "info", "warn", "error", "fatal", "panic"}

// GlobalFlags are CRI-O's names, so that unit files and scripts written for
// CRI-O work unchanged. They come before the command.
var GlobalFlags = []Flag{
	{Long: "config", Short: "c", Arg: "FILE", Complete: CompleteFile, Usage: "main configuration file (default " + config.DefaultConfigFile + "); must exist when given"},
	{Long: "config-dir", Short: "d", Arg: "DIR", Complete: CompleteDir, Usage: "drop-in directory, *.conf read in lexical order (default " + config.DefaultConfigDir + ")"},
	{Long: "log-level", Short: "l", Key: "crio.runtime.log_level", Arg: "LEVEL", Values: LogLevels, Usage: "log level: trace, debug, info, warn, error, fatal or panic"},
	{Long: "root", Short: "r", Key: "crio.root", Arg: "DIR", Complete: CompleteDir, Usage: "storage root directory"},
	{Long: "runroot", Key: "crio.runroot", Arg: "DIR", Complete: CompleteDir, Usage: "storage state directory"},
	{Long: "listen", Key: "crio.api.listen", Arg: "PATH", Complete: CompleteFile, Usage: "CRI socket path"},
	{Long: "default-runtime", Key: "crio.runtime.default_runtime", Arg: "NAME", Usage: "runtime handler used when a pod names none"},
	{Long: "cgroup-manager", Key: "crio.runtime.cgroup_manager", Arg: "NAME", Values: []string{"cgroupfs", "systemd"}, Usage: "cgroup manager: cgroupfs or systemd"},
	{Long: "cni-config-dir", Key: "crio.network.network_dir", Arg: "DIR", Complete: CompleteDir, Usage: "CNI configuration directory"},
	{Long: "cni-plugin-dir", Key: "crio.network.plugin_dirs", Arg: "DIR", Complete: CompleteDir, Usage: "CNI plugin directory; repeat (or separate with commas) for several", Repeated: true},
	{Long: "pause-image", Key: "crio.image.pause_image", Arg: "IMAGE", Usage: "image of the pod infra container"},
	{Long: "signature-policy", Key: "crio.image.signature_policy", Arg: "FILE", Complete: CompleteFile, Usage: "signature policy file (default /etc/containers/policy.json)"},
	// CRI-O's metrics flags (CRIO_METRICS_OPTIONS of the unit).
	{Long: "enable-metrics", Key: "crio.metrics.enable_metrics", Usage: "serve Prometheus metrics (--enable-metrics=false turns them off)"},
	{Long: "metrics-host", Key: "crio.metrics.metrics_host", Arg: "HOST", Usage: "address of the metrics server (default 127.0.0.1)"},
	{Long: "metrics-port", Key: "crio.metrics.metrics_port", Arg: "PORT", Int: true, Usage: "port of the metrics server (default 9090)"},
	{Long: "metrics-socket", Key: "crio.metrics.metrics_socket", Arg: "PATH", Complete: CompleteFile, Usage: "unix socket that also serves the metrics"},
	{Long: "metrics-cert", Key: "crio.metrics.metrics_cert", Arg: "FILE", Complete: CompleteFile, Usage: "TLS certificate of the metrics server"},
	{Long: "metrics-key", Key: "crio.metrics.metrics_key", Arg: "FILE", Complete: CompleteFile, Usage: "TLS key of the metrics server"},
	{Long: "metrics-collectors", Key: "crio.metrics.metrics_collectors", Arg: "NAME", Repeated: true, Usage: "a collector to export; repeat (or separate with commas) for several"},
	// CRI-O's profiler flags: command line only, no configuration key.
	{Long: "profile", Usage: "serve pprof (net/http/pprof) on 127.0.0.1 only, at --profile-port; off by default"},
	{Long: "profile-port", Arg: "PORT", Usage: "port of the pprof server of --profile (default 6060)"},
	// CRI-O keeps these two out of crio.conf; so do we.
	{Long: "registries-conf", Env: RegistriesConfEnv, Arg: "FILE", Complete: CompleteFile, Usage: "registries.conf (default /etc/containers/registries.conf); sets " + RegistriesConfEnv},
	{Long: "registries-conf-dir", Env: RegistriesConfDirEnv, Arg: "DIR", Complete: CompleteDir, Usage: "registries.conf drop-in directory (default /etc/containers/registries.conf.d); sets " + RegistriesConfDirEnv},
}

// HelpFlag is -h/--help, accepted before any command and after each.
var HelpFlag = Flag{Long: "help", Short: "h", Usage: "print the help and exit"}

// Shells are the shells `crio completion` writes scripts for; the first is
// the default.
var Shells = []string{"bash", "zsh", "fish"}

// Commands are crio's commands, in the order help lists them. Without a
// command crio runs the daemon.
var Commands = []Command{
	{
		Name:        "version",
		Forms:       []Doc{{"[--json]", "print version and build information"}},
		Description: "Print the version, the git commit, the Go version, the build tags, the platform and the link mode of the binary.",
		Flags:       []Flag{{Long: "json", Usage: "print JSON"}},
	},
	{
		Name: "config",
		Forms: []Doc{
			{"[--default] [--origin]", "print the effective configuration as TOML\n(--origin: name the file or flag that set each key)"},
			{"validate", "check the node's runtime configuration (crio.conf, registries.conf,\npolicy.json, CNI, seccomp, runtime binaries); exit 1 listing every error"},
			{"validate --ignition F [--root D]", "the same, on the node as Ignition config F would leave root D"},
		},
		Description: "Print the effective configuration (the files merged, then the global flags applied) as commented TOML that crio accepts back as a configuration file.",
		Flags: []Flag{
			{Long: "default", Usage: "print the built-in defaults instead"},
			{Long: "origin", Usage: "name the file:line or flag that set each non-default key"},
			{Long: "ignition", Arg: "FILE", Complete: CompleteFile, Usage: "validate: check the node as this Ignition config would leave it"},
			{Long: "root", Arg: "DIR", Complete: CompleteDir, Usage: "validate --ignition: the node's root directory (default /; never written)"},
		},
		Operands: []Doc{{"validate", "check the configuration files and flags without starting anything: exit 0, or exit 1 listing every error with its file, line and key"}},
	},
	{
		Name: "firstboot",
		Forms: []Doc{
			{"[--platform P] [--config F] [--root D]", "apply the node's Ignition config once, at first boot, then\nvalidate the node's runtime configuration; exit 1 listing every error"},
		},
		Description: "Run by crio-firstboot.service before crio.service on every boot. It finds the node's Ignition config as Ignition does (ignition.platform.id on the kernel command line: the file platform's IGNITION_CONFIG_FILE, or the qemu platform's fw_cfg key opt/com.coreos/config). Unless Ignition already ran (/etc/.ignition-result.json) or the config was applied before (/etc/crio/firstboot.json records its sha256), it checks the whole config and the node's runtime configuration as the config would leave it, and only when everything is valid writes its files, directories, links, systemd units and users, atomically, and records it. Then, on every boot, it validates the node as crio config validate does. Any error fails the unit, and crio.service, which requires it, does not start.",
		Flags: []Flag{
			{Long: "platform", Arg: "ID", Values: []string{"file", "qemu"}, Usage: "the Ignition platform (default: ignition.platform.id on the kernel command line; none means no config)"},
			{Long: "config", Arg: "FILE", Complete: CompleteFile, Usage: "the file platform's config (default $IGNITION_CONFIG_FILE, else /config.ign)"},
			{Long: "root", Arg: "DIR", Complete: CompleteDir, Usage: "the node's root directory (default /); units are started only on a live node"},
		},
	},
	{
		Name: "status",
		Forms: []Doc{
			{"[info|config] [--socket PATH]", "ask a running daemon for its info or configuration"},
			{"containers --id ID [--socket PATH]", "ask a running daemon about one container (also: containers ID)"},
		},
		Description: "Ask the running daemon, over its socket, for its info (the default), its configuration or what it knows about one container, in CRI-O's output shape.",
		Flags: []Flag{
			{Long: "socket", Arg: "PATH", Complete: CompleteFile, Usage: "daemon socket (default: crio.api.listen of the configuration)"},
			{Long: "id", Short: "i", Arg: "ID", Usage: "containers: the container's ID"},
		},
		Operands: []Doc{
			{"info", "the cgroup driver, the storage driver and root, the default ID mappings"},
			{"config", "the daemon's configuration, as TOML"},
			{"containers", "one container: name, pid, image, creation time, labels, annotations, log path, root, sandbox, IPs"},
		},
	},
	{
		Name:        "completion",
		Forms:       []Doc{{"[bash|zsh|fish]", "print a shell completion script (default bash)"}},
		Description: "Print a completion script for crio's flags and commands. Packages install them; to try one, run source <(crio completion bash) in Bash, source <(crio completion zsh) in Zsh, or crio completion fish | source in Fish.",
		Operands: []Doc{
			{"bash", "a Bash script (needs no bash-completion package, uses it when loaded by it)"},
			{"zsh", "a Zsh script for fpath (#compdef), which also works when sourced"},
			{"fish", "a Fish script"},
		},
	},
	{
		Name:        "help",
		Forms:       []Doc{{"", "print this help"}},
		Description: "Print the usage, like --help.",
	},
}

// CommandNamed returns the command called name.
func CommandNamed(name string) (Command, bool) {
	for _, c := range Commands {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}

// Signals the daemon handles.
var Signals = []Doc{
	{"SIGHUP", "reload the configuration (log_level applies at once)"},
	{"SIGTERM", "stop the daemon gracefully"},
	{"SIGINT", "stop the daemon gracefully"},
}
