package version

import (
	"runtime"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	i := Get()
	if i.Version != Version || i.GitCommit != GitCommit {
		t.Errorf("Get() = %+v, want the link-time variables", i)
	}
	if i.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("Platform = %q", i.Platform)
	}
	if i.Linkmode != "static" && i.Linkmode != "dynamic" {
		t.Errorf("Linkmode = %q", i.Linkmode)
	}
	if i.BuildTags == nil {
		t.Error("BuildTags is nil; JSON would say null")
	}
	if s := i.String(); !strings.Contains(s, "Version:") || !strings.Contains(s, i.GoVersion) {
		t.Errorf("String() = %q", s)
	}
}

func TestBuildTagsOverride(t *testing.T) {
	old := BuildTags
	defer func() { BuildTags = old }()
	BuildTags = "a,b c"
	got := buildTags(map[string]string{"-tags": "x"})
	if strings.Join(got, "|") != "a|b|c" {
		t.Errorf("buildTags = %q", got)
	}
	BuildTags = ""
	got = buildTags(map[string]string{"-tags": "x,y"})
	if strings.Join(got, "|") != "x|y" {
		t.Errorf("buildTags = %q", got)
	}
}

func TestLinkmodeFromSettings(t *testing.T) {
	cases := []struct {
		s    map[string]string
		want string
	}{
		{map[string]string{"CGO_ENABLED": "0"}, "static"},
		{map[string]string{"CGO_ENABLED": "1"}, "dynamic"},
		{map[string]string{"CGO_ENABLED": "1", "-ldflags": `-linkmode external -extldflags "-static"`}, "static"},
	}
	for _, c := range cases {
		if got := linkmodeFromSettings(c.s); got != c.want {
			t.Errorf("linkmodeFromSettings(%v) = %q, want %q", c.s, got, c.want)
		}
	}
}
