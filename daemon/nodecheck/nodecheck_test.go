package nodecheck

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crio-appliance/crio/daemon/config"
	"github.com/crio-appliance/crio/internal/testutil"
)

// node builds a minimal valid node root: crio.conf pointing at runc and
// conmon stubs, an accepting policy, a CNI network with a bridge plugin.
func node(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	testutil.WriteFile(t, root, "/etc/crio/crio.conf", `[crio.runtime]
log_level = "info"
`, 0o644)
	testutil.WriteFile(t, root, "/usr/sbin/runc", "#!/bin/sh\n", 0o755)
	testutil.WriteFile(t, root, "/usr/bin/conmon", "#!/bin/sh\n", 0o755)
	testutil.WriteFile(t, root, "/opt/cni/bin/bridge", "#!/bin/sh\n", 0o755)
	testutil.WriteFile(t, root, "/etc/containers/policy.json", `{"default":[{"type":"insecureAcceptAnything"}]}`, 0o644)
	testutil.WriteFile(t, root, "/etc/containers/registries.conf", "unqualified-search-registries = [\"docker.io\"]\n", 0o644)
	testutil.WriteFile(t, root, "/etc/cni/net.d/10-bridge.conflist", `{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]}`, 0o644)
	return root
}

func opts() Options {
	return Options{Sources: config.Sources{ConfigFile: config.DefaultConfigFile, ConfigDir: config.DefaultConfigDir}}
}

func check(t *testing.T, root string) *Report {
	t.Helper()
	o := opts()
	o.Root = root
	return Check(o)
}

func wantErr(t *testing.T, rep *Report, want ...string) {
	t.Helper()
	got := rep.Errors.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("errors do not contain %q:\n%s", w, got)
		}
	}
}

func TestValidNode(t *testing.T) {
	rep := check(t, node(t))
	if !rep.OK() {
		t.Fatalf("errors:\n%s", rep.Errors.Error())
	}
	if len(rep.Warnings) != 0 {
		t.Errorf("warnings: %q", rep.Warnings)
	}
}

func TestRegistries(t *testing.T) {
	root := node(t)
	testutil.WriteFile(t, root, "/etc/containers/registries.conf.d/50-m.conf", `[[registry]]
prefix = "docker.io"
blocked = true
mirorr = 1
[[registry.mirror]]
location = "https://mirror.example"
`, 0o644)
	rep := check(t, root)
	wantErr(t, rep, "/etc/containers/registries.conf.d/50-m.conf:4: registry.mirorr: unknown key")

	testutil.WriteFile(t, root, "/etc/containers/registries.conf.d/50-m.conf", `[[registry]]
prefix = "docker.io"
blocked = true
[[registry.mirror]]
location = "https://mirror.example"
`, 0o644)
	rep = check(t, root)
	wantErr(t, rep,
		`50-m.conf:1: registry[0].mirror: "docker.io" is blocked`,
		`50-m.conf:4: registry[0].mirror[0].location: "https://mirror.example": a location has no scheme`)
}

// A node without registries.conf (no containers-common) but with drop-ins
// is what the packages install; containers/image reads it fine.
func TestRegistriesWithoutMainFile(t *testing.T) {
	root := node(t)
	os.Remove(filepath.Join(root, "/etc/containers/registries.conf"))
	testutil.WriteFile(t, root, "/etc/containers/registries.conf.d/10-crio.conf", "unqualified-search-registries = [\"docker.io\"]\nshort-name-mode = \"enforcing\"\n", 0o644)
	if rep := check(t, root); !rep.OK() {
		t.Fatalf("errors:\n%s", rep.Errors.Error())
	}
	testutil.WriteFile(t, root, "/etc/containers/registries.conf.d/10-crio.conf", "short-name-mode = \"sloppy\"\n", 0o644)
	wantErr(t, check(t, root), "short-name-mode")
}

func TestRegistriesEnvPaths(t *testing.T) {
	root := node(t)
	testutil.WriteFile(t, root, "/x/reg.conf", "bogus = 1\n", 0o644)
	o := opts()
	o.Root = root
	o.RegistriesConf = "/x/reg.conf"
	wantErr(t, Check(o), "/x/reg.conf:1: bogus: unknown key")
}

func TestPolicy(t *testing.T) {
	root := node(t)
	testutil.WriteFile(t, root, "/etc/containers/policy.json", "{\n  \"default\": [{\"type\": \"insecureAcceptAnything\"}],\n  \"defualt\": []\n}\n", 0o644)
	wantErr(t, check(t, root), "/etc/containers/policy.json:3:", "defualt")

	testutil.WriteFile(t, root, "/etc/containers/policy.json", `{"default":[{"type":"reject"}]}`, 0o644)
	rep := check(t, root)
	if !rep.OK() || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "rejects every image") {
		t.Errorf("reject-all policy: errors %v warnings %q", rep.Errors, rep.Warnings)
	}
}

func TestCNIMissingPlugin(t *testing.T) {
	root := node(t)
	testutil.WriteFile(t, root, "/etc/cni/net.d/20-x.conflist", "{\"cniVersion\":\"1.0.0\",\"name\":\"x\",\n\"plugins\":[{\"type\":\"bridge\"},\n{\"type\":\"nosuchplugin\"}]}", 0o644)
	testutil.WriteFile(t, root, "/etc/cni/net.d/30-bad.conf", "{not json", 0o644)
	wantErr(t, check(t, root),
		`/etc/cni/net.d/20-x.conflist:3: plugins[1].type: plugin "nosuchplugin" not found`,
		"/etc/cni/net.d/30-bad.conf")
}

func TestHandlersAndSeccomp(t *testing.T) {
	root := node(t)
	testutil.WriteFile(t, root, "/etc/crio/crio.conf.d/10-h.conf", `[crio.runtime]
seccomp_profile = "/etc/crio/seccomp.json"
[crio.runtime.runtimes.crun]
runtime_path = "/usr/bin/crun"
`, 0o644)
	testutil.WriteFile(t, root, "/etc/crio/seccomp.json", "{]", 0o644)
	// conmon missing: the handler's monitor_path default does not resolve.
	os.Remove(filepath.Join(root, "usr/bin/conmon"))
	wantErr(t, check(t, root),
		"/etc/crio/crio.conf.d/10-h.conf:4: crio.runtime.runtimes.crun.runtime_path: /usr/bin/crun does not exist",
		`crio defaults: crio.runtime.runtimes.crun.monitor_path: "conmon" not found in PATH`,
		"/etc/crio/seccomp.json:1: not a seccomp profile")
}

// dataURL encodes data as a plain (percent-encoded) data URL.
func dataURL(data string) string { return "data:," + url.PathEscape(data) }

func ignConfig(version string, files ...map[string]any) []byte {
	c := map[string]any{"ignition": map[string]any{"version": version}, "storage": map[string]any{"files": files}}
	b, _ := json.MarshalIndent(c, "", "  ")
	return b
}

func file(path, source string, extra map[string]any) map[string]any {
	f := map[string]any{"path": path, "contents": map[string]any{"source": source}}
	for k, v := range extra {
		if k == "compression" {
			f["contents"].(map[string]any)["compression"] = v
			continue
		}
		f[k] = v
	}
	return f
}

const typo = "[crio.runtime]\nlog_levl = \"debug\"\n"

func checkIgn(t *testing.T, root string, raw []byte) *Report {
	t.Helper()
	ign, errs, _ := ParseIgnition(raw)
	if ign == nil {
		t.Fatalf("parse: %v", errs)
	}
	rep, err := CheckIgnition(ign, root, opts())
	if err != nil {
		t.Fatal(err)
	}
	rep.Errors = append(errs, rep.Errors...)
	return rep
}

func TestIgnitionVersionsAndEncodings(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(typo))
	zw.Close()
	encodings := map[string]map[string]any{
		"plain":  file("/etc/crio/crio.conf.d/50-x.conf", dataURL(typo), nil),
		"base64": file("/etc/crio/crio.conf.d/50-x.conf", "data:;base64,"+base64.StdEncoding.EncodeToString([]byte(typo)), nil),
		"gzip":   file("/etc/crio/crio.conf.d/50-x.conf", "data:;base64,"+base64.StdEncoding.EncodeToString(gz.Bytes()), map[string]any{"compression": "gzip"}),
	}
	for _, v := range []string{"3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0"} {
		for name, f := range encodings {
			if name == "gzip" && v == "3.0.0" {
				continue // compression arrived in spec 3.1
			}
			t.Run(v+"/"+name, func(t *testing.T) {
				root := node(t)
				rep := checkIgn(t, root, ignConfig(v, f))
				want := `$.storage.files.0.contents (/etc/crio/crio.conf.d/50-x.conf):2: crio.runtime.log_levl: unknown key; did you mean "log_level"?`
				if len(rep.Errors) != 1 || rep.Errors[0].String() != want {
					t.Errorf("errors:\n%s\nwant\n%s", rep.Errors.Error(), want)
				}
				// The root is never written.
				if _, err := os.Stat(filepath.Join(root, "etc/crio/crio.conf.d/50-x.conf")); err == nil {
					t.Error("the drop-in was written under the root")
				}
			})
		}
	}
}

func TestIgnitionValidConfig(t *testing.T) {
	root := node(t)
	rep := checkIgn(t, root, ignConfig("3.5.0",
		file("/etc/crio/crio.conf.d/50-x.conf", dataURL("[crio.runtime]\nlog_level = \"debug\"\n"), nil),
		file("/etc/containers/registries.conf.d/50-m.conf", dataURL("[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"mirror.local:5000\"\n"), nil),
		file("/etc/empty", "", nil),
	))
	if !rep.OK() {
		t.Fatalf("errors:\n%s", rep.Errors.Error())
	}
}

func TestIgnitionEmbeddedFiles(t *testing.T) {
	root := node(t)
	rep := checkIgn(t, root, ignConfig("3.4.0",
		file("/etc/containers/registries.conf.d/50-m.conf", dataURL("[[registry]]\nprefix = \"docker.io\"\n[[registry.mirror]]\nlocation = \"http://mirror.local\"\n"), nil),
		file("/etc/containers/policy.json", dataURL("{\n\"default\": [{\"type\": \"insecureAcceptAnything\"}],\n\"extra\": 1\n}"), map[string]any{"overwrite": true}),
		file("/etc/cni/net.d/20-x.conflist", dataURL("{\"cniVersion\":\"1.0.0\",\"name\":\"x\",\n\"plugins\":[{\"type\":\"nosuch\"}]}"), nil),
		file("/etc/remote", "https://example.com/f", nil),
	))
	wantErr(t, rep,
		`$.storage.files.0.contents (/etc/containers/registries.conf.d/50-m.conf):3: registry[0].mirror[0].location`,
		`$.storage.files.1.contents (/etc/containers/policy.json):3:`,
		`$.storage.files.2.contents (/etc/cni/net.d/20-x.conflist):2: plugins[0].type: plugin "nosuch" not found`,
		`$.storage.files.3.contents: source: https URL: remote sources are not supported`)
}

func TestIgnitionOverwrite(t *testing.T) {
	root := node(t)
	rep := checkIgn(t, root, ignConfig("3.3.0", file("/etc/containers/policy.json", dataURL(`{"default":[{"type":"reject"}]}`), nil)))
	wantErr(t, rep, "$.storage.files.0.overwrite: /etc/containers/policy.json exists on the node and overwrite is false")
}

func TestIgnitionParseErrors(t *testing.T) {
	_, errs, _ := ParseIgnition([]byte("{\"ignition\":{\"version\":\"3.3.0\"},\n\"storage\":{\"files\":[{\"path\":\"relative\"}]}}"))
	if len(errs) == 0 || !strings.Contains(errs.Error(), "$.storage.files.0.path") || !strings.Contains(errs.Error(), "line 2") {
		t.Errorf("errors: %v", errs)
	}
}

// TestIgnitionValidateAccepts: Debian's ignition-validate (spec 3.0-3.3)
// accepts the config; crio refuses its drop-in.
func TestIgnitionValidateAccepts(t *testing.T) {
	bin, err := exec.LookPath("ignition-validate")
	if err != nil {
		t.Fatalf("ignition-validate not found (apt-get install ignition): %v", err)
	}
	raw := ignConfig("3.3.0", file("/etc/crio/crio.conf.d/50-x.conf", dataURL(typo), nil))
	f := filepath.Join(t.TempDir(), "c.ign")
	if err := os.WriteFile(f, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, f).CombinedOutput(); err != nil {
		t.Fatalf("ignition-validate refuses the config: %v\n%s", err, out)
	}
	rep := checkIgn(t, node(t), raw)
	wantErr(t, rep, fmt.Sprintf("$.storage.files.0.contents (%s):2: crio.runtime.log_levl", "/etc/crio/crio.conf.d/50-x.conf"))
}
