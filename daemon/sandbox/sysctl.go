package sandbox

import (
	"fmt"
	"regexp"
	"strings"
)

// sysctlNS is the namespace a sysctl belongs to; only namespaced sysctls
// can be set for one pod without changing the node.
type sysctlNS int

const (
	nsNone sysctlNS = iota
	nsNet
	nsIPC
	nsUTS
)

func (n sysctlNS) String() string {
	return [...]string{"none", "network", "IPC", "UTS"}[n]
}

// ipcSysctls are the IPC-namespaced sysctls (kernel/ipc/ipc_sysctl.c and
// mqueue); everything under fs.mqueue is namespaced too.
var ipcSysctls = map[string]bool{
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
}

// sysctlComponent is one path element; dots are allowed only in the slash
// form (net/ipv4/conf/eth0.100/forwarding), where they are not separators.
var sysctlDotted = regexp.MustCompile(`^[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*$`)
var sysctlSlashed = regexp.MustCompile(`^[a-z0-9]([-_a-z0-9]*[a-z0-9])?(/[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?)*$`)

const maxSysctlValue = 4096

// sysctl is one checked sysctl: its dotted name, /proc/sys relative path,
// value, and namespace.
type sysctl struct {
	name, path, value string
	ns                sysctlNS
}

// classifySysctl checks a key and value and finds the namespace the key
// lives in. Keys may use dots or slashes as separators, as Kubernetes
// allows. A non-namespaced key is refused: it would change the whole node.
func classifySysctl(key, value string) (sysctl, error) {
	var path, name string
	switch {
	case strings.Contains(key, "/") && sysctlSlashed.MatchString(key):
		path = key
		name = strings.ReplaceAll(key, "/", ".")
	case !strings.Contains(key, "/") && sysctlDotted.MatchString(key):
		path = strings.ReplaceAll(key, ".", "/")
		name = key
	default:
		return sysctl{}, fmt.Errorf("%q is not a valid sysctl name", key)
	}
	for _, c := range strings.Split(path, "/") {
		if c == "." || c == ".." || c == "" {
			return sysctl{}, fmt.Errorf("%q is not a valid sysctl name", key)
		}
	}
	if len(value) > maxSysctlValue || strings.ContainsAny(value, "\x00\n\r") {
		return sysctl{}, fmt.Errorf("value of %s must be one line of at most %d bytes", name, maxSysctlValue)
	}
	s := sysctl{name: name, path: path, value: value}
	switch {
	case strings.HasPrefix(name, "net."):
		s.ns = nsNet
	case ipcSysctls[name] || strings.HasPrefix(name, "fs.mqueue."):
		s.ns = nsIPC
	case name == "kernel.domainname":
		s.ns = nsUTS
	case name == "kernel.hostname":
		return sysctl{}, fmt.Errorf("%s: set the pod's hostname field instead", name)
	default:
		return sysctl{}, fmt.Errorf("%s is not namespaced: setting it for a pod would change the node", name)
	}
	return s, nil
}
