package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/crio-appliance/crio/daemon/cli/clispec"
	"github.com/crio-appliance/crio/daemon/config"
	"github.com/crio-appliance/crio/daemon/httpapi"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(args, Env{Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestParseGlobalOnlySetFlags(t *testing.T) {
	g, rest, err := ParseGlobal([]string{
		"-c", "/x/crio.conf", "--config-dir", "/x/d",
		"-l", "debug", "--root=/r", "--runroot", "/rr", "--listen", "/s.sock",
		"--default-runtime", "crun", "--cgroup-manager", "cgroupfs",
		"--cni-config-dir", "/cni", "--cni-plugin-dir", "/p1", "--cni-plugin-dir", "/p2,/p3",
		"--pause-image", "pause:1", "--signature-policy", "/pol.json",
		"config", "--origin",
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rest, []string{"config", "--origin"}) {
		t.Errorf("rest = %q", rest)
	}
	s := g.Sources
	if s.ConfigFile != "/x/crio.conf" || !s.ConfigFileExplicit || s.ConfigDir != "/x/d" {
		t.Errorf("sources = %+v", s)
	}
	want := map[string]any{
		"crio.runtime.log_level":       "debug",
		"crio.root":                    "/r",
		"crio.runroot":                 "/rr",
		"crio.api.listen":              "/s.sock",
		"crio.runtime.default_runtime": "crun",
		"crio.runtime.cgroup_manager":  "cgroupfs",
		"crio.network.network_dir":     "/cni",
		"crio.network.plugin_dirs":     []string{"/p1", "/p2", "/p3"},
		"crio.image.pause_image":       "pause:1",
		"crio.image.signature_policy":  "/pol.json",
	}
	got := map[string]any{}
	for _, f := range s.Flags {
		got[f.Key] = f.Value
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flags =\n%v\nwant\n%v", got, want)
	}
	names := map[string]string{}
	for _, f := range s.Flags {
		names[f.Key] = f.Name
	}
	if names["crio.runtime.log_level"] != "-l" || names["crio.root"] != "--root" {
		t.Errorf("flag names as typed: %v", names)
	}
}

func TestParseGlobalDefaults(t *testing.T) {
	g, rest, err := ParseGlobal(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 0 || len(g.Sources.Flags) != 0 {
		t.Errorf("rest %q flags %v", rest, g.Sources.Flags)
	}
	want := config.Sources{ConfigFile: config.DefaultConfigFile, ConfigDir: config.DefaultConfigDir}
	if !reflect.DeepEqual(g.Sources, want) {
		t.Errorf("sources = %+v", g.Sources)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, _ := run(t, args...)
		if code != 0 {
			t.Errorf("%v: exit %d", args, code)
		}
		for _, s := range []string{"--config-dir", "-d,", "--cni-plugin-dir", "config validate", "status", "completion"} {
			if !strings.Contains(out, s) {
				t.Errorf("%v: help lacks %q", args, s)
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag"}, {"frobnicate"}, {"config", "validat"}, {"status", "nope"}, {"version", "x"}} {
		if code, _, errOut := run(t, args...); code != ExitUsage || errOut == "" {
			t.Errorf("%v: exit %d stderr %q, want %d with a message", args, code, errOut, ExitUsage)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != 0 || !strings.Contains(out, "Version:") || !strings.Contains(out, "Linkmode:") {
		t.Errorf("version: %d %q", code, out)
	}
	code, out, _ = run(t, "version", "--json")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 {
		t.Fatalf("version --json: %d %v %q", code, err, out)
	}
	for _, k := range []string{"version", "gitCommit", "goVersion", "platform", "linkmode", "buildTags"} {
		if _, ok := v[k]; !ok {
			t.Errorf("version --json lacks %q", k)
		}
	}
}

// emptyConfig writes an empty main file and drop-in directory so tests do
// not depend on the host's /etc/crio.
func emptyConfig(t *testing.T) []string {
	dir := t.TempDir()
	conf := filepath.Join(dir, "crio.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "crio.conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{"-c", conf, "-d", filepath.Join(dir, "crio.conf.d")}
}

func TestConfigCommands(t *testing.T) {
	base := emptyConfig(t)
	if code, _, errOut := run(t, append(base, "config", "validate")...); code != 0 {
		t.Errorf("config validate on an empty file: exit %d: %s", code, errOut)
	}
	if code, out, _ := run(t, "config", "--default"); code != 0 || out != config.DefaultTOML() {
		t.Errorf("config --default: exit %d", code)
	}
	if code, _, errOut := run(t, append(base, "config", "--origin")...); code != 0 {
		t.Errorf("config --origin: exit %d: %s", code, errOut)
	}
}

func TestStatus(t *testing.T) {
	dir, err := os.MkdirTemp("", "cli")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "crio.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Root = "/srv/root"
	srv := &http.Server{Handler: httpapi.New(httpapi.Options{Config: func() *config.Result {
		return &config.Result{Config: cfg}
	}})}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	code, out, errOut := run(t, "status", "--socket", sock)
	if code != 0 || !strings.Contains(out, "storage root: /srv/root") || !strings.Contains(out, "cgroup driver: cgroupfs") {
		t.Errorf("status: %d %q %q", code, out, errOut)
	}
	// The operand may come before or after the flag; --listen is the fallback.
	if code, _, errOut := run(t, "status", "info", "--socket", sock); code != 0 {
		t.Errorf("status info --socket: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, "--listen", sock, "status", "config"); code != 0 {
		t.Errorf("--listen status config: %d %s", code, errOut)
	}
	code, _, errOut = run(t, "status", "--socket", filepath.Join(dir, "none.sock"))
	if code != ExitError || !strings.Contains(errOut, "none.sock") {
		t.Errorf("status without daemon: %d %q", code, errOut)
	}
}

type fakeContainers map[string]*httpapi.ContainerInfo

func (f fakeContainers) ContainerInfo(_ context.Context, id string) (*httpapi.ContainerInfo, bool) {
	c, ok := f[id]
	return c, ok
}

func TestStatusContainers(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "crio.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctrs := fakeContainers{"abc": {
		Name: "k8s_app_pod_ns_uid_0", Pid: 42, Image: "docker.io/library/busybox:latest", ImageRef: "sha256:1234",
		CreatedTime: 1_700_000_000_000_000_000, Labels: map[string]string{"b": "2", "a": "1"},
		Annotations: map[string]string{"x": "y"}, CrioAnnotations: map[string]string{},
		LogPath: "/var/log/pods/app.log", Root: "/var/lib/containers/storage/overlay/m/merged",
		Sandbox: "podid", IPs: []string{"10.88.0.5", "fd00::5"},
	}}
	srv := &http.Server{Handler: httpapi.New(httpapi.Options{
		Config:     func() *config.Result { return &config.Result{Config: config.Default()} },
		Containers: ctrs,
	})}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	// CRI-O's --id, and the ID as an operand; its aliases too.
	for _, args := range [][]string{
		{"status", "containers", "--id", "abc", "--socket", sock},
		{"status", "--socket", sock, "containers", "abc"},
		{"status", "c", "-i", "abc", "--socket", sock},
	} {
		code, out, errOut := run(t, args...)
		if code != 0 {
			t.Fatalf("%v: %d %s", args, code, errOut)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		want := []string{
			"name: k8s_app_pod_ns_uid_0", "pid: 42", "image: docker.io/library/busybox:latest", "image ref: sha256:1234",
		}
		if !reflect.DeepEqual(lines[:4], want) {
			t.Errorf("%v: head %q, want %q", args, lines[:4], want)
		}
		for _, w := range []string{"labels:\n  a: 1\n  b: 2\nannotations:\n  x: y\nCRI-O annotations:\nlog path: /var/log/pods/app.log\n",
			"sandbox: podid\nips: 10.88.0.5, fd00::5\n"} {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", args, w, out)
			}
		}
	}
	if code, _, errOut := run(t, "status", "containers", "--id", "nope", "--socket", sock); code != ExitError || !strings.Contains(errOut, "not found") {
		t.Errorf("unknown container: %d %q", code, errOut)
	}
	if code, _, _ := run(t, "status", "containers", "--socket", sock); code != ExitUsage {
		t.Errorf("no ID: exit %d, want usage", code)
	}
	if code, _, _ := run(t, "status", "info", "--id", "abc", "--socket", sock); code != ExitUsage {
		t.Errorf("--id with info: exit %d, want usage", code)
	}
}

// CRI-O's metrics flags override [crio.metrics] with typed values.
func TestMetricsFlags(t *testing.T) {
	dir := t.TempDir()
	g, _, err := ParseGlobal([]string{"-c", filepath.Join(dir, "none.conf"), "-d", dir,
		"--enable-metrics", "--metrics-port", "9537", "--metrics-host", "0.0.0.0",
		"--metrics-collectors", "operations_total,go"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	g.Sources.ConfigFileExplicit = false // the file need not exist
	res, err := config.Load(g.Sources)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Config.Metrics
	if !m.EnableMetrics || m.MetricsPort != 9537 || m.MetricsHost != "0.0.0.0" || !reflect.DeepEqual(m.MetricsCollectors, []string{"operations_total", "go"}) {
		t.Errorf("metrics from flags: %+v", m)
	}
	if res.Origin["crio.metrics.metrics_port"] != "flag --metrics-port" {
		t.Errorf("origin of metrics_port: %q", res.Origin["crio.metrics.metrics_port"])
	}
	if _, _, err := ParseGlobal([]string{"--metrics-port", "x"}, io.Discard); err == nil {
		t.Error("--metrics-port x accepted")
	}
}

func TestProfileFlags(t *testing.T) {
	g, rest, err := ParseGlobal([]string{"--profile", "--profile-port", "7070", "status"}, io.Discard)
	if err != nil || !g.Profile || g.ProfilePort != 7070 || len(rest) != 1 {
		t.Fatalf("ParseGlobal: %+v %v %v", g, rest, err)
	}
	if len(g.Sources.Flags) != 0 {
		t.Errorf("profile flags became configuration overrides: %v", g.Sources.Flags)
	}
	g, _, err = ParseGlobal(nil, io.Discard)
	if err != nil || g.Profile {
		t.Errorf("profiling on by default: %+v %v", g, err)
	}
	if _, _, err := ParseGlobal([]string{"--profile-port", "70000"}, io.Discard); err == nil {
		t.Error("--profile-port 70000 accepted")
	}
}

func TestDaemonRefusesInvalidConfig(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.conf")
	code, _, errOut := run(t, "-c", missing)
	if code != ExitError || !strings.Contains(errOut, missing) {
		t.Errorf("explicit missing -c: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run(t, "-c", missing, "config", "validate"); code != ExitError || !strings.Contains(errOut, missing) {
		t.Errorf("config validate with missing -c: exit %d, stderr %q", code, errOut)
	}
}

// CRI-O's --registries-conf and --registries-conf-dir are not config keys:
// they set the variables the image service reads, as scripts written for
// CRI-O (such as the benchmark harness) expect.
func TestRegistriesConfFlags(t *testing.T) {
	g, rest, err := ParseGlobal([]string{"--registries-conf", "/x/registries.conf", "--registries-conf-dir=/x/r.d", "config"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 || rest[0] != "config" {
		t.Errorf("rest = %v", rest)
	}
	want := map[string]string{RegistriesConfEnv: "/x/registries.conf", RegistriesConfDirEnv: "/x/r.d"}
	if !reflect.DeepEqual(g.Env, want) {
		t.Errorf("Env = %v, want %v", g.Env, want)
	}
	if len(g.Sources.Flags) != 0 {
		t.Errorf("registries flags became config overrides: %v", g.Sources.Flags)
	}
}

// TestCompletion runs `crio completion` in-process: each shell's script
// names every global flag and command, Bash's parses (bash -n), the default
// is Bash, and an unknown shell is a usage error.
func TestCompletion(t *testing.T) {
	code, def, _ := run(t, "completion")
	if code != ExitOK {
		t.Fatalf("completion: exit %d", code)
	}
	for _, shell := range clispec.Shells {
		code, out, errOut := run(t, "completion", shell)
		if code != ExitOK || errOut != "" {
			t.Fatalf("completion %s: exit %d, stderr %q", shell, code, errOut)
		}
		if shell == "bash" && out != def {
			t.Errorf("completion without a shell is not the bash script")
		}
		for _, f := range clispec.GlobalFlags {
			if !strings.Contains(out, f.Long) {
				t.Errorf("completion %s lacks --%s", shell, f.Long)
			}
		}
		for _, c := range clispec.Commands {
			if !strings.Contains(out, c.Name) {
				t.Errorf("completion %s lacks command %s", shell, c.Name)
			}
		}
	}
	_, bash, _ := run(t, "completion", "bash")
	f := filepath.Join(t.TempDir(), "crio")
	if err := os.WriteFile(f, []byte(bash), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", f).CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		if code, _, errOut := run(t, args...); code != ExitUsage || errOut == "" {
			t.Errorf("%v: exit %d stderr %q, want %d with a message", args, code, errOut, ExitUsage)
		}
	}
}
