package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/crio-appliance/crio/daemon/config"
)

func get(t *testing.T, h http.Handler, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Result()
}

func result(mutate func(*config.Config)) func() *config.Result {
	cfg := config.Default()
	if mutate != nil {
		mutate(cfg)
	}
	r := &config.Result{Config: cfg, Origin: map[string]string{}}
	return func() *config.Result { return r }
}

func TestInfo(t *testing.T) {
	h := New(Options{Config: result(func(c *config.Config) {
		c.Root = "/srv/storage"
		c.ImageStore = "/srv/images"
		c.StorageDriver = "vfs"
		c.Runtime.CgroupManager = "cgroupfs"
	})})
	resp := get(t, h, "/info")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"storage_driver": "vfs",
		"storage_root":   "/srv/storage",
		"storage_image":  "/srv/images",
		"cgroup_driver":  "cgroupfs",
	}
	for k, v := range want {
		if raw[k] != v {
			t.Errorf("%s = %v, want %v", k, raw[k], v)
		}
	}
	m, ok := raw["default_id_mappings"].(map[string]any)
	if !ok {
		t.Fatalf("default_id_mappings = %v", raw["default_id_mappings"])
	}
	for _, k := range []string{"uids", "gids"} {
		if l, ok := m[k].([]any); !ok || len(l) != 0 {
			t.Errorf("default_id_mappings.%s = %#v, want []", k, m[k])
		}
	}
}

func TestInfoSystemdDriver(t *testing.T) {
	h := New(Options{Config: result(func(c *config.Config) { c.Runtime.CgroupManager = "systemd" })})
	var info Info
	if err := json.NewDecoder(get(t, h, "/info").Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	if info.CgroupDriver != "systemd" {
		t.Errorf("cgroup_driver = %q", info.CgroupDriver)
	}
}

func TestConfigIsCurrent(t *testing.T) {
	// Config is re-read per request, so a reload shows.
	n := 0
	h := New(Options{Config: func() *config.Result {
		n++
		return &config.Result{Config: config.Default()}
	}})
	for range 2 {
		resp := get(t, h, "/config")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/toml") {
			t.Errorf("Content-Type %q", ct)
		}
		io.Copy(io.Discard, resp.Body)
	}
	if n != 2 {
		t.Errorf("Config called %d times, want 2", n)
	}
}

func TestContainerNotFound(t *testing.T) {
	h := New(Options{Config: result(nil)})
	resp := get(t, h, "/containers/abc123")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404", resp.StatusCode)
	}
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("404 body is not JSON: %v", err)
	}
	if !strings.Contains(body["error"], "abc123") {
		t.Errorf("error = %q", body["error"])
	}
}

type oneContainer struct{}

func (oneContainer) ContainerInfo(_ context.Context, id string) (*ContainerInfo, bool) {
	if id != "c1" {
		return nil, false
	}
	return &ContainerInfo{Name: "k8s_app", Pid: 42, Sandbox: "s1"}, true
}

func TestContainerFound(t *testing.T) {
	h := New(Options{Config: result(nil), Containers: oneContainer{}})
	resp := get(t, h, "/containers/c1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var ci ContainerInfo
	if err := json.NewDecoder(resp.Body).Decode(&ci); err != nil {
		t.Fatal(err)
	}
	if ci.Pid != 42 || ci.Sandbox != "s1" {
		t.Errorf("got %+v", ci)
	}
	if get(t, h, "/containers/c2").StatusCode != http.StatusNotFound {
		t.Error("unknown id not 404")
	}
}

func TestMethodAndPath(t *testing.T) {
	h := New(Options{Config: result(nil)})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/info", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /info: %d, want 405", rec.Code)
	}
	if get(t, h, "/nope").StatusCode != http.StatusNotFound {
		t.Error("unknown path not 404")
	}
}
