package network

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakePluginDir holds executables named like plugins. NetworkReady only
// looks them up; nothing is executed here.
func fakePluginDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNetworkReadyFollowsDirectory(t *testing.T) {
	netDir := filepath.Join(t.TempDir(), "net.d") // does not exist yet
	m := New(Options{NetworkDir: netDir, PluginDirs: []string{fakePluginDir(t, "bridge", "portmap")}})
	ctx := context.Background()
	if ok, reason, msg := m.NetworkReady(ctx); ok || reason != "NetworkPluginNotReady" || !strings.Contains(msg, "no CNI configuration") {
		t.Errorf("empty: %v %q %q", ok, reason, msg)
	}
	os.MkdirAll(netDir, 0o755)
	write(t, netDir, "00-broken.conflist", `{not json`)
	write(t, netDir, "05-missing.conflist", `{"cniVersion":"1.0.0","name":"missing","plugins":[{"type":"nope"}]}`)
	if ok, _, msg := m.NetworkReady(ctx); ok || !strings.Contains(msg, "nope") {
		t.Errorf("invalid only: %v %q", ok, msg)
	}
	write(t, netDir, "10-good.conflist", `{"cniVersion":"1.0.0","name":"good","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}`)
	if ok, _, msg := m.NetworkReady(ctx); !ok {
		t.Errorf("with a valid config: not ready: %q", msg)
	}
	if cur := m.refresh(); cur == nil || cur.list.Name != "good" {
		t.Errorf("chosen %+v", cur)
	}
	// A lexically earlier valid single-plugin .conf wins.
	write(t, netDir, "01-single.conf", `{"cniVersion":"1.0.0","name":"single","type":"bridge"}`)
	if cur := m.refresh(); cur == nil || cur.list.Name != "single" || len(cur.list.Plugins) != 1 {
		t.Errorf("chosen %+v", cur)
	}
	os.Remove(filepath.Join(netDir, "01-single.conf"))
	os.Remove(filepath.Join(netDir, "10-good.conflist"))
	if ok, _, _ := m.NetworkReady(ctx); ok {
		t.Error("still ready after the config was removed")
	}
}

func TestDefaultNetworkByName(t *testing.T) {
	netDir := t.TempDir()
	plugins := fakePluginDir(t, "bridge")
	write(t, netDir, "10-a.conflist", `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"bridge"}]}`)
	write(t, netDir, "20-b.conflist", `{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]}`)
	m := New(Options{NetworkDir: netDir, PluginDirs: []string{plugins}, DefaultNetwork: "b"})
	if cur := m.refresh(); cur == nil || cur.list.Name != "b" {
		t.Errorf("chosen %+v", cur)
	}
	m = New(Options{NetworkDir: netDir, PluginDirs: []string{plugins}, DefaultNetwork: "c"})
	if ok, _, msg := m.NetworkReady(context.Background()); ok || !strings.Contains(msg, `"c"`) {
		t.Errorf("missing default network: %v %q", ok, msg)
	}
}

func TestRuntimeConf(t *testing.T) {
	rt, err := runtimeConf(Pod{ID: "abc", Name: "web", Namespace: "ns", UID: "u1", NetNS: "/run/netns/abc",
		Ports: []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "TCP"}, {ContainerPort: 9090}}})
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]string{}
	for _, a := range rt.Args {
		args[a[0]] = a[1]
	}
	if args["K8S_POD_NAME"] != "web" || args["K8S_POD_NAMESPACE"] != "ns" || args["K8S_POD_UID"] != "u1" ||
		args["K8S_POD_INFRA_CONTAINER_ID"] != "abc" || rt.IfName != "eth0" {
		t.Errorf("runtime conf %+v", rt)
	}
	pm, _ := rt.CapabilityArgs["portMappings"].([]PortMapping)
	if len(pm) != 1 || pm[0].Protocol != "tcp" || pm[0].HostPort != 8080 {
		t.Errorf("port mappings %+v", rt.CapabilityArgs)
	}
	if _, err := runtimeConf(Pod{ID: "x", Name: "a;K8S_POD_NAMESPACE=kube-system"}); err == nil {
		t.Error("CNI_ARGS injection accepted")
	}
}
