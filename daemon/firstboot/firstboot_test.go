package firstboot

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crio-appliance/crio/daemon/config"
	"github.com/crio-appliance/crio/daemon/nodecheck"
	"github.com/crio-appliance/crio/internal/testutil"
)

// node builds a root that passes the node checks (crio.conf, runtime and
// monitor stubs, a CNI network and its plugin, policy, registries) and
// has the account tables the shadow tools edit.
func node(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	testutil.WriteFile(t, root, "/etc/crio/crio.conf", "[crio.runtime]\nlog_level = \"info\"\n", 0o644)
	testutil.WriteFile(t, root, "/usr/sbin/runc", "#!/bin/sh\n", 0o755)
	testutil.WriteFile(t, root, "/usr/bin/conmon", "#!/bin/sh\n", 0o755)
	testutil.WriteFile(t, root, "/opt/cni/bin/bridge", "#!/bin/sh\n", 0o755)
	testutil.WriteFile(t, root, "/etc/containers/policy.json", `{"default":[{"type":"insecureAcceptAnything"}]}`, 0o644)
	testutil.WriteFile(t, root, "/etc/containers/registries.conf", "unqualified-search-registries = [\"docker.io\"]\n", 0o644)
	testutil.WriteFile(t, root, "/etc/cni/net.d/10-bridge.conflist", `{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]}`, 0o644)
	testutil.WriteFile(t, root, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644)
	testutil.WriteFile(t, root, "/etc/group", "root:x:0:\n", 0o644)
	testutil.WriteFile(t, root, "/etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640)
	testutil.WriteFile(t, root, "/etc/gshadow", "root:*::\n", 0o640)
	testutil.WriteFile(t, root, "/root/.keep", "", 0o644)
	testutil.WriteFile(t, root, "/lib/systemd/system/present.service", "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n", 0o644)
	return root
}

func read(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func dataURL(s string) string { return "data:," + url.PathEscape(s) }

// ign writes an Ignition config of the given sections to a file and
// returns its path.
func ign(t *testing.T, sections map[string]any) string {
	t.Helper()
	cfg := map[string]any{"ignition": map[string]any{"version": "3.4.0"}}
	for k, v := range sections {
		cfg[k] = v
	}
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "config.ign")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func boot(t *testing.T, root, config string) *Outcome {
	t.Helper()
	out, err := Run(Options{
		Root:    root,
		Locator: Locator{Platform: PlatformFile, ConfigFile: config},
		Check:   nodecheck.Options{Sources: configSources()},
		Now:     func() time.Time { return time.Unix(1700000000, 0) },
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out
}

func configSources() config.Sources {
	return config.Sources{ConfigFile: config.DefaultConfigFile, ConfigDir: config.DefaultConfigDir}
}

func wantErrs(t *testing.T, out *Outcome, want ...string) {
	t.Helper()
	got := out.Errors.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("errors do not contain %q:\n%s", w, got)
		}
	}
}

const mirrorConf = `[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:5000"
insecure = true
`

// fullConfig sets every section crio firstboot applies.
func fullConfig(t *testing.T) string {
	gz := &bytes.Buffer{}
	zw := gzip.NewWriter(gz)
	zw.Write([]byte(mirrorConf))
	zw.Close()
	dropIn := "[crio.runtime]\nlog_level = \"debug\"\n"
	sum := sha512.Sum512([]byte(dropIn))
	return ign(t, map[string]any{
		"storage": map[string]any{
			"files": []any{
				map[string]any{"path": "/etc/crio/crio.conf.d/50-fleet.conf", "mode": 0o600,
					"contents": map[string]any{"source": dataURL(dropIn), "verification": map[string]any{"hash": fmt.Sprintf("sha512-%x", sum)}}},
				map[string]any{"path": "/etc/containers/registries.conf.d/50-mirror.conf",
					"contents": map[string]any{"source": "data:;base64," + base64.StdEncoding.EncodeToString(gz.Bytes()), "compression": "gzip"}},
				map[string]any{"path": "/home/ops/notes", "user": map[string]any{"name": "ops"}, "group": map[string]any{"name": "fleet"},
					"contents": map[string]any{"source": dataURL("hello\n")}},
			},
			"directories": []any{map[string]any{"path": "/var/lib/fleet/cache", "mode": 0o750, "user": map[string]any{"id": 1234}}},
			"links":       []any{map[string]any{"path": "/etc/fleet-link", "target": "/etc/crio/crio.conf.d/50-fleet.conf"}},
		},
		"systemd": map[string]any{"units": []any{
			map[string]any{"name": "fleet.service", "enabled": true,
				"contents": "[Unit]\nDescription=fleet\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
				"dropins":  []any{map[string]any{"name": "10-env.conf", "contents": "[Service]\nEnvironment=A=1\n"}}},
			map[string]any{"name": "present.service", "enabled": true},
			map[string]any{"name": "noisy.service", "mask": true},
		}},
		"passwd": map[string]any{
			"groups": []any{map[string]any{"name": "fleet", "gid": 4321}},
			"users": []any{
				map[string]any{"name": "ops", "uid": 2000, "groups": []any{"fleet"}, "sshAuthorizedKeys": []any{"ssh-ed25519 AAAAC3Nza ops@fleet"}},
				map[string]any{"name": "root", "sshAuthorizedKeys": []any{"ssh-ed25519 AAAAC3Nzb root@fleet"}},
			},
		},
	})
}

func TestApplyEverySection(t *testing.T) {
	root := node(t)
	testutil.WriteFile(t, root, "/root/.ssh/authorized_keys", "ssh-rsa AAAA existing\n", 0o600)
	cfg := fullConfig(t)
	out := boot(t, root, cfg)
	if !out.OK() {
		t.Fatalf("errors:\n%s", out.Errors.Error())
	}
	if out.Action != ActionApplied {
		t.Fatalf("action %q", out.Action)
	}
	if got := read(t, root, "/etc/crio/crio.conf.d/50-fleet.conf"); !strings.Contains(got, `log_level = "debug"`) {
		t.Errorf("drop-in: %q", got)
	}
	if got := read(t, root, "/etc/containers/registries.conf.d/50-mirror.conf"); got != mirrorConf {
		t.Errorf("gzip file: %q", got)
	}
	mode := func(p string) (os.FileMode, uint32, uint32) {
		st, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		return st.Mode(), sys.Uid, sys.Gid
	}
	if m, _, _ := mode("/etc/crio/crio.conf.d/50-fleet.conf"); m.Perm() != 0o600 {
		t.Errorf("drop-in mode %v", m)
	}
	if m, uid, _ := mode("/var/lib/fleet/cache"); !m.IsDir() || m.Perm() != 0o750 || uid != 1234 {
		t.Errorf("directory: %v uid %d", m, uid)
	}
	if m, uid, gid := mode("/home/ops/notes"); m.Perm() != 0o644 || uid != 2000 || gid != 4321 {
		t.Errorf("ops's file: %v %d:%d", m, uid, gid)
	}
	if l, err := os.Readlink(filepath.Join(root, "/etc/fleet-link")); err != nil || l != "/etc/crio/crio.conf.d/50-fleet.conf" {
		t.Errorf("link: %q %v", l, err)
	}
	if got := read(t, root, "/etc/systemd/system/fleet.service.d/10-env.conf"); !strings.Contains(got, "A=1") {
		t.Errorf("unit drop-in: %q", got)
	}
	for _, wants := range []string{"fleet.service", "present.service"} {
		if _, err := os.Lstat(filepath.Join(root, "/etc/systemd/system/multi-user.target.wants", wants)); err != nil {
			t.Errorf("%s not enabled: %v", wants, err)
		}
	}
	if l, _ := os.Readlink(filepath.Join(root, "/etc/systemd/system/noisy.service")); l != "/dev/null" {
		t.Errorf("noisy.service not masked: %q", l)
	}
	if got := read(t, root, "/etc/passwd"); !strings.Contains(got, "ops:x:2000:") {
		t.Errorf("passwd: %q", got)
	}
	if got := read(t, root, "/etc/group"); !strings.Contains(got, "fleet:x:4321:ops") {
		t.Errorf("group: %q", got)
	}
	if got := read(t, root, "/home/ops/.ssh/authorized_keys"); got != "ssh-ed25519 AAAAC3Nza ops@fleet\n" {
		t.Errorf("ops's keys: %q", got)
	}
	if m, uid, _ := mode("/home/ops/.ssh/authorized_keys"); m.Perm() != 0o600 || uid != 2000 {
		t.Errorf("ops's keys: %v uid %d", m, uid)
	}
	if got := read(t, root, "/root/.ssh/authorized_keys"); got != "ssh-rsa AAAA existing\nssh-ed25519 AAAAC3Nzb root@fleet\n" {
		t.Errorf("root's keys: %q", got)
	}
	if strings.Join(out.Units, " ") != "fleet.service present.service" {
		t.Errorf("units to start: %q", out.Units)
	}
	rec, err := ReadRecord(root, DefaultRecord)
	if err != nil || rec == nil {
		t.Fatalf("record: %v %v", rec, err)
	}
	if rec.SHA256 != out.SHA256 || rec.Platform != PlatformFile || rec.Source != cfg || len(rec.Paths) != 5 {
		t.Errorf("record: %+v", rec)
	}
	// No temporary file is left beside what was written.
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if strings.HasPrefix(d.Name(), ".crio-firstboot") {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})

	// A later boot validates but does not apply again: an operator's
	// later edit stays.
	testutil.WriteFile(t, root, "/etc/crio/crio.conf.d/50-fleet.conf", "[crio.runtime]\nlog_level = \"warn\"\n", 0o600)
	out = boot(t, root, cfg)
	if !out.OK() || out.Action != ActionAlreadyApplied || out.Applied != nil {
		t.Fatalf("second boot: %q %v", out.Action, out.Errors)
	}
	if got := read(t, root, "/etc/crio/crio.conf.d/50-fleet.conf"); !strings.Contains(got, "warn") {
		t.Errorf("second boot re-applied the drop-in: %q", got)
	}
	// A changed config is reported, not applied.
	out = boot(t, root, ign(t, nil))
	if out.Action != ActionAlreadyApplied || !strings.Contains(strings.Join(out.Warnings, "\n"), "differs from the one applied at first boot") {
		t.Errorf("changed config: %q %q", out.Action, out.Warnings)
	}
	// And a typo'd drop-in added later still keeps crio from starting.
	testutil.WriteFile(t, root, "/etc/crio/crio.conf.d/60-typo.conf", "[crio.runtime]\nlog_levl = \"warn\"\n", 0o644)
	out = boot(t, root, cfg)
	wantErrs(t, out, "/etc/crio/crio.conf.d/60-typo.conf:2: crio.runtime.log_levl")
}

// snapshot lists every path under root with its size and mode.
func snapshot(t *testing.T, root string) string {
	var b strings.Builder
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		info, _ := d.Info()
		fmt.Fprintf(&b, "%s %v %d\n", strings.TrimPrefix(p, root), info.Mode(), info.Size())
		return nil
	})
	return b.String()
}

func TestFailsClosed(t *testing.T) {
	file := func(path, data string, extra ...string) map[string]any {
		f := map[string]any{"path": path, "contents": map[string]any{"source": dataURL(data)}}
		if len(extra) > 0 {
			f["overwrite"] = true
		}
		return f
	}
	bad := []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"crio drop-in typo", map[string]any{
			"storage": map[string]any{"files": []any{
				file("/etc/motd", "hi\n"),
				file("/etc/crio/crio.conf.d/50-fleet.conf", "[crio.runtime]\nlog_levl = \"debug\"\n"),
				file("/etc/containers/registries.conf.d/50-mirror.conf", "[[registry]]\nprefix = \"docker.io\"\n[[registry.mirror]]\nlocation = \"https://bad/\"\n"),
			}},
			"passwd":  map[string]any{"users": []any{map[string]any{"name": "gone", "shouldExist": false}}},
			"systemd": map[string]any{"units": []any{map[string]any{"name": "absent.service", "enabled": true}}},
		}, []string{
			"$.storage.files.1.contents (/etc/crio/crio.conf.d/50-fleet.conf):2: crio.runtime.log_levl: unknown key",
			"$.storage.files.2.contents (/etc/containers/registries.conf.d/50-mirror.conf):3: registry[0].mirror[0].location",
			"$.passwd.users.0.shouldExist",
			"$.systemd.units.0.enabled: absent.service is enabled but has no contents",
		}},
		{"policy, CNI, hash", map[string]any{
			"storage": map[string]any{"files": []any{
				file("/etc/motd", "hi\n"),
				file("/etc/containers/policy.json", `{"default":[{"type":"insecureAcceptAnything"}],"transportz":{}}`, "overwrite"),
				file("/etc/cni/net.d/20-x.conflist", `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"nosuchplugin"}]}`),
				map[string]any{"path": "/etc/issue", "contents": map[string]any{"source": dataURL("x"), "verification": map[string]any{"hash": fmt.Sprintf("sha512-%x", sha512.Sum512([]byte("y")))}}},
			}},
		}, []string{
			"$.storage.files.1.contents (/etc/containers/policy.json)",
			"$.storage.files.2.contents (/etc/cni/net.d/20-x.conflist)",
			"nosuchplugin",
			"$.storage.files.3.contents.verification.hash",
		}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			root := node(t)
			before := snapshot(t, root)
			out := boot(t, root, ign(t, c.config))
			wantErrs(t, out, c.want...)
			if after := snapshot(t, root); after != before {
				t.Errorf("the root changed although the config is invalid:\n%s", after)
			}
		})
	}
}

func TestUnsupportedSections(t *testing.T) {
	root := node(t)
	cfg := ign(t, map[string]any{
		"ignition":        map[string]any{"version": "3.4.0", "proxy": map[string]any{"httpProxy": "http://127.0.0.1:3128"}},
		"kernelArguments": map[string]any{"shouldExist": []any{"quiet"}},
		"storage": map[string]any{
			"disks": []any{map[string]any{"device": "/dev/vdb", "wipeTable": true}},
			"files": []any{map[string]any{"path": "/etc/a", "append": []any{map[string]any{"source": dataURL("x")}}},
				map[string]any{"path": "/etc/b", "contents": map[string]any{"source": "http://127.0.0.1/b"}}},
		},
	})
	out := boot(t, root, cfg)
	wantErrs(t, out, "$.kernelArguments", "$.storage.disks", "$.storage.files.0.append", "$.storage.files.1.contents")
	if w := strings.Join(out.Warnings, "\n"); !strings.Contains(w, "$.ignition.proxy") {
		t.Errorf("warnings: %s", w)
	}
	if _, err := os.Stat(filepath.Join(root, DefaultRecord)); err == nil {
		t.Error("a record was written for a refused config")
	}
}

// A symlink on the node cannot send a write outside the root.
func TestWritesStayInRoot(t *testing.T) {
	root := node(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "etc/escape")); err != nil {
		t.Fatal(err)
	}
	// Inside the root, the link's absolute target is root+outside.
	if err := os.MkdirAll(filepath.Join(root, outside), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := ign(t, map[string]any{"storage": map[string]any{"files": []any{
		map[string]any{"path": "/etc/escape/pwned", "contents": map[string]any{"source": dataURL("x")}},
	}}})
	out := boot(t, root, cfg)
	if !out.OK() {
		t.Fatalf("errors:\n%s", out.Errors.Error())
	}
	if _, err := os.Stat(filepath.Join(outside, "pwned")); err == nil {
		t.Fatal("a write followed a symlink out of the root")
	}
	if _, err := os.Stat(filepath.Join(root, outside, "pwned")); err != nil {
		t.Errorf("the file is not inside the root: %v", err)
	}
}

func TestIgnitionAlreadyRan(t *testing.T) {
	root := node(t)
	testutil.WriteFile(t, root, IgnitionResult, "{}", 0o644)
	out := boot(t, root, fullConfig(t))
	if !out.OK() || out.Action != ActionIgnitionRan {
		t.Fatalf("%q %v", out.Action, out.Errors)
	}
	if _, err := os.Stat(filepath.Join(root, "/etc/crio/crio.conf.d/50-fleet.conf")); err == nil {
		t.Error("applied a config Ignition already applied")
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	cmdline := filepath.Join(dir, "cmdline")
	fwcfg := filepath.Join(dir, "raw")
	os.WriteFile(fwcfg, []byte(`{"ignition":{"version":"3.0.0"}}`), 0o644)
	cases := []struct {
		cmdline, platform, path string
		data, err               bool
	}{
		{"BOOT_IMAGE=/vmlinuz root=/dev/vda", "", "", false, false},
		{"ignition.platform.id=qemu quiet", "qemu", fwcfg, true, false},
		{"ignition.platform.id=metal ignition.platform.id=qemu", "qemu", fwcfg, true, false},
		{"ignition.platform.id=file", "file", filepath.Join(dir, "none.ign"), false, false},
		{"ignition.platform.id=aws", "aws", "", false, true},
	}
	for _, c := range cases {
		os.WriteFile(cmdline, []byte(c.cmdline+"\n"), 0o644)
		src, err := Find(Locator{Cmdline: cmdline, FwCfg: fwcfg, ConfigFile: filepath.Join(dir, "none.ign")})
		if (err != nil) != c.err || src.Platform != c.platform || src.Path != c.path || (src.Data != nil) != c.data {
			t.Errorf("%q: %+v %v", c.cmdline, src, err)
		}
	}
	t.Setenv(ConfigFileEnv, fwcfg)
	if src, err := Find(Locator{Platform: PlatformFile}); err != nil || src.Path != fwcfg || src.Data == nil {
		t.Errorf("IGNITION_CONFIG_FILE: %+v %v", src, err)
	}
}

func TestSectionPatterns(t *testing.T) {
	if got := pattern("systemd.units.12.dropins.3.name"); got != "systemd.units.*.dropins.*.name" {
		t.Errorf("pattern: %q", got)
	}
	for _, p := range applied {
		if !strings.Contains(p, ".") {
			t.Errorf("%q names a whole top-level section", p)
		}
	}
}
