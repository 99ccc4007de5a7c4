package daemon

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func startDaemon(t *testing.T, opts Options) *Daemon {
	t.Helper()
	d, _ := newTestDaemon(t, opts)
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop(context.Background()) })
	return d
}

func TestMetricsDisabledNoListener(t *testing.T) {
	res := testResult(t)
	port := freePort(t)
	res.Config.Metrics.MetricsPort = int64(port)
	res.Config.Metrics.MetricsSocket = filepath.Join(filepath.Dir(res.Config.API.Listen), "metrics.sock")
	startDaemon(t, Options{Result: res}) // enable_metrics stays false, its default
	if listening("127.0.0.1:" + strconv.Itoa(port)) {
		t.Errorf("metrics port %d answers with enable_metrics = false", port)
	}
	if _, err := os.Stat(res.Config.Metrics.MetricsSocket); err == nil {
		t.Error("metrics_socket created with enable_metrics = false")
	}
}

func TestMetricsEnabledCountsRPCs(t *testing.T) {
	res := testResult(t)
	port := freePort(t)
	res.Config.Metrics.EnableMetrics = true
	res.Config.Metrics.MetricsPort = int64(port)
	startDaemon(t, Options{Result: res})
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"

	versions := func() float64 {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fams["container_runtime_crio_operations_total"].GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetName() == "operation" && m.GetLabel()[0].GetValue() == "Version" {
				return m.GetCounter().GetValue()
			}
		}
		return 0
	}
	before := versions()
	cli := criClient(t, res.Config.API.Listen)
	for range 3 {
		if _, err := cli.Version(context.Background(), &runtimeapi.VersionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := versions(); got != before+3 {
		t.Errorf("operations_total{operation=\"Version\"} = %v after 3 calls, want %v", got, before+3)
	}
}

func TestProfileLoopbackOnly(t *testing.T) {
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	startDaemon(t, Options{Result: testResult(t), ProfilePort: port})
	if listening(addr) {
		t.Fatalf("pprof answers on %s without --profile", addr)
	}

	port = freePort(t)
	addr = "127.0.0.1:" + strconv.Itoa(port)
	startDaemon(t, Options{Result: testResult(t), Profile: true, ProfilePort: port})
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatalf("pprof with --profile: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("pprof index: %s", resp.Status)
	}
	// Not on any other address of this host.
	addrs, _ := net.InterfaceAddrs()
	checked := 0
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		checked++
		if other := net.JoinHostPort(ipn.IP.String(), strconv.Itoa(port)); listening(other) {
			t.Errorf("pprof answers on %s: it must listen on loopback only", other)
		}
	}
	if checked == 0 {
		t.Log("no non-loopback address on this host; only the loopback half is checked")
	}
}
