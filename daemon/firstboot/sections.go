package firstboot

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	igntypes "github.com/coreos/ignition/v2/config/v3_6_experimental/types"

	"github.com/crio-appliance/crio/daemon/config"
)

// applied are the fields crio firstboot writes to the node, as JSON paths
// with array indexes written "*". A field outside this list that a config
// sets is an error naming its path: a node must not come up believing a
// disk was partitioned or a kernel argument set when nothing did it.
var applied = []string{
	"ignition.version",
	"storage.files.*.path", "storage.files.*.overwrite", "storage.files.*.mode",
	"storage.files.*.user", "storage.files.*.group",
	"storage.files.*.contents.source", "storage.files.*.contents.compression",
	"storage.files.*.contents.verification.hash",
	"storage.directories.*.path", "storage.directories.*.overwrite", "storage.directories.*.mode",
	"storage.directories.*.user", "storage.directories.*.group",
	"storage.links.*.path", "storage.links.*.overwrite", "storage.links.*.hard", "storage.links.*.target",
	"storage.links.*.user", "storage.links.*.group",
	"systemd.units.*.name", "systemd.units.*.contents", "systemd.units.*.enabled", "systemd.units.*.mask",
	"systemd.units.*.dropins.*.name", "systemd.units.*.dropins.*.contents",
	"passwd.users.*.name", "passwd.users.*.sshAuthorizedKeys", "passwd.users.*.passwordHash",
	"passwd.users.*.uid", "passwd.users.*.gecos", "passwd.users.*.homeDir", "passwd.users.*.noCreateHome",
	"passwd.users.*.primaryGroup", "passwd.users.*.groups", "passwd.users.*.shell", "passwd.users.*.system",
	"passwd.users.*.noUserGroup", "passwd.users.*.noLogInit", "passwd.users.*.shouldExist",
	"passwd.groups.*.name", "passwd.groups.*.gid", "passwd.groups.*.passwordHash", "passwd.groups.*.system",
	"passwd.groups.*.shouldExist",
}

// fetchOnly are sections that only tune how Ignition fetches remote
// resources. crio firstboot fetches none (remote sources are errors), so
// they change nothing; they are reported as warnings, not skipped silently.
var fetchOnly = []string{"ignition.proxy", "ignition.security", "ignition.timeouts"}

var index = regexp.MustCompile(`\.[0-9]+(\.|$)`)

// pattern turns "storage.files.3.path" into "storage.files.*.path".
func pattern(path string) string {
	for {
		p := index.ReplaceAllString(path, ".*$1")
		if p == path {
			return p
		}
		path = p
	}
}

// unsupported walks the config as JSON and returns an error for every
// set field crio firstboot does not apply, and a warning for every set
// fetch-only section.
func unsupported(cfg igntypes.Config) (config.Errors, []string) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return config.Errors{{File: "$", Msg: fmt.Sprintf("re-encoding the config: %v", err)}}, nil
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return config.Errors{{File: "$", Msg: fmt.Sprintf("re-encoding the config: %v", err)}}, nil
	}
	var errs config.Errors
	var warns []string
	var walk func(v any, path string)
	walk = func(v any, path string) {
		if !hasValue(v) {
			return
		}
		pat := pattern(path)
		if contains(applied, pat) {
			return
		}
		if contains(fetchOnly, pat) {
			warns = append(warns, fmt.Sprintf("$.%s: only tunes fetching remote resources; crio firstboot fetches none, so it has no effect", path))
			return
		}
		if !prefixOfAny(applied, pat) {
			errs = append(errs, config.Diagnostic{File: "$." + path, Msg: "crio firstboot does not apply this section (it needs Ignition in the initramfs); remove it or boot a node image that runs Ignition"})
			return
		}
		switch t := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(t[k], path+"."+k)
			}
		case []any:
			for i, e := range t {
				walk(e, fmt.Sprintf("%s.%d", path, i))
			}
		}
	}
	for _, top := range []string{"ignition", "kernelArguments", "passwd", "storage", "systemd"} {
		if m, ok := tree.(map[string]any); ok {
			walk(m[top], top)
		}
	}
	return errs, warns
}

// hasValue says whether v holds any scalar: the encoder keeps empty
// structs, which set nothing.
func hasValue(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case map[string]any:
		for _, e := range t {
			if hasValue(e) {
				return true
			}
		}
		return false
	case []any:
		return len(t) > 0
	}
	return true
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func prefixOfAny(list []string, s string) bool {
	for _, e := range list {
		if strings.HasPrefix(e, s+".") {
			return true
		}
	}
	return false
}
