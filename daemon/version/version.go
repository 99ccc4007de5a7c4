// Package version holds the build identity of the crio binary. Version,
// GitCommit and BuildTags are set at link time:
//
//	go build -ldflags "-X github.com/crio-appliance/crio/daemon/version.Version=1.2.3 \
//	  -X github.com/crio-appliance/crio/daemon/version.GitCommit=$(git rev-parse HEAD)"
//
// Everything else is read from the binary itself, so that it cannot drift
// from what was actually built.
package version

import (
	"debug/elf"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set with -ldflags -X. They are variables, not constants, for that reason.
var (
	Version   = "0.1.0-dev"
	GitCommit = "unknown"
	// BuildTags overrides the tags recorded in the build info (comma or
	// space separated). Left empty, the tags come from debug.ReadBuildInfo.
	BuildTags = ""
)

// Info describes the running binary. The JSON names follow `crio version
// --json` of CRI-O.
type Info struct {
	Version   string   `json:"version"`
	GitCommit string   `json:"gitCommit"`
	GoVersion string   `json:"goVersion"`
	Compiler  string   `json:"compiler"`
	Platform  string   `json:"platform"`
	Linkmode  string   `json:"linkmode"`
	BuildTags []string `json:"buildTags"`
}

// Get collects the Info of the running binary.
func Get() Info {
	settings := buildSettings()
	return Info{
		Version:   Version,
		GitCommit: GitCommit,
		GoVersion: runtime.Version(),
		Compiler:  runtime.Compiler,
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		Linkmode:  linkmode(settings),
		BuildTags: buildTags(settings),
	}
}

// String renders the Info as aligned "Key: value" lines.
func (i Info) String() string {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "%-10s %s\n", k+":", v) }
	row("Version", i.Version)
	row("GitCommit", i.GitCommit)
	row("GoVersion", i.GoVersion)
	row("Compiler", i.Compiler)
	row("Platform", i.Platform)
	row("Linkmode", i.Linkmode)
	row("BuildTags", strings.Join(i.BuildTags, ", "))
	return b.String()
}

func buildSettings() map[string]string {
	m := map[string]string{}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return m
	}
	for _, s := range bi.Settings {
		m[s.Key] = s.Value
	}
	return m
}

func buildTags(settings map[string]string) []string {
	raw := BuildTags
	if raw == "" {
		raw = settings["-tags"]
	}
	tags := strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == ' ' })
	if tags == nil {
		tags = []string{}
	}
	return tags
}

// linkmode says "static" or "dynamic". The ELF header of the running binary
// is the ground truth (a dynamic executable has a PT_INTERP segment, whatever
// flags built it); the build settings are the fallback when the executable
// cannot be read.
func linkmode(settings map[string]string) string {
	if f, err := elf.Open("/proc/self/exe"); err == nil {
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				return "dynamic"
			}
		}
		return "static"
	}
	return linkmodeFromSettings(settings)
}

func linkmodeFromSettings(settings map[string]string) string {
	if settings["CGO_ENABLED"] == "0" {
		return "static"
	}
	ld := settings["-ldflags"]
	if strings.Contains(ld, "-extldflags") && strings.Contains(ld, "-static") {
		return "static"
	}
	return "dynamic"
}
