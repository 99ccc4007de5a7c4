package sandbox

import (
	"errors"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

func goodConfig() *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "web-0", Namespace: "default", Uid: "3f1c2a9e-uid", Attempt: 1},
		Hostname: "web-0",
		DnsConfig: &runtimeapi.DNSConfig{
			Servers: []string{"10.96.0.10", "fd00::a"}, Searches: []string{"default.svc.cluster.local"}, Options: []string{"ndots:5"},
		},
		PortMappings: []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "127.0.0.1"}},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "/kubepods/besteffort/pod3f1c",
			Sysctls:      map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel/shmmni": "100", "fs.mqueue.msg_max": "20"},
		},
	}
}

func TestValidateGood(t *testing.T) {
	sp, err := validate(goodConfig(), "runc", []string{"net.ipv4.ping_group_range=0 1000", "kernel.msgmax=1"}, "cgroupfs")
	if err != nil {
		t.Fatal(err)
	}
	if sp.cgroupPath != "/kubepods/besteffort/pod3f1c" || !sp.sharedPID || sp.hostNetwork {
		t.Errorf("spec %+v", sp)
	}
	if len(sp.ports) != 1 || sp.ports[0].Protocol != "udp" || sp.ports[0].HostIP != "127.0.0.1" {
		t.Errorf("ports %+v", sp.ports)
	}
	got := map[string]string{}
	for _, s := range sp.sysctls {
		got[s.path] = s.value
	}
	want := map[string]string{
		"net/ipv4/ip_unprivileged_port_start": "0", "kernel/shmmni": "100", "fs/mqueue/msg_max": "20",
		"net/ipv4/ping_group_range": "0 1000", "kernel/msgmax": "1",
	}
	if len(got) != len(want) {
		t.Errorf("sysctls %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("sysctl %s = %q, want %q", k, got[k], v)
		}
	}
}

func TestValidateHostNamespacesDropDefaults(t *testing.T) {
	cfg := goodConfig()
	cfg.Linux.Sysctls = nil
	cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_CONTAINER,
	}}
	sp, err := validate(cfg, "", []string{"net.ipv4.ping_group_range=0 1", "kernel.msgmax=1"}, "cgroupfs")
	if err != nil {
		t.Fatal(err)
	}
	if len(sp.sysctls) != 0 || len(sp.ports) != 0 || !sp.hostNetwork || !sp.hostIPC || sp.sharedPID {
		t.Errorf("host namespaces: %+v", sp)
	}
}

func TestValidateRejects(t *testing.T) {
	long := strings.Repeat("a", 300)
	cases := map[string]func(*runtimeapi.PodSandboxConfig){
		"config.metadata":                       func(c *runtimeapi.PodSandboxConfig) { c.Metadata = nil },
		"config.metadata.name":                  func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = long },
		"config.metadata.uid":                   func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Uid = "a/b" },
		"config.metadata.namespace":             func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "x\n" },
		"config.hostname":                       func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "a\x00b" },
		"config.log_directory":                  func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/sys/fs/x" },
		"config.dns_config.servers[1]":          func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Servers = []string{"1.1.1.1", "1.1.1.1 x"} },
		"config.dns_config.servers":             func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Servers = make([]string, 17) },
		"config.dns_config.searches[0]":         func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Searches = []string{"a\nb"} },
		"config.dns_config.options[0]":          func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Options = []string{""} },
		"config.port_mappings[0].protocol":      func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].Protocol = 7 },
		"config.port_mappings[0].host_port":     func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].HostPort = -1 },
		"config.port_mappings[0]":               func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0] = nil },
		"config.linux.cgroup_parent":            func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "relative" },
		"config.linux.sysctls[kernel.hostname]": func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"kernel.hostname": "x"} },
		"config.linux.sysctls[vm.swappiness]":   func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"vm.swappiness": "1"} },
		"config.linux.sysctls[net..x]":          func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"net..x": "1"} },
		"config.linux.security_context.namespace_options.pid": func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET}}
		},
		"config.linux.security_context.namespace_options.userns_options.mode": func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
				UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}}}
		},
		"config.linux.security_context.run_as_group": func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{RunAsGroup: &runtimeapi.Int64Value{Value: 1000}}
		},
		"config.annotations": func(c *runtimeapi.PodSandboxConfig) {
			c.Annotations = map[string]string{"k": strings.Repeat("v", 300<<10)}
		},
	}
	for field, edit := range cases {
		cfg := goodConfig()
		edit(cfg)
		_, err := validate(cfg, "", nil, "cgroupfs")
		var inv *errdefs.InvalidArgumentError
		if !errors.As(err, &inv) || inv.Field != field {
			t.Errorf("%s: got %v", field, err)
		}
	}
	// A group with a user is fine, also uid and gid 0.
	for _, sc := range []*runtimeapi.LinuxSandboxSecurityContext{
		{RunAsGroup: &runtimeapi.Int64Value{Value: 1000}, RunAsUser: &runtimeapi.Int64Value{Value: 1000}},
		{RunAsGroup: &runtimeapi.Int64Value{Value: 0}, RunAsUser: &runtimeapi.Int64Value{Value: 0}},
	} {
		cfg := goodConfig()
		cfg.Linux.SecurityContext = sc
		if _, err := validate(cfg, "", nil, "cgroupfs"); err != nil {
			t.Errorf("run_as_group with a user %v: %v", sc, err)
		}
	}
	cfg := goodConfig()
	cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{RunAsGroup: &runtimeapi.Int64Value{Value: -1}, RunAsUser: &runtimeapi.Int64Value{Value: 0}}
	if _, err := validate(cfg, "", nil, "cgroupfs"); err == nil {
		t.Error("negative run_as_group accepted")
	}
	if _, err := validate(nil, "", nil, "cgroupfs"); err == nil {
		t.Error("nil config accepted")
	}
	if _, err := validate(goodConfig(), "Bad Handler", nil, "cgroupfs"); err == nil {
		t.Error("bad handler accepted")
	}
}

func TestClassifySysctl(t *testing.T) {
	cases := []struct {
		key  string
		ns   sysctlNS
		path string
		ok   bool
	}{
		{"net.ipv4.tcp_syncookies", nsNet, "net/ipv4/tcp_syncookies", true},
		{"net/ipv4/conf/eth0.100/forwarding", nsNet, "net/ipv4/conf/eth0.100/forwarding", true},
		{"kernel.shm_rmid_forced", nsIPC, "kernel/shm_rmid_forced", true},
		{"kernel.sem", nsIPC, "kernel/sem", true},
		{"fs.mqueue.queues_max", nsIPC, "fs/mqueue/queues_max", true},
		{"kernel.domainname", nsUTS, "kernel/domainname", true},
		{"kernel.hostname", 0, "", false},
		{"kernel.panic", 0, "", false},
		{"fs.file-max", 0, "", false},
		{"net/../kernel/panic", 0, "", false},
		{"Net.ipv4.x", 0, "", false},
		{"", 0, "", false},
		{"net.ipv4.x;", 0, "", false},
	}
	for _, c := range cases {
		s, err := classifySysctl(c.key, "1")
		if (err == nil) != c.ok || c.ok && (s.ns != c.ns || s.path != c.path) {
			t.Errorf("%q: %+v, %v", c.key, s, err)
		}
	}
	if _, err := classifySysctl("net.ipv4.ip_forward", "1\n0"); err == nil {
		t.Error("newline in value accepted")
	}
}

func TestRenderResolvConf(t *testing.T) {
	got := string(renderResolvConf([]string{"10.0.0.10", "fd00::1"}, []string{"a.svc", "svc"}, []string{"ndots:5", "edns0"}))
	want := "# Generated by crio from the pod's DNS configuration.\nsearch a.svc svc\nnameserver 10.0.0.10\nnameserver fd00::1\noptions ndots:5 edns0\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := string(renderResolvConf([]string{"1.1.1.1"}, nil, nil)); strings.Contains(got, "search") || strings.Contains(got, "options") {
		t.Errorf("empty lists rendered: %q", got)
	}
}

func TestRenderHosts(t *testing.T) {
	got, err := renderHosts([]hostEntry{{IP: "10.199.0.5", Names: []string{"web-0"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "# Generated by crio.\n127.0.0.1\tlocalhost\n::1\t") || !strings.HasSuffix(string(got), "\n10.199.0.5\tweb-0\n") {
		t.Errorf("hosts %q", got)
	}
	for _, bad := range []hostEntry{
		{IP: "10.0.0.1\n6.6.6.6", Names: []string{"x"}},
		{IP: "10.0.0.1", Names: []string{"x\n6.6.6.6 evil"}},
		{IP: "10.0.0.1", Names: []string{""}},
	} {
		if _, err := renderHosts([]hostEntry{bad}); err == nil {
			t.Errorf("entry %+v accepted", bad)
		}
	}
}
