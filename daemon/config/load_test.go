package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"cuelang.org/go/cue"
)

// tree writes files under a fresh directory and returns its path.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func load(t *testing.T, dir string, flags ...Flag) (*Result, error) {
	t.Helper()
	return Load(Sources{ConfigFile: filepath.Join(dir, "crio.conf"), ConfigDir: filepath.Join(dir, "crio.conf.d"), Flags: flags})
}

func mustLoad(t *testing.T, dir string, flags ...Flag) *Result {
	t.Helper()
	r, err := load(t, dir, flags...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return r
}

func TestNoFilesGivesDefaults(t *testing.T) {
	r := mustLoad(t, t.TempDir())
	if !reflect.DeepEqual(r.Config, Default()) {
		t.Fatalf("config without files differs from Default():\n%+v", r.Config)
	}
	if len(r.Files) != 0 || len(r.Origin) != 0 {
		t.Fatalf("files %v origin %v, want none", r.Files, r.Origin)
	}
}

func TestMergeOrderAndPrecedence(t *testing.T) {
	dir := tree(t, map[string]string{
		"crio.conf": "[crio]\nroot = \"/srv/root\"\nstorage_option = [\"overlay.mountopt=nodev\"]\n" +
			"[crio.runtime]\nlog_level = \"debug\"\nctr_stop_timeout = 10\n" +
			"default_capabilities = [\"CHOWN\", \"KILL\"]\n",
		"crio.conf.d/20-b.conf": "[crio.runtime]\nlog_level = \"error\"\n",
		"crio.conf.d/10-a.conf": "[crio.runtime]\nlog_level = \"warn\"\ndefault_capabilities = [\"NET_RAW\"]\n" +
			"[crio]\nstorage_option = [\"overlay.skip_mount_home=true\"]\n",
		"crio.conf.d/30-c.conf.bak": "[crio.runtime]\nlog_level = \"panic\"\n",
		"crio.conf.d/README":        "not toml at all [",
		"crio.conf.d/40-dir.conf/x": "ignored: a directory named *.conf",
	})
	r := mustLoad(t, dir)
	c := r.Config
	if c.Runtime.LogLevel != "error" {
		t.Errorf("log_level = %q, want the last drop-in's \"error\"", c.Runtime.LogLevel)
	}
	if c.Root != "/srv/root" || c.Runtime.CtrStopTimeout != 10 {
		t.Errorf("keys only the main file sets were lost: root=%q ctr_stop_timeout=%d", c.Root, c.Runtime.CtrStopTimeout)
	}
	if want := []string{"NET_RAW"}; !reflect.DeepEqual(c.Runtime.DefaultCapabilities, want) {
		t.Errorf("default_capabilities = %v, want %v (arrays are replaced)", c.Runtime.DefaultCapabilities, want)
	}
	if want := []string{"overlay.mountopt=nodev", "overlay.skip_mount_home=true"}; !reflect.DeepEqual(c.StorageOptions, want) {
		t.Errorf("storage_option = %v, want %v (concatenated)", c.StorageOptions, want)
	}
	wantFiles := []string{filepath.Join(dir, "crio.conf"), filepath.Join(dir, "crio.conf.d/10-a.conf"), filepath.Join(dir, "crio.conf.d/20-b.conf")}
	if !reflect.DeepEqual(r.Files, wantFiles) {
		t.Errorf("files read = %v, want %v", r.Files, wantFiles)
	}
	if got, want := r.Origin["crio.runtime.log_level"], filepath.Join(dir, "crio.conf.d/20-b.conf")+":2"; got != want {
		t.Errorf("origin of log_level = %q, want %q", got, want)
	}

	// A flag beats every file.
	r = mustLoad(t, dir, Flag{Name: "--log-level", Key: "crio.runtime.log_level", Value: "trace"},
		Flag{Name: "--cni-plugin-dir", Key: "crio.network.plugin_dirs", Value: []string{"/usr/lib/cni"}})
	if r.Config.Runtime.LogLevel != "trace" || r.Origin["crio.runtime.log_level"] != "flag --log-level" {
		t.Errorf("flag did not win: %q from %q", r.Config.Runtime.LogLevel, r.Origin["crio.runtime.log_level"])
	}
	if !reflect.DeepEqual(r.Config.Network.PluginDirs, []string{"/usr/lib/cni"}) {
		t.Errorf("plugin_dirs = %v", r.Config.Network.PluginDirs)
	}
}

func TestRuntimeHandlers(t *testing.T) {
	dir := tree(t, map[string]string{
		"crio.conf": "[crio.runtime.runtimes.runc]\nruntime_path = \"/usr/sbin/runc\"\nmonitor_path = \"/usr/bin/conmon\"\n",
		"crio.conf.d/10-kata.conf": "[crio.runtime]\ndefault_runtime = \"kata\"\n" +
			"[crio.runtime.runtimes.kata]\nruntime_path = \"/usr/bin/kata-runtime\"\nruntime_type = \"vm\"\n",
		"crio.conf.d/20-runc.conf": "[crio.runtime.runtimes.runc]\nruntime_root = \"/run/myrunc\"\n",
	})
	r := mustLoad(t, dir)
	hs := r.Config.Runtime.Runtimes
	if len(hs) != 2 || r.Config.Runtime.DefaultRuntime != "kata" {
		t.Fatalf("handlers %v default %q, want kata beside runc", hs, r.Config.Runtime.DefaultRuntime)
	}
	if hs["kata"].RuntimeType != "vm" || hs["kata"].MonitorEnv == nil {
		t.Errorf("kata = %+v, want runtime_type vm and defaults filled", hs["kata"])
	}
	// The re-declared runc replaced the whole table: runtime_path is gone.
	if hs["runc"].RuntimeRoot != "/run/myrunc" || hs["runc"].RuntimePath != "" || hs["runc"].MonitorPath != "" {
		t.Errorf("runc = %+v, want only runtime_root from 20-runc.conf", hs["runc"])
	}
	if _, ok := r.Origin["crio.runtime.runtimes.runc.runtime_path"]; ok {
		t.Errorf("origin kept a key of the replaced handler")
	}
	var warned bool
	for _, w := range r.Warnings {
		warned = warned || strings.Contains(w, "20-runc.conf:1") && strings.Contains(w, "re-declares handler \"runc\"") && strings.Contains(w, "crio.conf:1")
	}
	if !warned {
		t.Errorf("no warning about the re-declared handler: %q", r.Warnings)
	}
}

func TestIgnoredCRIOTablesWarn(t *testing.T) {
	dir := tree(t, map[string]string{
		"crio.conf.d/10-x.conf": "[crio.nri]\nenable_nri = true\n[crio.tracing]\nenable_tracing = true\n" +
			"[crio.runtime.workloads.management]\nactivation_annotation = \"x\"\n",
	})
	r := mustLoad(t, dir)
	got := strings.Join(r.Warnings, "\n")
	for _, table := range []string{"[crio.nri]", "[crio.tracing]", "[crio.runtime.workloads]"} {
		if !strings.Contains(got, table) || !strings.Contains(got, "ignores") {
			t.Errorf("warnings %q do not name %s as ignored", got, table)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		flags []Flag
		want  []string // each line must appear in the error
	}{
		{"bad TOML syntax", map[string]string{"crio.conf.d/10-x.conf": "[crio.runtime]\nlog_level = \"info\n"},
			nil, []string{"crio.conf.d/10-x.conf:2: invalid TOML"}},
		{"unknown key in a drop-in", map[string]string{"crio.conf.d/50-x.conf": "[crio]\n\n[crio.runtime]\nlog_levl = \"debug\"\n"},
			nil, []string{"crio.conf.d/50-x.conf:4: crio.runtime.log_levl: unknown key; did you mean \"log_level\"?"}},
		{"unknown table", map[string]string{"crio.conf": "[crio.netwrk]\nnetwork_dir = \"/x\"\n"},
			nil, []string{"crio.conf:1: crio.netwrk: unknown key; did you mean \"network\"?"}},
		{"wrong type", map[string]string{"crio.conf": "[crio.runtime]\nctr_stop_timeout = \"30\"\n"},
			nil, []string{"crio.conf:2: crio.runtime.ctr_stop_timeout: wrong type: got string, want integer"}},
		{"value not allowed", map[string]string{"crio.conf": "[crio.runtime]\ncgroup_manager = \"cgroupv3\"\n"},
			nil, []string{"crio.conf:2: crio.runtime.cgroup_manager: invalid value \"cgroupv3\"; allowed: \"cgroupfs\" | \"systemd\""}},
		{"log_size_max between 0 and 8192", map[string]string{"crio.conf": "[crio.runtime]\nlog_size_max = 100\n"},
			nil, []string{"crio.conf:2: crio.runtime.log_size_max: invalid value 100"}},
		{"relative path", map[string]string{"crio.conf": "[crio]\n\nlog_dir = \"var/log\"\n"},
			nil, []string{"crio.conf:3: crio.log_dir: invalid value \"var/log\"; allowed: \"/var/log/crio/pods\" | #AbsPath"}},
		{"bad capability", map[string]string{"crio.conf": "[crio.runtime]\ndefault_capabilities = [\"CHOWN\", \"FLY\"]\n"},
			nil, []string{"crio.conf:2: crio.runtime.default_capabilities: invalid value [\"CHOWN\",\"FLY\"]"}},
		{"bad sysctl", map[string]string{"crio.conf": "[crio.runtime]\ndefault_sysctls = [\"net.ipv4.ip_forward\"]\n"},
			nil, []string{"crio.conf:2: crio.runtime.default_sysctls: invalid value"}},
		{"bad port", map[string]string{"crio.conf": "[crio.metrics]\nmetrics_port = 70000\n"},
			nil, []string{"crio.conf:2: crio.metrics.metrics_port: invalid value 70000"}},
		{"bad duration", map[string]string{"crio.conf": "[crio.image]\npull_progress_timeout = \"10 minutes\"\n"},
			nil, []string{"crio.conf:2: crio.image.pull_progress_timeout: invalid value"}},
		{"duration that overflows", map[string]string{"crio.conf": "[crio.api]\nstream_idle_timeout = \"9999999999h\"\n"},
			nil, []string{"crio.conf:2: crio.api.stream_idle_timeout: invalid value \"9999999999h\""}},
		{"transport the daemon refuses", map[string]string{"crio.conf": "[crio.image]\ndefault_transport = \"oci-archive:\"\n"},
			nil, []string{"crio.conf:2: crio.image.default_transport: invalid value \"oci-archive:\"; allowed: \"docker://\" | \"docker\""}},
		{"TLS without certificate and key", map[string]string{"crio.conf": "[crio.api]\nstream_enable_tls = true\nstream_tls_key = \"/k.pem\"\n"},
			nil, []string{"crio.conf:2: crio.api.stream_tls_cert: stream_enable_tls = true needs a certificate and a key: set crio.api.stream_tls_cert to an absolute path"}},
		{"default_runtime without its table", map[string]string{"crio.conf.d/10-x.conf": "[crio.runtime]\ndefault_runtime = \"crun\"\n"},
			nil, []string{"crio.conf.d/10-x.conf:2: crio.runtime.default_runtime: \"crun\" is not a declared runtime handler (declared: runc); add a [crio.runtime.runtimes.crun] table"}},
		{"unknown key in a handler", map[string]string{"crio.conf": "[crio.runtime.runtimes.kata]\nruntime_pth = \"/x\"\n"},
			nil, []string{"crio.conf:2: crio.runtime.runtimes.kata.runtime_pth: unknown key; did you mean \"runtime_path\"?"}},
		{"bad handler name", map[string]string{"crio.conf": "[crio.runtime.runtimes.\"my runtime\"]\nruntime_path = \"/x\"\n"},
			nil, []string{"crio.conf:1: crio.runtime.runtimes.my runtime: invalid name"}},
		{"bad flag", nil, []Flag{{Name: "--cgroup-manager", Key: "crio.runtime.cgroup_manager", Value: "nope"}},
			[]string{"flag --cgroup-manager: crio.runtime.cgroup_manager: invalid value \"nope\""}},
		{"all errors at once", map[string]string{
			"crio.conf":             "[crio.runtime]\nlog_level = \"loud\"\n",
			"crio.conf.d/10-a.conf": "[crio.api]\nlisten = \"crio.sock\"\n",
			"crio.conf.d/20-b.conf": "[crio.image]\nshort_name_mod = \"disabled\"\n",
		}, nil, []string{"crio.conf:2: crio.runtime.log_level", "10-a.conf:2: crio.api.listen", "20-b.conf:2: crio.image.short_name_mod: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tree(t, tc.files)
			_, err := load(t, dir, tc.flags...)
			if err == nil {
				t.Fatal("Load accepted a bad configuration")
			}
			var errs Errors
			if !asErrors(err, &errs) {
				t.Fatalf("error is %T, want Errors", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\ndoes not contain\n%s", err, w)
				}
			}
			if len(errs) != len(tc.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(errs), len(tc.want), err)
			}
		})
	}
}

func asErrors(err error, out *Errors) bool {
	e, ok := err.(Errors)
	*out = e
	return ok
}

func TestUnreadableAndMissingFiles(t *testing.T) {
	dir := t.TempDir()
	// An explicitly named main file must exist.
	_, err := Load(Sources{ConfigFile: filepath.Join(dir, "nope.conf"), ConfigFileExplicit: true})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "nope.conf")+": cannot read configuration file: no such file or directory") {
		t.Errorf("missing -c file: %v", err)
	}
	// The default one need not.
	if _, err := Load(Sources{ConfigFile: filepath.Join(dir, "nope.conf")}); err != nil {
		t.Errorf("missing default file: %v", err)
	}
	// A drop-in that cannot be read (here: a dangling symlink, since root
	// reads any mode) is an error naming it.
	if err := os.MkdirAll(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/target", filepath.Join(dir, "d", "10-gone.conf")); err != nil {
		t.Fatal(err)
	}
	_, err = Load(Sources{ConfigDir: filepath.Join(dir, "d")})
	if err == nil || !strings.Contains(err.Error(), "10-gone.conf: cannot read configuration file") {
		t.Errorf("dangling drop-in: %v", err)
	}
	// The main file path being a directory.
	_, err = Load(Sources{ConfigFile: dir, ConfigFileExplicit: true})
	if err == nil || !strings.Contains(err.Error(), dir+": cannot read configuration file") {
		t.Errorf("directory as main file: %v", err)
	}
}

func TestRenderedConfigLoadsBack(t *testing.T) {
	dir := tree(t, map[string]string{
		"crio.conf": "[crio]\nstorage_option = [\"overlay.mountopt=nodev\"]\n" +
			"[crio.runtime]\nlog_level = \"debug\"\ndefault_env = [\"A=\\\"quoted\\\" \\\\ back\"]\n" +
			"[crio.runtime.runtimes.kata-vm]\nruntime_type = \"vm\"\n",
	})
	r := mustLoad(t, dir)
	for _, withOrigin := range []bool{false, true} {
		out := r.TOML(withOrigin)
		if withOrigin && !strings.Contains(out, "# Set by "+filepath.Join(dir, "crio.conf")+":4.") {
			t.Errorf("rendered config lacks the origin of log_level:\n%s", out)
		}
		back := tree(t, map[string]string{"crio.conf": out})
		r2 := mustLoad(t, back)
		if !reflect.DeepEqual(r.Config, r2.Config) {
			t.Errorf("config rendered and loaded back differs:\n%+v\n%+v", r.Config, r2.Config)
		}
	}
	def := tree(t, map[string]string{"crio.conf": DefaultTOML()})
	if r := mustLoad(t, def); !reflect.DeepEqual(r.Config, Default()) {
		t.Errorf("DefaultTOML does not load back as the defaults")
	}
}

// TestSchemaMatchesGo fails when schema/crio.cue and the Go defaults
// disagree on a key or a default value.
func TestSchemaMatchesGo(t *testing.T) {
	c, err := compileSchema()
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.config.MarshalJSON()
	if err != nil {
		t.Fatalf("schema defaults are not concrete: %v", err)
	}
	var fromSchema, fromGo any
	if err := json.Unmarshal(b, &fromSchema); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(map[string]any{"crio": Default()})
	if err := json.Unmarshal(gb, &fromGo); err != nil {
		t.Fatal(err)
	}
	diffDocs(t, "", fromSchema, fromGo)

	// A handler declared with no keys gets DefaultHandler().
	hb, err := c.root.LookupPath(cue.ParsePath("#RuntimeHandler")).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var hs, hg any
	_ = json.Unmarshal(hb, &hs)
	gb, _ = json.Marshal(DefaultHandler())
	_ = json.Unmarshal(gb, &hg)
	diffDocs(t, "#RuntimeHandler", hs, hg)
}

func diffDocs(t *testing.T, path string, schema, gov any) {
	t.Helper()
	sm, sok := schema.(map[string]any)
	gm, gok := gov.(map[string]any)
	if sok && gok {
		for k, v := range sm {
			if _, ok := gm[k]; !ok {
				t.Errorf("%s.%s is in the schema but not in the Go config", path, k)
				continue
			}
			diffDocs(t, path+"."+k, v, gm[k])
		}
		for k := range gm {
			if _, ok := sm[k]; !ok {
				t.Errorf("%s.%s is in the Go config but not in the schema", path, k)
			}
		}
		return
	}
	if !reflect.DeepEqual(schema, gov) {
		t.Errorf("%s: schema default %v, Go default %v", path, schema, gov)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"log_level", "log_dir", "log_size_max", "listen"}
	for in, want := range map[string]string{"log_levl": "log_level", "lsten": "listen", "zzzzzz": ""} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// A drop-in written for CRI-O, with keys crio does not act on (some of
// them deprecated in CRI-O), loads with a warning for each such key.
func TestCRIODropInLoads(t *testing.T) {
	dir := tree(t, map[string]string{
		"crio.conf.d/10-crio.conf": `[crio.runtime]
conmon = "/usr/bin/conmon"
conmon_cgroup = "pod"
pids_limit = 4096
log_level = "debug"

[crio.runtime.runtimes.runc]
runtime_path = "/usr/sbin/runc"
platform_runtime_paths = { "linux/arm64" = "/usr/bin/runc-arm64" }

[crio.image]
registries = ["docker.io"]
`,
	})
	r := mustLoad(t, dir)
	if r.Config.Runtime.LogLevel != "debug" || r.Config.Runtime.Runtimes["runc"].RuntimePath != "/usr/sbin/runc" {
		t.Errorf("keys crio acts on were lost: %+v", r.Config.Runtime)
	}
	got := strings.Join(r.Warnings, "\n")
	for _, key := range []string{"crio.runtime.conmon ", "crio.runtime.conmon_cgroup ", "crio.runtime.pids_limit ",
		"crio.runtime.runtimes.runc.platform_runtime_paths ", "crio.image.registries "} {
		if !strings.Contains(got, key+"is a CRI-O key that crio accepts and ignores") {
			t.Errorf("no warning for %s in:\n%s", key, got)
		}
	}
	if out := r.TOML(false); strings.Contains(out, "pids_limit") {
		t.Errorf("rendered config carries an ignored key")
	}
}

// The packaged drop-in re-declares the built-in runc handler with the
// distribution's paths: that loses nothing, so it loads without a warning.
func TestPackagedDropInLoadsWithoutWarnings(t *testing.T) {
	raw, err := os.ReadFile("../../packaging/10-crio.conf.in")
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer("@SYSCONFDIR@", "/etc", "@RUNC@", "/usr/bin/runc",
		"@CONMON@", "/usr/bin/conmon", "@CNI_PLUGIN_DIR@", "/usr/lib/cni").Replace(string(raw))
	if strings.Contains(conf, "@") {
		t.Fatalf("placeholder left after substitution:\n%s", conf)
	}
	r := mustLoad(t, tree(t, map[string]string{"crio.conf.d/10-crio.conf": conf}))
	if len(r.Warnings) != 0 {
		t.Errorf("warnings: %q", r.Warnings)
	}
	runc := r.Config.Runtime.Runtimes["runc"]
	if runc.RuntimePath != "/usr/bin/runc" || runc.MonitorPath != "/usr/bin/conmon" || runc.RuntimeRoot != "/run/runc" {
		t.Errorf("runc = %+v", runc)
	}
	if r.Config.Image.SignaturePolicy != "/etc/crio/policy.json" {
		t.Errorf("signature_policy = %q", r.Config.Image.SignaturePolicy)
	}
	if got := r.Config.Network.PluginDirs; len(got) == 0 || got[0] != "/usr/lib/cni/" {
		t.Errorf("plugin_dirs = %q", got)
	}
}
