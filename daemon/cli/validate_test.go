package cli

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nodeRoot is a node root that validates: stub runc, conmon and bridge,
// an accepting policy and one CNI network.
func nodeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range map[string]string{
		"etc/crio/crio.conf":                "",
		"usr/sbin/runc":                     "#!/bin/sh\n",
		"usr/bin/conmon":                    "#!/bin/sh\n",
		"opt/cni/bin/bridge":                "#!/bin/sh\n",
		"etc/containers/policy.json":        `{"default":[{"type":"insecureAcceptAnything"}]}`,
		"etc/cni/net.d/10-bridge.conflist":  `{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]}`,
		"etc/containers/registries.conf.d/": "",
	} {
		f := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(f, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func ignFile(t *testing.T, content string) string {
	t.Helper()
	raw := `{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/crio/crio.conf.d/50-x.conf","contents":{"source":"data:,` +
		url.PathEscape(content) + `"}}]}}`
	f := filepath.Join(t.TempDir(), "c.ign")
	if err := os.WriteFile(f, []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestValidateIgnition(t *testing.T) {
	root := nodeRoot(t)
	good := ignFile(t, "[crio.runtime]\nlog_level = \"debug\"\n")
	code, out, errOut := run(t, "config", "validate", "--ignition", good, "--root", root)
	if code != ExitOK || !strings.Contains(out, "configuration is valid") {
		t.Errorf("good config: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	bad := ignFile(t, "[crio.runtime]\nlog_levl = \"debug\"\n")
	code, _, errOut = run(t, "config", "validate", "--ignition", bad, "--root", root)
	want := `$.storage.files.0.contents (/etc/crio/crio.conf.d/50-x.conf):2: crio.runtime.log_levl: unknown key; did you mean "log_level"?`
	if code != ExitError || !strings.Contains(errOut, want) {
		t.Errorf("typo: exit %d, stderr:\n%s\nwant %s", code, errOut, want)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/crio/crio.conf.d/50-x.conf")); err == nil {
		t.Error("validate wrote under --root")
	}
	code, _, errOut = run(t, "config", "validate", "--ignition", filepath.Join(root, "nope.ign"))
	if code != ExitError || !strings.Contains(errOut, "nope.ign") {
		t.Errorf("missing config: exit %d, stderr %s", code, errOut)
	}
	notJSON := filepath.Join(t.TempDir(), "x.ign")
	os.WriteFile(notJSON, []byte("{\"ignition\":{\"version\":\"9.9.0\"}}"), 0o644)
	if code, _, errOut = run(t, "config", "validate", "--ignition", notJSON, "--root", root); code != ExitError || !strings.Contains(errOut, "version") {
		t.Errorf("unsupported version: exit %d, stderr %s", code, errOut)
	}
	if code, _, _ = run(t, "config", "--ignition", good); code != ExitUsage {
		t.Errorf("--ignition without validate: exit %d", code)
	}
}

func TestValidateWarningsExitZero(t *testing.T) {
	root := nodeRoot(t)
	os.WriteFile(filepath.Join(root, "etc/containers/policy.json"), []byte(`{"default":[{"type":"reject"}]}`), 0o644)
	empty := ignFile(t, "")
	code, _, errOut := run(t, "config", "validate", "--ignition", empty, "--root", root)
	if code != ExitOK || !strings.Contains(errOut, "warning: /etc/containers/policy.json: the policy rejects every image") {
		t.Errorf("exit %d, stderr %s", code, errOut)
	}
}

func TestValidateRegistriesFlag(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "registries.conf")
	os.WriteFile(reg, []byte("[[registry]]\nprefix = \"docker.io\"\nlocaton = \"x\"\n"), 0o644)
	t.Setenv(RegistriesConfEnv, "")
	code, _, errOut := run(t, "--registries-conf", reg, "--registries-conf-dir", filepath.Join(dir, "d"), "config", "validate")
	if code != ExitError || !strings.Contains(errOut, reg+":3: registry.locaton: unknown key") {
		t.Errorf("exit %d, stderr %s", code, errOut)
	}
}

// TestValidateRefusesWhatTheDaemonRefuses: values that would stop the
// daemon at start fail `crio config validate`, naming file, line and key.
func TestValidateRefusesWhatTheDaemonRefuses(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{"[crio.image]\ndefault_transport = \"oci-archive:\"\n", `crio.image.default_transport: invalid value "oci-archive:"; allowed: "docker://" | "docker"`},
		{"[crio.api]\nstream_idle_timeout = \"9999999999h\"\n", `crio.api.stream_idle_timeout: invalid value "9999999999h"; allowed: "" | #Duration`},
	} {
		root := nodeRoot(t)
		code, _, errOut := run(t, "config", "validate", "--ignition", ignFile(t, tc.conf), "--root", root)
		if code == ExitOK || !strings.Contains(errOut, "50-x.conf):2: "+tc.want) {
			t.Errorf("%q: exit %d, stderr %s", tc.conf, code, errOut)
		}
	}
}
