package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// scrapeMetrics fetches /metrics and parses it with Prometheus' text parser.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return fams
}

// series finds the series of fam with exactly labels; nil if none.
func series(fams map[string]*dto.MetricFamily, fam string, labels map[string]string) *dto.Metric {
next:
	for _, m := range fams[fam].GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		return m
	}
	return nil
}

// counter is a counter's (or gauge's) value, a histogram's sample count;
// 0 for a series that does not exist.
func counter(fams map[string]*dto.MetricFamily, fam string, labels map[string]string) float64 {
	m := series(fams, fam, labels)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// sizeBucket is CRI-O's size label of a blob of n bytes.
func sizeBucket(n int) string {
	for _, b := range []int{1 << 10, 1 << 20, 10 << 20, 50 << 20} {
		if n <= b {
			return fmt.Sprint(b)
		}
	}
	return "too big for the test"
}

// A fresh daemon with metrics on: after a pull, a pod, an OOM-killed
// container and a failed pull, each counter moved by exactly that much,
// under CRI-O's names and labels.
func TestMetricsScrape(t *testing.T) {
	port := freeTCPPort(t)
	e := startCtrDaemon(t, map[string]string{
		"50-metrics.conf": fmt.Sprintf("[crio.metrics]\nenable_metrics = true\nmetrics_port = %d\n", port),
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)

	// The pull startCtrDaemon made is this daemon's first and only one.
	var layerLen, configLen int
	e.reg.mu.Lock()
	for _, b := range e.reg.blob {
		if strings.HasPrefix(string(b), "{") {
			configLen = len(b)
		} else {
			layerLen = len(b)
		}
	}
	e.reg.mu.Unlock()
	m := scrapeMetrics(t, url)
	layerType := "application/vnd.oci.image.layer.v1.tar+gzip"
	for _, c := range []struct {
		fam    string
		labels map[string]string
		want   float64
	}{
		{"container_runtime_crio_image_pulls_success_total", nil, 1},
		{"container_runtime_crio_operations_total", map[string]string{"operation": "PullImage"}, 1},
		{"container_runtime_crio_image_pulls_bytes_total", map[string]string{"mediatype": layerType, "size": sizeBucket(layerLen)}, float64(layerLen)},
		{"container_runtime_crio_image_pulls_bytes_total", map[string]string{"mediatype": "application/vnd.oci.image.config.v1+json", "size": sizeBucket(configLen)}, float64(configLen)},
		{"container_runtime_crio_image_pulls_layer_size", nil, 1},
	} {
		if got := counter(m, c.fam, c.labels); got != c.want {
			t.Errorf("after the pull: %s%v = %v, want %v", c.fam, c.labels, got, c.want)
		}
	}
	if h := series(m, "container_runtime_crio_image_pulls_layer_size", nil); h == nil || h.Histogram.GetSampleSum() != float64(layerLen) {
		t.Errorf("image_pulls_layer_size sum: %v, want %d", h, layerLen)
	}

	// A pod and an OOM-killed container.
	podID, pod := e.pod(t, "metrics-oom", nil)
	cfg := e.ctrConfig("oom", "sh", "-c", "tail /dev/zero")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20}
	id := e.run(t, podID, pod, cfg)
	if st := e.waitExited(t, id, time.Minute); st.Reason != "OOMKilled" {
		t.Fatalf("container reason %q, want OOMKilled", st.Reason)
	}
	code, body, err := e.d.HTTPGet("/containers/" + id)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /containers/%s: %d %v", id, code, err)
	}
	var info struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(body, &info); err != nil || info.Name == "" {
		t.Fatalf("container name: %v %s", err, body)
	}

	// crio status containers, as CRI-O prints it.
	if code, out, errOut := RunCrio(t, "status", "containers", "--id", id, "--socket", e.d.Socket); code != 0 ||
		!strings.HasPrefix(out, "name: "+info.Name+"\n") || !strings.Contains(out, "\nsandbox: "+podID+"\n") {
		t.Errorf("crio status containers --id: %d %q %q", code, out, errOut)
	}

	// A failed pull: the registry answers MANIFEST_UNKNOWN.
	_, perr := e.d.Image().PullImage(Context(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: e.reg.Host + "/it/nope:latest"}})
	if perr == nil {
		t.Fatal("pull of a missing image succeeded")
	}

	m = scrapeMetrics(t, url)
	for _, c := range []struct {
		fam    string
		labels map[string]string
		want   float64
	}{
		{"container_runtime_crio_operations_total", map[string]string{"operation": "RunPodSandbox"}, 1},
		{"container_runtime_crio_operations_total", map[string]string{"operation": "CreateContainer"}, 1},
		{"container_runtime_crio_operations_total", map[string]string{"operation": "StartContainer"}, 1},
		{"container_runtime_crio_operations_total", map[string]string{"operation": "PullImage"}, 2},
		{"container_runtime_crio_operations_latency_seconds_total", map[string]string{"operation": "RunPodSandbox"}, 1},
		{"container_runtime_crio_operations_errors_total", map[string]string{"operation": "PullImage", "error": status.Code(perr).String()}, 1},
		{"container_runtime_crio_image_pulls_success_total", nil, 1},
		{"container_runtime_crio_image_pulls_failure_total", map[string]string{"error": "MANIFEST_UNKNOWN"}, 1},
		{"container_runtime_crio_containers_oom_total", nil, 1},
		{"container_runtime_crio_containers_oom_count_total", map[string]string{"name": info.Name}, 1},
		{"container_runtime_crio_network_setup_seconds", map[string]string{"action": "ADD"}, 1},
		{"container_runtime_crio_runtime_seconds", map[string]string{"action": "create"}, 1},
		{"container_runtime_crio_runtime_seconds", map[string]string{"action": "start"}, 1},
		{"container_runtime_crio_storage_seconds", map[string]string{"action": "create_rootfs"}, 1},
		{"container_runtime_crio_storage_seconds", map[string]string{"action": "mount"}, 1},
	} {
		if got := counter(m, c.fam, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v; the family: %v", c.fam, c.labels, got, c.want, m[c.fam])
		}
	}
	for _, fam := range []string{"go_goroutines", "process_resident_memory_bytes", "container_runtime_crio_processes_defunct"} {
		if _, ok := m[fam]; !ok {
			t.Errorf("%s not exported", fam)
		}
	}
}

// Without enable_metrics nothing listens on metrics_port.
func TestMetricsDisabled(t *testing.T) {
	port := freeTCPPort(t)
	d := StartDaemon(t, Options{DropIns: map[string]string{
		"50-metrics.conf": fmt.Sprintf("[crio.metrics]\nmetrics_port = %d\n", port),
	}})
	_ = d
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Errorf("metrics port %d answers with enable_metrics = false", port)
	}
}

// metrics_cert/metrics_key serve HTTPS with that certificate, and
// metrics_collectors trims the export to what it names.
func TestMetricsTLSAndCollectors(t *testing.T) {
	dir := TempDir(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "crio-it metrics"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "metrics.crt"), filepath.Join(dir, "metrics.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freeTCPPort(t)
	StartDaemon(t, Options{Dir: dir, DropIns: map[string]string{"50-metrics.conf": fmt.Sprintf(
		"[crio.metrics]\nenable_metrics = true\nmetrics_port = %d\nmetrics_cert = %q\nmetrics_key = %q\n"+
			"metrics_collectors = [\"operations_total\", \"crio_image_pulls_success_total\"]\n",
		port, certFile, keyFile)}})

	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatalf("HTTPS scrape with the configured certificate: %v", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range fams {
		names = append(names, name)
	}
	slices.Sort(names)
	// StartDaemon's readiness check called Version, so operations_total
	// has a series.
	want := []string{"container_runtime_crio_image_pulls_success_total", "container_runtime_crio_operations_total"}
	if !slices.Equal(names, want) {
		t.Errorf("exported %v, want only %v", names, want)
	}
	if counter(fams, "container_runtime_crio_operations_total", map[string]string{"operation": "Version"}) < 1 {
		t.Error("Version calls not counted")
	}
}

// --profile serves pprof on 127.0.0.1:--profile-port and nowhere else;
// without it nothing listens there.
func TestProfileFlag(t *testing.T) {
	port := freeTCPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	StartDaemon(t, Options{Args: []string{"--profile-port", fmt.Sprint(port)}})
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("pprof listens on %s without --profile", addr)
	}

	port = freeTCPPort(t)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	StartDaemon(t, Options{Args: []string{"--profile", "--profile-port", fmt.Sprint(port)}})
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatalf("pprof with --profile: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pprof cmdline: %s", resp.Status)
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		other := net.JoinHostPort(ipn.IP.String(), fmt.Sprint(port))
		if c, err := net.DialTimeout("tcp", other, time.Second); err == nil {
			c.Close()
			t.Errorf("pprof answers on %s: loopback only", other)
		}
	}
}
