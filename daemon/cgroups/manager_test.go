package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckManager(t *testing.T) {
	booted := t.TempDir()
	notBooted := filepath.Join(t.TempDir(), "missing")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		manager, runDir string
		want            string // "" = accepted
	}{
		{"cgroupfs", notBooted, ""},
		{"systemd", booted, ""},
		{"systemd", notBooted, `needs systemd as PID 1`},
		{"systemd", file, `needs systemd as PID 1`},
		{"openrc", booted, "unknown"},
	} {
		err := checkManager(tc.manager, tc.runDir)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("checkManager(%q, %s) = %v, want %q", tc.manager, tc.runDir, err, tc.want)
		}
	}
}
