// Package cli is crio's command line: CRI-O's global flags before an
// optional command (version, config, status, help); with no command it
// runs the daemon. It lives outside package main so that tests can drive
// it in-process.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/crio-appliance/crio/daemon/cli/clispec"
	"github.com/crio-appliance/crio/daemon/config"
	"github.com/crio-appliance/crio/daemon/daemon"
	"github.com/crio-appliance/crio/daemon/firstboot"
	"github.com/crio-appliance/crio/daemon/httpapi"
	"github.com/crio-appliance/crio/daemon/logging"
	"github.com/crio-appliance/crio/daemon/nodecheck"
	"github.com/crio-appliance/crio/daemon/version"
)

// Exit codes.
const (
	ExitOK    = clispec.ExitOK
	ExitError = clispec.ExitError
	ExitUsage = clispec.ExitUsage
)

// Env is what Main needs from its process.
type Env struct {
	Stdout, Stderr io.Writer
	// Build constructs the daemon's services (the composition root in
	// package main fills it in); nil serves none.
	Build daemon.ServiceBuilder
	// Context ends the daemon when done; nil means context.Background.
	Context context.Context
}

// Main runs the command line args (without the program name) and returns
// the exit code.
func Main(args []string, env Env) int {
	if env.Stdout == nil {
		env.Stdout = os.Stdout
	}
	if env.Stderr == nil {
		env.Stderr = os.Stderr
	}
	if env.Context == nil {
		env.Context = context.Background()
	}
	g, rest, err := ParseGlobal(args, env.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		writeHelp(env.Stdout)
		return ExitOK
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, "Run 'crio --help' for usage.")
		return ExitUsage
	}
	for k, v := range g.Env {
		if err := os.Setenv(k, v); err != nil {
			fmt.Fprintf(env.Stderr, "setting %s: %v\n", k, err)
			return ExitUsage
		}
	}
	if len(rest) == 0 {
		return runDaemon(g, env)
	}
	cmd, cargs := rest[0], rest[1:]
	switch cmd {
	case "version":
		return cmdVersion(cargs, env)
	case "config":
		return cmdConfig(g, cargs, env)
	case "status":
		return cmdStatus(g, cargs, env)
	case "firstboot":
		return cmdFirstboot(g, cargs, env)
	case "completion":
		return cmdCompletion(cargs, env)
	case "help":
		writeHelp(env.Stdout)
		return ExitOK
	}
	fmt.Fprintf(env.Stderr, "crio: unknown command %q\nRun 'crio --help' for usage.\n", cmd)
	return ExitUsage
}

// writeHelp prints the usage, made from clispec's definitions.
func writeHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: crio [global options] [command [command options]]

crio is a Kubernetes container runtime (CRI v1) compatible with CRI-O.
Without a command it runs the daemon.

Commands:
`)
	const col = 38
	for _, c := range clispec.Commands {
		for _, f := range c.Forms {
			use := strings.TrimSpace(c.Name + " " + f.Name)
			for i, line := range strings.Split(f.Text, "\n") {
				if i > 0 {
					use = ""
				}
				fmt.Fprintf(w, "  %-*s %s\n", col-1, use, line)
			}
		}
	}
	fmt.Fprint(w, "\nGlobal options (before the command):\n")
	writeGlobalHelp(w)
	fmt.Fprint(w, `
Configuration is read from the main file, then every *.conf in the drop-in
directory in lexical order, then the options above that are given.

Signals:
`)
	for _, sig := range clispec.Signals {
		fmt.Fprintf(w, "  %-8s %s\n", sig.Name, sig.Text)
	}
}

// subFlags is a FlagSet for a command with the flags clispec declares for
// it, printing its own errors. Read the values with boolFlag and strFlag.
func subFlags(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet("crio "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	c, _ := clispec.CommandNamed(name)
	for _, f := range c.Flags {
		// The short form shares the long one's value, so boolFlag and
		// strFlag read either by the long name.
		if f.Arg == "" {
			v := fs.Bool(f.Long, false, f.Usage)
			if f.Short != "" {
				fs.BoolVar(v, f.Short, false, f.Usage)
			}
		} else {
			v := fs.String(f.Long, "", f.Usage)
			if f.Short != "" {
				fs.StringVar(v, f.Short, "", f.Usage)
			}
		}
	}
	return fs
}

// boolFlag and strFlag read a flag that subFlags defined.
func boolFlag(fs *flag.FlagSet, name string) bool {
	return fs.Lookup(name).Value.(flag.Getter).Get().(bool)
}

func strFlag(fs *flag.FlagSet, name string) string {
	return fs.Lookup(name).Value.String()
}

// parseInterspersed accepts the command's flags before and after its one
// optional operand ("status --socket x info" and "status info --socket x").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return operands, nil
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func cmdVersion(args []string, env Env) int {
	fs := subFlags("version", env)
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "crio version: unexpected argument %q\n", fs.Arg(0))
		return ExitUsage
	}
	info := version.Get()
	if boolFlag(fs, "json") {
		b, _ := json.MarshalIndent(info, "", "  ")
		fmt.Fprintf(env.Stdout, "%s\n", b)
		return ExitOK
	}
	fmt.Fprint(env.Stdout, info.String())
	return ExitOK
}

func cmdConfig(g *Global, args []string, env Env) int {
	fs := subFlags("config", env)
	operands, err := parseInterspersed(fs, args)
	if err != nil {
		return usageExit(err)
	}
	switch {
	case len(operands) == 1 && operands[0] == "validate":
		root := strFlag(fs, "root")
		if root == "" {
			root = "/"
		}
		return validate(g, strFlag(fs, "ignition"), root, env)
	case strFlag(fs, "ignition") != "":
		fmt.Fprintln(env.Stderr, "crio config: --ignition goes with 'crio config validate'")
		return ExitUsage
	case len(operands) > 0:
		fmt.Fprintf(env.Stderr, "crio config: unknown argument %q (did you mean 'crio config validate'?)\n", operands[0])
		return ExitUsage
	}
	if boolFlag(fs, "default") {
		fmt.Fprint(env.Stdout, config.DefaultTOML())
		return ExitOK
	}
	res, ok := load(g, env)
	if !ok {
		return ExitError
	}
	fmt.Fprint(env.Stdout, res.TOML(boolFlag(fs, "origin")))
	return ExitOK
}

func cmdFirstboot(g *Global, args []string, env Env) int {
	fs := subFlags("firstboot", env)
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "crio firstboot: unexpected argument %q\n", fs.Arg(0))
		return ExitUsage
	}
	root := strFlag(fs, "root")
	if root == "" {
		root = "/"
	}
	out, err := firstboot.Run(firstboot.Options{
		Root:    root,
		Locator: firstboot.Locator{Platform: strFlag(fs, "platform"), ConfigFile: strFlag(fs, "config")},
		Check: nodecheck.Options{
			Sources:           g.Sources,
			RegistriesConf:    os.Getenv(RegistriesConfEnv),
			RegistriesConfDir: os.Getenv(RegistriesConfDirEnv),
		},
	})
	for _, w := range out.Warnings {
		fmt.Fprintf(env.Stderr, "warning: %s\n", w)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "crio firstboot: %v\n", err)
		return ExitError
	}
	what := string(out.Action)
	if out.Source.Path != "" {
		what += fmt.Sprintf(" (%s platform, %s", out.Source.Platform, out.Source.Path)
		if out.SHA256 != "" {
			what += ", sha256 " + out.SHA256
		}
		what += ")"
	}
	if !out.OK() {
		fmt.Fprintf(env.Stderr, "crio firstboot: %s; the node's runtime configuration is not valid, nothing was applied and crio will not start:\n", what)
		printConfigError(env.Stderr, out.Errors)
		return ExitError
	}
	if a := out.Applied; a != nil {
		what += fmt.Sprintf(": %d paths, units [%s], users [%s]", len(a.Paths), strings.Join(a.Units, " "), strings.Join(a.Users, " "))
	}
	fmt.Fprintf(env.Stdout, "crio firstboot: %s; the node's runtime configuration is valid\n", what)
	if root == "/" && out.Action == firstboot.ActionApplied {
		if err := firstboot.StartUnits(out.Units); err != nil {
			fmt.Fprintf(env.Stderr, "crio firstboot: %v\n", err)
			return ExitError
		}
	}
	return ExitOK
}

func validate(g *Global, ignition, root string, env Env) int {
	opts := nodecheck.Options{
		Sources:           g.Sources,
		RegistriesConf:    os.Getenv(RegistriesConfEnv),
		RegistriesConfDir: os.Getenv(RegistriesConfDirEnv),
	}
	var rep *nodecheck.Report
	if ignition == "" {
		rep = nodecheck.Check(opts)
	} else {
		raw, err := os.ReadFile(ignition)
		if err != nil {
			fmt.Fprintf(env.Stderr, "crio config validate: %v\n", err)
			return ExitError
		}
		ign, errs, warns := nodecheck.ParseIgnition(raw)
		for _, w := range warns {
			fmt.Fprintf(env.Stderr, "warning: %s\n", w)
		}
		if ign == nil {
			printConfigError(env.Stderr, errs)
			return ExitError
		}
		rep, err = nodecheck.CheckIgnition(ign, root, opts)
		if err != nil {
			fmt.Fprintf(env.Stderr, "crio config validate: %v\n", err)
			return ExitError
		}
		rep.Errors = append(errs, rep.Errors...)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(env.Stderr, "warning: %s\n", w)
	}
	if !rep.OK() {
		printConfigError(env.Stderr, rep.Errors)
		return ExitError
	}
	what := "defaults only"
	if len(rep.Files) > 0 {
		what = strings.Join(rep.Files, ", ")
	}
	if ignition != "" {
		what = ignition + " over " + root + ": " + what
	}
	fmt.Fprintf(env.Stdout, "configuration is valid (%s)\n", what)
	return ExitOK
}

// load loads the configuration, printing every error or warning to stderr.
func load(g *Global, env Env) (*config.Result, bool) {
	res, err := config.Load(g.Sources)
	if err != nil {
		printConfigError(env.Stderr, err)
		return nil, false
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(env.Stderr, "warning: %s\n", w)
	}
	return res, true
}

// printConfigError writes the loader's errors, one per line as it formats
// them (file:line: key: message).
func printConfigError(w io.Writer, err error) {
	fmt.Fprintln(w, strings.TrimRight(err.Error(), "\n"))
}

func cmdStatus(g *Global, args []string, env Env) int {
	fs := subFlags("status", env)
	operands, err := parseInterspersed(fs, args)
	if err != nil {
		return usageExit(err)
	}
	what := "info"
	if len(operands) > 0 {
		what = operands[0]
	}
	id := strFlag(fs, "id")
	var path string
	switch what {
	case "info", "config":
		path = httpapi.InfoPath
		if what == "config" {
			path = httpapi.ConfigPath
		}
		if len(operands) > 1 {
			fmt.Fprintf(env.Stderr, "crio status: unexpected argument %q\n", operands[1])
			return ExitUsage
		}
	case "containers", "container", "c": // CRI-O's aliases
		what = "containers"
		// CRI-O takes --id; a bare ID after the subcommand works too.
		switch {
		case len(operands) == 2 && id == "":
			id = operands[1]
		case len(operands) > 2 || (len(operands) == 2 && id != ""):
			fmt.Fprintf(env.Stderr, "crio status: unexpected argument %q\n", operands[len(operands)-1])
			return ExitUsage
		}
		if id == "" {
			fmt.Fprintln(env.Stderr, "crio status containers: give the container's ID (--id ID)")
			return ExitUsage
		}
		path = httpapi.ContainersPath + url.PathEscape(id)
	default:
		fmt.Fprintf(env.Stderr, "crio status: unknown subcommand %q (want info, config or containers)\n", what)
		return ExitUsage
	}
	if id != "" && what != "containers" {
		fmt.Fprintln(env.Stderr, "crio status: --id goes with 'crio status containers'")
		return ExitUsage
	}
	sock := strFlag(fs, "socket")
	if sock == "" {
		sock = defaultSocket(g)
	}
	body, err := getOverSocket(env.Context, sock, path)
	if err != nil {
		fmt.Fprintf(env.Stderr, "crio status: %v\n", err)
		return ExitError
	}
	if what == "config" {
		env.Stdout.Write(body)
		return ExitOK
	}
	if what == "containers" {
		var ci httpapi.ContainerInfo
		if err := json.Unmarshal(body, &ci); err != nil {
			fmt.Fprintf(env.Stderr, "crio status: decode %s: %v\n", path, err)
			return ExitError
		}
		writeContainerInfo(env.Stdout, ci)
		return ExitOK
	}
	var info httpapi.Info
	if err := json.Unmarshal(body, &info); err != nil {
		fmt.Fprintf(env.Stderr, "crio status: decode %s: %v\n", path, err)
		return ExitError
	}
	writeInfo(env.Stdout, info)
	return ExitOK
}

// defaultSocket finds the socket the way the daemon would: --listen, else
// the configuration's listen (an invalid configuration falls back to the
// default rather than blocking a status query).
func defaultSocket(g *Global) string {
	if f, ok := g.FlagFor("crio.api.listen"); ok {
		if s, ok := f.Value.(string); ok && s != "" {
			return s
		}
	}
	if res, err := config.Load(g.Sources); err == nil && res.Config.API.Listen != "" {
		return res.Config.API.Listen
	}
	return config.Default().API.Listen
}

func getOverSocket(ctx context.Context, socket, path string) ([]byte, error) {
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://crio"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query daemon on %s: %w", socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

func writeInfo(w io.Writer, info httpapi.Info) {
	fmt.Fprintf(w, "cgroup driver: %s\n", info.CgroupDriver)
	fmt.Fprintf(w, "storage driver: %s\n", info.StorageDriver)
	fmt.Fprintf(w, "storage root: %s\n", info.StorageRoot)
	if info.StorageImage != "" {
		fmt.Fprintf(w, "storage image: %s\n", info.StorageImage)
	}
	for _, m := range []struct {
		name string
		ids  []httpapi.IDMap
	}{{"UID", info.DefaultIDMappings.UIDs}, {"GID", info.DefaultIDMappings.GIDs}} {
		fmt.Fprintf(w, "default %s mappings (format <container>:<host>:<size>):", m.name)
		if len(m.ids) == 0 {
			fmt.Fprint(w, " none")
		}
		fmt.Fprintln(w)
		for _, id := range m.ids {
			fmt.Fprintf(w, "  %d:%d:%d\n", id.ContainerID, id.HostID, id.Size)
		}
	}
}

// writeContainerInfo prints a container as CRI-O's `crio status
// containers` does, one "key: value" line each and the maps indented
// below their key; map keys sorted so that scripts see a stable order.
func writeContainerInfo(w io.Writer, c httpapi.ContainerInfo) {
	fmt.Fprintf(w, "name: %s\n", c.Name)
	fmt.Fprintf(w, "pid: %d\n", c.Pid)
	fmt.Fprintf(w, "image: %s\n", c.Image)
	fmt.Fprintf(w, "image ref: %s\n", c.ImageRef)
	fmt.Fprintf(w, "created: %v\n", time.Unix(0, c.CreatedTime))
	for _, m := range []struct {
		title string
		kv    map[string]string
	}{{"labels", c.Labels}, {"annotations", c.Annotations}, {"CRI-O annotations", c.CrioAnnotations}} {
		fmt.Fprintf(w, "%s:\n", m.title)
		for _, k := range slices.Sorted(maps.Keys(m.kv)) {
			fmt.Fprintf(w, "  %s: %s\n", k, m.kv[k])
		}
	}
	fmt.Fprintf(w, "log path: %s\n", c.LogPath)
	fmt.Fprintf(w, "root: %s\n", c.Root)
	fmt.Fprintf(w, "sandbox: %s\n", c.Sandbox)
	fmt.Fprintf(w, "ips: %s\n", strings.Join(c.IPs, ", "))
}

// cmdCompletion prints the completion script of a shell (default bash).
func cmdCompletion(args []string, env Env) int {
	fs := subFlags("completion", env)
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	shell := clispec.Shells[0]
	switch fs.NArg() {
	case 0:
	case 1:
		shell = fs.Arg(0)
	default:
		fmt.Fprintf(env.Stderr, "crio completion: unexpected argument %q\n", fs.Arg(1))
		return ExitUsage
	}
	script, err := clispec.Script(shell)
	if err != nil {
		fmt.Fprintf(env.Stderr, "crio completion: %v\n", err)
		return ExitUsage
	}
	fmt.Fprint(env.Stdout, script)
	return ExitOK
}

func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	return ExitUsage
}

// runDaemon loads the configuration and runs the daemon until a signal.
func runDaemon(g *Global, env Env) int {
	res, err := config.Load(g.Sources)
	if err != nil {
		fmt.Fprintln(env.Stderr, "crio: invalid configuration, not starting:")
		printConfigError(env.Stderr, err)
		return ExitError
	}
	var level slog.LevelVar
	lvl, err := logging.ParseLevel(res.Config.Runtime.LogLevel)
	if err != nil {
		fmt.Fprintf(env.Stderr, "crio: crio.runtime.log_level: %v\n", err)
		return ExitError
	}
	level.Set(lvl)
	log := logging.New(env.Stderr, &level)
	slog.SetDefault(log)
	for _, w := range res.Warnings {
		log.Warn(w)
	}
	log.Info("configuration loaded", "files", res.Files)

	err = daemon.Run(env.Context, daemon.Options{
		Result:  res,
		Sources: g.Sources,
		Level:   &level,
		Logger:  log,
		Build:   env.Build,
		Profile: g.Profile, ProfilePort: g.ProfilePort,
	})
	if err != nil {
		log.Error("crio failed", "error", err)
		return ExitError
	}
	return ExitOK
}
