package metrics

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches and parses the endpoint with Prometheus' text parser.
func scrape(t *testing.T, client *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return fams
}

// value returns the value of the series of fam with exactly labels (a
// histogram's count), 0 when there is none: a vec without series is not
// exported at all. Checks expect non-zero values, so a wrong name fails.
func value(t *testing.T, fams map[string]*dto.MetricFamily, fam string, labels map[string]string) float64 {
	t.Helper()
	f := fams[fam]
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

func serve(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Host = "127.0.0.1"
	s, err := Serve(opts)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestServeNamesAndCounts(t *testing.T) {
	s := serve(t, Options{})
	url := "http://" + s.listeners[0].Addr().String() + Path
	before := scrape(t, http.DefaultClient, url)
	opsBefore := value(t, before, "container_runtime_crio_operations_total", map[string]string{"operation": "TestOp"})

	Operation("TestOp", "OK", time.Millisecond)
	Operation("TestOp", "NotFound", time.Millisecond)
	ContainerOOMKilled("k8s_test_pod_ns_uid_0")
	PullBytes("application/vnd.oci.image.layer.v1.tar+gzip", 2<<20, 1234)
	PullFailed("MANIFEST_UNKNOWN")
	NetworkSetup(ActionCNIAdd, time.Now())

	after := scrape(t, http.DefaultClient, url)
	for _, c := range []struct {
		fam    string
		labels map[string]string
		want   float64
	}{
		{"container_runtime_crio_operations_total", map[string]string{"operation": "TestOp"}, opsBefore + 2},
		{"container_runtime_crio_operations_errors_total", map[string]string{"operation": "TestOp", "error": "NotFound"}, 1},
		{"container_runtime_crio_operations_latency_seconds_total", map[string]string{"operation": "TestOp"}, 2},
		{"container_runtime_crio_containers_oom_count_total", map[string]string{"name": "k8s_test_pod_ns_uid_0"}, 1},
		{"container_runtime_crio_image_pulls_bytes_total", map[string]string{"mediatype": "application/vnd.oci.image.layer.v1.tar+gzip", "size": "10485760"}, 1234},
		{"container_runtime_crio_image_pulls_failure_total", map[string]string{"error": "MANIFEST_UNKNOWN"}, 1},
		{"container_runtime_crio_network_setup_seconds", map[string]string{"action": "ADD"}, 1},
	} {
		if got := value(t, after, c.fam, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.fam, c.labels, got, c.want)
		}
	}
	if value(t, after, "container_runtime_crio_containers_oom_total", nil) < 1 {
		t.Error("containers_oom_total did not move")
	}
	for _, fam := range []string{"go_goroutines", "process_open_fds"} {
		if _, ok := after[fam]; !ok {
			t.Errorf("%s missing: the Go and process collectors belong to the default set", fam)
		}
	}
	// Errors are counted by gRPC code, never for a success.
	if got := value(t, after, "container_runtime_crio_operations_errors_total", map[string]string{"operation": "TestOp", "error": "OK"}); got != 0 {
		t.Errorf("an OK call counted as an error: %v", got)
	}
}

func TestCollectorsTrim(t *testing.T) {
	// CRI-O's spellings with either prefix are accepted.
	Operation("TrimOp", "OK", 0) // a vec without series is not exported
	s := serve(t, Options{Collectors: []string{"operations_total", "crio_image_pulls_success_total", "container_runtime_crio_containers_oom_total"}})
	fams := scrape(t, http.DefaultClient, "http://"+s.listeners[0].Addr().String()+Path)
	for _, want := range []string{
		"container_runtime_crio_operations_total",
		"container_runtime_crio_image_pulls_success_total",
		"container_runtime_crio_containers_oom_total",
	} {
		if _, ok := fams[want]; !ok {
			t.Errorf("%s missing", want)
		}
	}
	for name := range fams {
		switch name {
		case "container_runtime_crio_operations_total", "container_runtime_crio_image_pulls_success_total", "container_runtime_crio_containers_oom_total":
		default:
			t.Errorf("%s exported although metrics_collectors does not name it", name)
		}
	}
	if _, err := Serve(Options{Host: "127.0.0.1", Collectors: []string{"operations_totl"}}); err == nil ||
		!strings.Contains(err.Error(), `unknown collector "operations_totl"`) {
		t.Errorf("unknown collector: err = %v", err)
	}
	// CRI-O's collectors that crio omits are skipped, not fatal: a
	// migrated crio.conf lists them.
	reg, err := Registry([]string{"crio_resources_stalled_at_stage", "operations", "processes_defunct"}, nil)
	if err != nil {
		t.Fatalf("CRI-O's omitted collectors refused: %v", err)
	}
	got, err := reg.Gather()
	if err != nil || len(got) != 1 || got[0].GetName() != "container_runtime_crio_processes_defunct" {
		t.Errorf("omitted collectors: %v %v", got, err)
	}
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	s := serve(t, Options{Cert: certFile, Key: keyFile})
	url := "https://" + s.listeners[0].Addr().String() + Path
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	fams := scrape(t, client, url)
	if _, ok := fams["container_runtime_crio_image_pulls_success_total"]; !ok {
		t.Error("TLS scrape lacks container_runtime_crio_image_pulls_success_total")
	}
	// Plain HTTP on the TLS port gets no metrics.
	if resp, err := http.Get("http://" + s.listeners[0].Addr().String() + Path); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP served on the TLS endpoint")
		}
	}
	// Only one half of the pair is refused at start.
	if _, err := Serve(Options{Host: "127.0.0.1", Cert: certFile}); err == nil {
		t.Error("metrics_cert without metrics_key accepted")
	}
}

func TestServeSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	serve(t, Options{Socket: sock})
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	fams := scrape(t, client, "http://crio"+Path)
	if _, ok := fams["container_runtime_crio_image_pulls_success_total"]; !ok {
		t.Error("socket scrape lacks container_runtime_crio_image_pulls_success_total")
	}
}

func TestSizeLabel(t *testing.T) {
	for size, want := range map[int64]string{1: "1024", 1 << 20: "1048576", (1 << 20) + 1: "10485760", 11 << 30: "+Inf", -1: "1024"} {
		if got := sizeLabel(size); got != want {
			t.Errorf("sizeLabel(%d) = %s, want %s", size, got, want)
		}
	}
}

func TestCountDefunct(t *testing.T) {
	root := t.TempDir()
	for pid, stat := range map[string]string{
		"1":    "1 (init) S 0 1",
		"42":   "42 (a) b) Z 1 42",
		"43":   "43 (sleep) Z 1 43",
		"self": "x (y) Z",
	} {
		os.MkdirAll(filepath.Join(root, pid), 0o755)
		os.WriteFile(filepath.Join(root, pid, "stat"), []byte(stat), 0o644)
	}
	if n := countDefunct(root); n != 2 {
		t.Errorf("countDefunct = %d, want 2", n)
	}
}

func TestThrottledCount(t *testing.T) {
	scans := 0
	c := &throttledCount{every: 10 * time.Second, scan: func() int { scans++; return scans * 10 }}
	t0 := time.Unix(1000, 0)
	for _, step := range []struct {
		at        time.Duration
		want      int
		wantScans int
	}{
		{0, 10, 1},                        // the first call scans
		{5 * time.Second, 10, 1},          // within the interval: the last count
		{10 * time.Second, 20, 2},         // the interval passed: a new scan
		{19 * time.Second, 20, 2},         //
		{-time.Hour, 30, 3},               // the clock went back: scan again
		{-time.Hour + time.Second, 30, 3}, //
	} {
		if got := c.count(t0.Add(step.at)); got != step.want || scans != step.wantScans {
			t.Errorf("at %v: count %d after %d scans, want %d after %d", step.at, got, scans, step.want, step.wantScans)
		}
	}
}

// The real /proc: a child that exited and is not waited for is counted.
func TestCountDefunctProc(t *testing.T) {
	before := countDefunct("/proc")
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	stat := fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); ; {
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && b[i+2] == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child never became a zombie: %s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Other processes on the machine may come and go meanwhile.
	if after := countDefunct("/proc"); after < 1 || after < before {
		t.Errorf("countDefunct(/proc) = %d with an unreaped child (before: %d)", after, before)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "crio metrics test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
