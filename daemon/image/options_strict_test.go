package image

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/crio-appliance/crio/daemon/config"
)

// TestDefaultTransportSchemaMatchesService: every default_transport the
// schema accepts, the service accepts, and a value the service refuses is
// refused by the schema (so `crio config validate` catches what would stop
// the daemon).
func TestDefaultTransportSchemaMatchesService(t *testing.T) {
	for _, tc := range []struct {
		value  string
		schema bool
	}{
		{"docker://", true},
		{"docker", true},
		{"oci-archive:", false},
		{"containers-storage:", false},
	} {
		dir := t.TempDir()
		f := filepath.Join(dir, "crio.conf")
		if err := os.WriteFile(f, []byte("[crio.image]\ndefault_transport = \""+tc.value+"\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := config.Load(config.Sources{ConfigFile: f, ConfigFileExplicit: true})
		if (err == nil) != tc.schema {
			t.Errorf("%q: schema accepts=%v, want %v (%v)", tc.value, err == nil, tc.schema, err)
			continue
		}
		cfg := config.Default()
		if r != nil {
			cfg = r.Config
		}
		cfg.Image.DefaultTransport = tc.value
		o := OptionsFromConfig(cfg, true)
		if err := o.normalize(); (err == nil) != tc.schema {
			t.Errorf("%q: service accepts=%v but schema accepts=%v (%v)", tc.value, err == nil, tc.schema, err)
		}
	}
}
