package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// slowDelPlugin is a chained CNI plugin: ADD passes the previous result on,
// DEL writes a marker file and then sleeps, as a network plugin does when
// its datastore is unreachable.
const slowDelPlugin = `package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"time"
)

func main() {
	in, _ := io.ReadAll(os.Stdin)
	var conf struct {
		CNIVersion string          ` + "`json:\"cniVersion\"`" + `
		PrevResult json.RawMessage ` + "`json:\"prevResult\"`" + `
		DelSleep   string          ` + "`json:\"delSleep\"`" + `
		MarkerDir  string          ` + "`json:\"markerDir\"`" + `
	}
	if err := json.Unmarshal(in, &conf); err != nil {
		os.Stdout.WriteString(` + "`{\"code\":6,\"msg\":\"bad config\"}`" + `)
		os.Exit(1)
	}
	switch os.Getenv("CNI_COMMAND") {
	case "ADD":
		os.Stdout.Write(conf.PrevResult)
	case "DEL":
		os.WriteFile(filepath.Join(conf.MarkerDir, "del-"+os.Getenv("CNI_CONTAINERID")), nil, 0o644)
		d, _ := time.ParseDuration(conf.DelSleep)
		time.Sleep(d)
	case "VERSION":
		os.Stdout.WriteString(` + "`{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\"]}`" + `)
	}
}
`

// buildSlowDelPlugin compiles the plugin into dir/slowdel.
func buildSlowDelPlugin(t *testing.T, dir string) {
	t.Helper()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(slowDelPlugin), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module slowdel\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "slowdel"), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the test CNI plugin: %v\n%s", err, out)
	}
}

// p99 of durations.
func p99(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)*99+99)/100-1]
}

// Readers never wait behind a slow StopPodSandbox: while a pod's CNI DEL
// takes 8 s, ListPodSandbox, PodSandboxStatus (of that very pod and of
// another), ListContainers and ListPodSandboxStats answer at once.
func TestReadersDoNotWaitBehindSlowStop(t *testing.T) {
	RequireRoot(t)
	dir := TempDir(t)
	pluginDir := filepath.Join(dir, "cni-bin")
	markers := filepath.Join(dir, "markers")
	for _, d := range []string{pluginDir, markers, filepath.Join(dir, "cni", "net.d")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	buildSlowDelPlugin(t, pluginDir)
	n := newTestNet(t, dir)
	const delSleep = 8 * time.Second
	conflist := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}},
    {"type": "slowdel", "delSleep": %q, "markerDir": %q}
  ]
}
`, n.Name, n.Bridge, n.Subnet, n.DataDir, delSleep.String(), markers)
	if err := os.WriteFile(filepath.Join(dir, "cni", "net.d", "10-test.conflist"), []byte(conflist), 0o644); err != nil {
		t.Fatal(err)
	}
	d := StartDaemon(t, Options{Dir: dir, DropIns: map[string]string{
		"20-plugins.conf": fmt.Sprintf("[crio.network]\nplugin_dirs = [%q, \"/usr/lib/cni\", \"/opt/cni/bin\"]\n", pluginDir),
	}})
	t.Cleanup(func() { removeAllPods(d) })

	slow := runPod(t, d, podConfig("slowstop"))
	other := runPod(t, d, podConfig("bystander"))
	st, _ := podStatus(t, d, slow)
	if st.GetNetwork().GetIp() == "" {
		t.Fatalf("the chained plugin lost the pod's address: %v", st)
	}

	stopped := make(chan error, 1)
	stopStart := time.Now()
	go func() {
		_, err := d.Runtime().StopPodSandbox(Context(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: slow})
		stopped <- err
	}()
	// Measure only once the DEL is provably running.
	if !waitFor(10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(markers, "del-"+slow))
		return err == nil
	}) {
		t.Fatal("the slow CNI DEL never started")
	}

	rt, ctx := d.Runtime(), Context(t)
	calls := map[string]func() error{
		"ListPodSandbox": func() error {
			_, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			return err
		},
		"PodSandboxStatus(stopping)": func() error {
			_, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: slow})
			return err
		},
		"PodSandboxStatus(other)": func() error {
			_, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: other})
			return err
		},
		"ListContainers": func() error {
			_, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
			return err
		},
		"ListPodSandboxStats": func() error {
			_, err := rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
			return err
		},
	}
	lat := map[string][]time.Duration{}
	// Two seconds of polling, all of it inside the 8 s DEL.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		for name, call := range calls {
			start := time.Now()
			if err := call(); err != nil {
				t.Fatalf("%s during the slow stop: %v", name, err)
			}
			lat[name] = append(lat[name], time.Since(start))
		}
	}
	select {
	case err := <-stopped:
		t.Fatalf("StopPodSandbox returned before the measurements ended (%v): the DEL was not slow", err)
	default:
	}
	for name, ds := range lat {
		worst := p99(ds)
		t.Logf("%s: %d calls, p99 %v, max %v", name, len(ds), worst, maxDuration(ds))
		if maxDuration(ds) > 500*time.Millisecond {
			t.Errorf("%s took %v while a pod was stopping", name, maxDuration(ds))
		}
	}
	if err := <-stopped; err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	if took := time.Since(stopStart); took < delSleep {
		t.Errorf("StopPodSandbox took %v, less than the DEL's %v", took, delSleep)
	}
	st, _ = podStatus(t, d, slow)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("after the stop: %v", st.State)
	}
}

func maxDuration(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
