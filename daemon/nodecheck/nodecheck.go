// Package nodecheck validates the whole runtime configuration of a node:
// crio.conf and its drop-ins, registries.conf and its drop-ins, the
// signature policy, the CNI configuration, the seccomp profile and the
// runtime handlers' binaries. It reports every problem at once, located
// compiler style (file:line: key: message) where the format has lines.
//
// Every path is resolved under Options.Root, so the same checks run on the
// live node ("/") or on a tree assembled from an Ignition config (see
// Ignition); crio firstboot reuses both.
package nodecheck

//lint:file-ignore SA1019 the check reads the deprecated registries.conf v1 and single-plugin CNI formats on purpose: they are still in use, and it says so.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/libcni"
	toml "github.com/pelletier/go-toml/v2"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"

	"github.com/crio-appliance/crio/daemon/config"
)

// Default locations, the ones containers/image uses.
const (
	DefaultRegistriesConf    = "/etc/containers/registries.conf"
	DefaultRegistriesConfDir = "/etc/containers/registries.conf.d"
	DefaultPolicy            = "/etc/containers/policy.json"
)

// Options says what to check and where.
type Options struct {
	// Root prefixes every absolute path read ("" or "/" is the live node).
	Root string
	// Sources are crio's configuration files and flags, as node paths.
	Sources config.Sources
	// RegistriesConf and RegistriesConfDir are node paths; empty means
	// the default (CONTAINERS_REGISTRIES_CONF[_DIR] is for the caller to
	// pass here).
	RegistriesConf    string
	RegistriesConfDir string
	// Display names a node path in diagnostics; nil shows it as is.
	Display func(string) string
	// PATH is the search path for handler binaries without runtime_path
	// ("" means the daemon's default).
	PATH string

	// altRoot is a second root searched for executables (the node's
	// root under an Ignition overlay).
	altRoot string
}

// Report is every finding.
type Report struct {
	Errors   config.Errors
	Warnings []string
	// Files are the node paths read.
	Files []string
	// Config is crio's configuration, nil when it did not load.
	Config *config.Config
}

// OK says whether there is no error.
func (r *Report) OK() bool { return len(r.Errors) == 0 }

type checker struct {
	opts   Options
	rep    Report
	origin map[string]string // crio's key origins, host paths
}

// Check runs every check.
func Check(opts Options) *Report {
	c := &checker{opts: opts}
	c.crio()
	c.registries()
	if cfg := c.rep.Config; cfg != nil {
		c.policy(cfg)
		c.cni(cfg)
		c.seccomp(cfg)
		c.handlers(cfg)
	}
	sortByFile(c.rep.Errors)
	return &c.rep
}

// host turns a node path into the path to open.
func (c *checker) host(p string) string {
	if c.opts.Root == "" || c.opts.Root == "/" || !filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.opts.Root, p)
}

// node turns a path under Root back into a node path.
func (c *checker) node(p string) string {
	r := c.opts.Root
	if r == "" || r == "/" {
		return p
	}
	if rel, err := filepath.Rel(r, p); err == nil && !strings.HasPrefix(rel, "..") {
		return "/" + rel
	}
	return p
}

func (c *checker) show(nodePath string) string {
	if c.opts.Display != nil {
		return c.opts.Display(nodePath)
	}
	return nodePath
}

func (c *checker) errf(file string, line int, key, format string, a ...any) {
	c.rep.Errors = append(c.rep.Errors, config.Diagnostic{File: c.show(file), Line: line, Key: key, Msg: fmt.Sprintf(format, a...)})
}

func (c *checker) warnf(file string, line int, key, format string, a ...any) {
	d := config.Diagnostic{File: c.show(file), Line: line, Key: key, Msg: fmt.Sprintf(format, a...)}
	c.rep.Warnings = append(c.rep.Warnings, d.String())
}

// crio loads crio.conf, its drop-ins and flags through the daemon's loader.
func (c *checker) crio() {
	src := c.opts.Sources
	src.ConfigFile = c.host(src.ConfigFile)
	src.ConfigDir = c.host(src.ConfigDir)
	res, err := config.Load(src)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, d := range errs {
				if !strings.HasPrefix(d.File, "flag ") {
					d.File = c.show(c.node(d.File))
				}
				c.rep.Errors = append(c.rep.Errors, d)
			}
		} else {
			c.errf(c.opts.Sources.ConfigFile, 0, "", "%v", err)
		}
		return
	}
	for _, w := range res.Warnings {
		c.rep.Warnings = append(c.rep.Warnings, c.rewrite(w))
	}
	for _, f := range res.Files {
		c.rep.Files = append(c.rep.Files, c.node(f))
	}
	c.rep.Config = res.Config
	c.origin = res.Origin
}

// keyErrf reports a problem with crio key at the file and line that set
// it, or the key's table in the handler's file, or the built-in defaults.
func (c *checker) keyErrf(key string, fallbacks []string, format string, a ...any) {
	for _, k := range append([]string{key}, fallbacks...) {
		o, ok := c.origin[k]
		if !ok {
			continue
		}
		if strings.HasPrefix(o, "flag ") {
			c.rep.Errors = append(c.rep.Errors, config.Diagnostic{File: o, Key: key, Msg: fmt.Sprintf(format, a...)})
			return
		}
		file, line := o, 0
		if i := strings.LastIndex(o, ":"); i > 0 {
			if n, err := strconv.Atoi(o[i+1:]); err == nil {
				file, line = o[:i], n
			}
		}
		c.errf(c.node(file), line, key, format, a...)
		return
	}
	c.rep.Errors = append(c.rep.Errors, config.Diagnostic{File: "crio defaults", Key: key, Msg: fmt.Sprintf(format, a...)})
}

// rewrite replaces host paths under Root in a loader message with their
// display names.
func (c *checker) rewrite(s string) string {
	r := c.opts.Root
	if r == "" || r == "/" {
		return s
	}
	i := strings.Index(s, r+"/")
	if i < 0 {
		return s
	}
	rest := s[i+len(r):]
	end := strings.IndexAny(rest, ": ")
	if end < 0 {
		end = len(rest)
	}
	return s[:i] + c.show(rest[:end]) + rest[end:]
}

// registriesFile is what a registries.conf may hold: the V2 format, the
// V1 tables and short-name aliases.
type registriesFile struct {
	Registry                       []sysregistriesv2.Registry `toml:"registry"`
	UnqualifiedSearchRegistries    []string                   `toml:"unqualified-search-registries"`
	CredentialHelpers              []string                   `toml:"credential-helpers"`
	ShortNameMode                  string                     `toml:"short-name-mode"`
	AdditionalLayerStoreAuthHelper string                     `toml:"additional-layer-store-auth-helper"`
	Aliases                        map[string]string          `toml:"aliases"`
	Registries                     *struct {
		Search   sysregistriesv2.V1TOMLregistries `toml:"search"`
		Insecure sysregistriesv2.V1TOMLregistries `toml:"insecure"`
		Block    sysregistriesv2.V1TOMLregistries `toml:"block"`
	} `toml:"registries"`
}

// registries checks registries.conf and registries.conf.d/*.conf: a strict
// decode of each file for positions, then containers/image's own parser
// on the merged set for the semantic checks.
func (c *checker) registries() {
	main := c.opts.RegistriesConf
	if main == "" {
		main = DefaultRegistriesConf
	}
	dir := c.opts.RegistriesConfDir
	if dir == "" {
		dir = DefaultRegistriesConfDir
	}
	var files []string
	if _, err := os.Stat(c.host(main)); err == nil {
		files = append(files, main)
	} else if c.opts.RegistriesConf != "" {
		c.errf(main, 0, "", "%v", errors.Unwrap(err))
	}
	entries, _ := os.ReadDir(c.host(dir))
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".conf") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	bad := false
	for _, f := range files {
		c.rep.Files = append(c.rep.Files, f)
		if !c.registriesFile(f) {
			bad = true
		}
	}
	if bad || len(files) == 0 {
		return
	}
	mainPath := c.host(main)
	if !slices.Contains(files, main) {
		// containers/image reads no main file as an empty one, but only
		// at its default path; handed an explicit path that is missing it
		// fails. Hand it an empty file instead.
		empty, err := os.CreateTemp("", "crio-validate-registries-*.conf")
		if err != nil {
			c.errf(main, 0, "", "%v", err)
			return
		}
		empty.Close()
		defer os.Remove(empty.Name())
		mainPath = empty.Name()
	}
	sysregistriesv2.InvalidateCache()
	ctx := &types.SystemContext{SystemRegistriesConfPath: mainPath, SystemRegistriesConfDirPath: c.host(dir)}
	if _, err := sysregistriesv2.TryUpdatingCache(ctx); err != nil {
		c.errf(main, 0, "", "%s", c.rewriteAll(err.Error()))
	}
	sysregistriesv2.InvalidateCache()
}

func (c *checker) rewriteAll(s string) string {
	for range 4 {
		n := c.rewrite(s)
		if n == s {
			break
		}
		s = n
	}
	return s
}

// registriesFile checks one file; false when it has errors.
func (c *checker) registriesFile(f string) bool {
	data, err := os.ReadFile(c.host(f))
	if err != nil {
		c.errf(f, 0, "", "%v", err)
		return false
	}
	var rf registriesFile
	d := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := d.Decode(&rf); err != nil {
		var sm *toml.StrictMissingError
		var de *toml.DecodeError
		switch {
		case errors.As(err, &sm):
			for _, e := range sm.Errors {
				line, _ := e.Position()
				c.errf(f, line, strings.Join(e.Key(), "."), "unknown key")
			}
		case errors.As(err, &de):
			line, _ := de.Position()
			c.errf(f, line, strings.Join(de.Key(), "."), "%s", de.Error())
		default:
			c.errf(f, 0, "", "%v", err)
		}
		return false
	}
	ok := true
	lines := bytes.Split(data, []byte("\n"))
	lineOf := func(needle string, nth int) int {
		seen := 0
		for i, l := range lines {
			if bytes.Contains(l, []byte(needle)) {
				if seen == nth {
					return i + 1
				}
				seen++
			}
		}
		return 0
	}
	prefixes := map[string]int{}
	for i, r := range rf.Registry {
		key := fmt.Sprintf("registry[%d]", i)
		p := r.Prefix
		if p == "" {
			p = r.Location
		}
		line := lineOf("[[registry]]", i)
		if p == "" {
			c.errf(f, line, key, "neither prefix nor location is set")
			ok = false
			continue
		}
		if prev, dup := prefixes[p]; dup {
			c.errf(f, line, key+".prefix", "%q is already configured at line %d", p, prev)
			ok = false
		}
		prefixes[p] = line
		if err := checkLocation(r.Location, true); err != nil {
			c.errf(f, line, key+".location", "%v", err)
			ok = false
		}
		if r.Prefix != "" {
			if err := checkLocation(strings.TrimPrefix(r.Prefix, "*."), false); err != nil {
				c.errf(f, line, key+".prefix", "%v", err)
				ok = false
			}
		}
		for j, m := range r.Mirrors {
			mk := fmt.Sprintf("%s.mirror[%d]", key, j)
			ml := lineOf("[[registry.mirror]]", countBefore(rf.Registry, i)+j)
			if ml == 0 {
				ml = line
			}
			if m.Location == "" {
				c.errf(f, ml, mk+".location", "mirror has no location")
				ok = false
			} else if err := checkLocation(m.Location, false); err != nil {
				c.errf(f, ml, mk+".location", "%v", err)
				ok = false
			}
			if m.PullFromMirror != "" && !slices.Contains([]string{"all", "digest-only", "tag-only"}, m.PullFromMirror) {
				c.errf(f, ml, mk+".pull-from-mirror", "%q: want all, digest-only or tag-only", m.PullFromMirror)
				ok = false
			}
		}
		if r.Blocked && len(r.Mirrors) > 0 {
			c.errf(f, line, key+".mirror", "%q is blocked: its mirrors are never used", p)
			ok = false
		}
	}
	if rf.ShortNameMode != "" && !slices.Contains([]string{"disabled", "permissive", "enforcing"}, rf.ShortNameMode) {
		c.errf(f, lineOf("short-name-mode", 0), "short-name-mode", "%q: want disabled, permissive or enforcing", rf.ShortNameMode)
		ok = false
	}
	return ok
}

// countBefore is how many mirrors the registries before i have.
func countBefore(rs []sysregistriesv2.Registry, i int) int {
	n := 0
	for _, r := range rs[:i] {
		n += len(r.Mirrors)
	}
	return n
}

// checkLocation rejects what containers/image would: a scheme, spaces,
// and (for mirrors) an empty value.
func checkLocation(loc string, allowEmpty bool) error {
	if loc == "" {
		if allowEmpty {
			return nil
		}
		return errors.New("empty location")
	}
	if strings.Contains(loc, "://") {
		return fmt.Errorf("%q: a location has no scheme (drop %q)", loc, loc[:strings.Index(loc, "://")+3])
	}
	if strings.ContainsAny(loc, " \t") {
		return fmt.Errorf("%q: contains whitespace", loc)
	}
	return nil
}

// policy decodes the signature policy strictly.
func (c *checker) policy(cfg *config.Config) {
	p := cfg.Image.SignaturePolicy
	if p == "" {
		p = DefaultPolicy
	}
	data, err := os.ReadFile(c.host(p))
	if errors.Is(err, fs.ErrNotExist) && cfg.Image.SignaturePolicy == "" {
		c.errf(p, 0, "", "no signature policy: image pulls will fail")
		return
	}
	if err != nil {
		c.keyErrf("crio.image.signature_policy", nil, "%s: %v", p, errors.Unwrap(err))
		return
	}
	c.rep.Files = append(c.rep.Files, p)
	pol, err := signature.NewPolicyFromBytes(data)
	if err != nil {
		c.errf(p, jsonLine(data, err), "", "%v", err)
		return
	}
	if rejectsAll(pol) {
		c.warnf(p, 0, "", "the policy rejects every image: no scope accepts anything")
	}
}

// jsonLine finds a line for a JSON error with an offset, else 0.
func jsonLine(data []byte, err error) int {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n")) + 1
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return bytes.Count(data[:min(int(te.Offset), len(data))], []byte("\n")) + 1
	}
	// Unknown fields: find the quoted name.
	msg := err.Error()
	if i := strings.Index(msg, `Unknown key "`); i >= 0 {
		name := msg[i+len(`Unknown key "`):]
		if j := strings.Index(name, `"`); j >= 0 {
			if k := bytes.Index(data, []byte(`"`+name[:j]+`"`)); k >= 0 {
				return bytes.Count(data[:k], []byte("\n")) + 1
			}
		}
	}
	return 0
}

func rejectsAll(p *signature.Policy) bool {
	accepts := func(reqs signature.PolicyRequirements) bool {
		for _, r := range reqs {
			b, err := json.Marshal(r)
			if err != nil || !bytes.Contains(b, []byte(`"type":"reject"`)) {
				return true
			}
		}
		return false
	}
	if accepts(p.Default) {
		return false
	}
	for _, scopes := range p.Transports {
		for _, reqs := range scopes {
			if accepts(reqs) {
				return false
			}
		}
	}
	return true
}

var cniExtensions = []string{".conflist", ".conf", ".json"}

// cni parses every file in network_dir and finds every plugin.
func (c *checker) cni(cfg *config.Config) {
	dir := cfg.Network.NetworkDir
	entries, err := os.ReadDir(c.host(dir))
	if errors.Is(err, fs.ErrNotExist) {
		c.warnf(dir, 0, "crio.network.network_dir", "does not exist: pods cannot start until a CNI configuration is installed")
		return
	}
	if err != nil {
		c.errf(dir, 0, "crio.network.network_dir", "%v", err)
		return
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() || !slices.Contains(cniExtensions, filepath.Ext(e.Name())) {
			continue
		}
		n++
		c.cniFile(filepath.Join(dir, e.Name()), cfg.Network.PluginDirs)
	}
	if n == 0 {
		c.warnf(dir, 0, "crio.network.network_dir", "no CNI configuration: pods cannot start until one is installed")
	}
}

func (c *checker) cniFile(f string, pluginDirs []string) {
	c.rep.Files = append(c.rep.Files, f)
	data, err := os.ReadFile(c.host(f))
	if err != nil {
		c.errf(f, 0, "", "%v", err)
		return
	}
	var list *libcni.NetworkConfigList
	if filepath.Ext(f) == ".conflist" {
		list, err = libcni.ConfListFromBytes(data)
	} else {
		var conf *libcni.PluginConfig
		conf, err = libcni.ConfFromBytes(data)
		if err == nil {
			list, err = libcni.ConfListFromConf(conf)
		}
	}
	if err != nil {
		c.errf(f, jsonLine(data, err), "", "%v", err)
		return
	}
	if list.Name == "" {
		c.errf(f, 0, "name", "the network has no name")
	}
	if len(list.Plugins) == 0 {
		c.errf(f, 0, "plugins", "the network has no plugins")
	}
	for i, p := range list.Plugins {
		if p.Network == nil || p.Network.Type == "" {
			c.errf(f, 0, fmt.Sprintf("plugins[%d]", i), "plugin without a type")
			continue
		}
		if !c.findIn(p.Network.Type, pluginDirs) {
			line := 0
			if k := bytes.Index(data, []byte(`"`+p.Network.Type+`"`)); k >= 0 {
				line = bytes.Count(data[:k], []byte("\n")) + 1
			}
			c.errf(f, line, fmt.Sprintf("plugins[%d].type", i), "plugin %q not found in %s", p.Network.Type, strings.Join(pluginDirs, ", "))
		}
	}
}

// findIn says whether name is an executable file in one of dirs.
func (c *checker) findIn(name string, dirs []string) bool {
	for _, d := range dirs {
		if c.exe(filepath.Join(d, name)) {
			return true
		}
	}
	return false
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// seccomp parses the profile crio will load (the embedded default needs
// no check: the build tests it).
func (c *checker) seccomp(cfg *config.Config) {
	p := cfg.Runtime.SeccompProfile
	if p == "" {
		return
	}
	c.rep.Files = append(c.rep.Files, p)
	data, err := os.ReadFile(c.host(p))
	if err != nil {
		c.keyErrf("crio.runtime.seccomp_profile", nil, "%s: %v", p, errors.Unwrap(err))
		return
	}
	var prof struct {
		DefaultAction string            `json:"defaultAction"`
		Syscalls      []json.RawMessage `json:"syscalls"`
	}
	if err := json.Unmarshal(data, &prof); err != nil {
		c.errf(p, jsonLine(data, err), "", "not a seccomp profile: %v", err)
		return
	}
	if prof.DefaultAction == "" {
		c.errf(p, 0, "defaultAction", "missing")
	}
}

// DefaultPATH is the search path of the daemon under systemd.
const DefaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// handlers checks every runtime handler's runtime and monitor binary,
// resolved as the daemon does (exec.LookPath of runtime_path or the
// handler name; monitor_path or conmon).
func (c *checker) handlers(cfg *config.Config) {
	names := make([]string, 0, len(cfg.Runtime.Runtimes))
	for n := range cfg.Runtime.Runtimes {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		h := cfg.Runtime.Runtimes[n]
		bin := h.RuntimePath
		if bin == "" {
			bin = n
		}
		if msg := c.lookPath(bin); msg != "" {
			c.keyErrf("crio.runtime.runtimes."+n+".runtime_path", nil, "%s", msg)
		}
		mon := h.MonitorPath
		if mon == "" {
			mon = "conmon"
		}
		if msg := c.lookPath(mon); msg != "" {
			c.keyErrf("crio.runtime.runtimes."+n+".monitor_path", nil, "%s", msg)
		}
	}
}

// lookPath returns "" when bin resolves to an executable under Root.
func (c *checker) lookPath(bin string) string {
	if strings.Contains(bin, "/") {
		if c.exe(bin) {
			return ""
		}
		if _, err := os.Stat(c.host(bin)); err != nil {
			return fmt.Sprintf("%s does not exist", bin)
		}
		return fmt.Sprintf("%s is not an executable file", bin)
	}
	path := c.opts.PATH
	if path == "" {
		path = DefaultPATH
	}
	if c.findIn(bin, filepath.SplitList(path)) {
		return ""
	}
	return fmt.Sprintf("%q not found in PATH (%s)", bin, path)
}

// exe says whether the node path p is an executable file, under Root or
// the alternative root.
func (c *checker) exe(p string) bool {
	if executable(c.host(p)) {
		return true
	}
	return c.opts.altRoot != "" && executable(filepath.Join(c.opts.altRoot, p))
}

// sortByFile orders diagnostics by line within each file, keeping files in
// the order their first diagnostic came.
func sortByFile(errs config.Errors) {
	rank := map[string]int{}
	for _, d := range errs {
		if _, ok := rank[d.File]; !ok {
			rank[d.File] = len(rank)
		}
	}
	slices.SortStableFunc(errs, func(a, b config.Diagnostic) int {
		if rank[a.File] != rank[b.File] {
			return rank[a.File] - rank[b.File]
		}
		return a.Line - b.Line
	})
}
