package image

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// testRegistry is a docker-registry (distribution) process owned by one
// test, on a free loopback port, logging every request to a file.
type testRegistry struct {
	Host     string // 127.0.0.1:port
	user     string
	password string
	logPath  string
}

// registryOpts configure startRegistry.
type registryOpts struct {
	user, password string // enable htpasswd auth
}

func requireIntegration(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("integration test: needs root (overlay storage)")
	}
	if _, err := exec.LookPath("docker-registry"); err != nil {
		t.Skip("integration test: docker-registry not installed (apt-get install docker-registry)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("integration test: /bin/busybox missing (apt-get install busybox-static)")
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startRegistry(t testing.TB, o registryOpts) *testRegistry {
	t.Helper()
	requireIntegration(t)
	dir := t.TempDir()
	port := freePort(t)
	r := &testRegistry{
		Host:     fmt.Sprintf("127.0.0.1:%d", port),
		user:     o.user,
		password: o.password,
		logPath:  filepath.Join(dir, "registry.log"),
	}
	auth := ""
	if o.user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htp := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htp, []byte(o.user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: crio-test\n    path: %s\n", htp)
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "data"), r.Host, auth)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/docker-registry", "serve", cfgPath)
	// The registry reads any REGISTRY_* variable as configuration.
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting docker-registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + r.Host + "/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(r.logPath)
			t.Fatalf("registry on %s not ready: %v\n%s", r.Host, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// do sends a request with the registry's credentials.
func (r *testRegistry) do(method, url, contentType string, body []byte) (*http.Response, error) {
	if !strings.HasPrefix(url, "http") {
		url = "http://" + r.Host + url
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if r.user != "" {
		req.SetBasicAuth(r.user, r.password)
	}
	return http.DefaultClient.Do(req)
}

// blobGETs counts the GET requests for blobs of repo in the access log.
func (r *testRegistry) blobGETs(t *testing.T, repo string) map[string]int {
	t.Helper()
	// The access log is written when a response completes; give the last
	// one a moment.
	time.Sleep(200 * time.Millisecond)
	data, err := os.ReadFile(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`"GET /v2/` + regexp.QuoteMeta(repo) + `/blobs/(sha256:[0-9a-f]{64}) HTTP/1.1" 200`)
	out := map[string]int{}
	for _, m := range re.FindAllStringSubmatch(string(data), -1) {
		out[m[1]]++
	}
	return out
}

// mark returns the current end of the log, for requestsSince.
func (r *testRegistry) mark(t *testing.T) int {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	fi, err := os.Stat(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Size())
}

// requestsSince counts access-log lines for paths under /v2/<repo>/
// written after mark.
func (r *testRegistry) requestsSince(t *testing.T, mark int, repo string) int {
	t.Helper()
	return strings.Count(r.logSince(t, mark), " /v2/"+repo+"/")
}

// manifestGETsSince counts the GETs of repo's manifests written to the
// access log after mark.
func (r *testRegistry) manifestGETsSince(t *testing.T, mark int, repo string) int {
	t.Helper()
	return strings.Count(r.logSince(t, mark), `"GET /v2/`+repo+`/manifests/`)
}

// logSince returns the access log written after mark, once the last
// response has had a moment to be logged.
func (r *testRegistry) logSince(t *testing.T, mark int) string {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	data, err := os.ReadFile(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(data[mark:])
}
