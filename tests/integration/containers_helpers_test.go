package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// testImage is an image built in Go from the host's static busybox: one
// layer with busybox and a link per applet, /etc/passwd and /etc/group.
type testImage struct {
	manifest, config []byte
	layer            []byte // gzipped tar
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

var (
	busyboxOnce  sync.Once
	busyboxLayer []byte
	busyboxDiff  string
	busyboxErr   error
)

func buildBusyboxLayer() ([]byte, string, error) {
	busyboxOnce.Do(func() {
		bb, err := os.ReadFile("/bin/busybox")
		if err != nil {
			busyboxErr = err
			return
		}
		out, err := exec.Command("/bin/busybox", "--list").Output()
		if err != nil {
			busyboxErr = fmt.Errorf("busybox --list: %w", err)
			return
		}
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		mtime := time.Unix(1700000000, 0)
		dir := func(name string, mode int64) {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: mtime})
		}
		file := func(name string, mode int64, data []byte) {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime})
			tw.Write(data)
		}
		for _, d := range []string{"bin/", "etc/", "proc/", "sys/", "dev/", "root/", "home/", "home/app/", "var/", "mnt/"} {
			dir(d, 0o755)
		}
		dir("tmp/", 0o1777)
		file("bin/busybox", 0o755, bb)
		for _, app := range strings.Fields(string(out)) {
			if app == "busybox" {
				continue
			}
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + app, Linkname: "busybox", Mode: 0o777, ModTime: mtime})
		}
		file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"))
		file("etc/group", 0o644, []byte("root:x:0:\napp:x:1000:\nextra:x:50000:app\nnogroup:x:65534:\n"))
		if err := tw.Close(); err != nil {
			busyboxErr = err
			return
		}
		busyboxDiff = sha(raw.Bytes())
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(raw.Bytes())
		zw.Close()
		busyboxLayer = gz.Bytes()
	})
	return busyboxLayer, busyboxDiff, busyboxErr
}

// imageOpts vary the image config.
type imageOpts struct {
	cmd        []string
	env        []string
	user       string
	stopSignal string
	volumes    []string
}

func newTestImage(t testing.TB, o imageOpts) *testImage {
	t.Helper()
	layer, diff, err := buildBusyboxLayer()
	if err != nil {
		t.Fatal(err)
	}
	if o.cmd == nil {
		o.cmd = []string{"sh"}
	}
	if o.env == nil {
		o.env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	vols := map[string]struct{}{}
	for _, v := range o.volumes {
		vols[v] = struct{}{}
	}
	cfg := map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Cmd": o.cmd, "Env": o.env, "User": o.user, "StopSignal": o.stopSignal, "Volumes": vols},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diff}},
	}
	cfgJSON, _ := json.Marshal(cfg)
	man := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfgJSON), "size": len(cfgJSON)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(layer), "size": len(layer)}},
	}
	manJSON, _ := json.Marshal(man)
	return &testImage{manifest: manJSON, config: cfgJSON, layer: layer}
}

// testRegistry is a minimal read-only registry (the distribution API's
// pull half) serving images from memory on 127.0.0.1.
type testRegistry struct {
	Host string
	mu   sync.Mutex
	mans map[string][]byte // "repo:tag" and "repo@digest"
	blob map[string][]byte
}

var manifestPath = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)
var blobPath = regexp.MustCompile(`^/v2/(.+)/blobs/([^/]+)$`)

func startTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &testRegistry{Host: l.Addr().String(), mans: map[string][]byte{}, blob: map[string][]byte{}}
	srv := &http.Server{Handler: r}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *testRegistry) push(repo, tag string, img *testImage) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := sha(img.manifest)
	r.mans[repo+":"+tag] = img.manifest
	r.mans[repo+"@"+d] = img.manifest
	r.blob[sha(img.config)] = img.config
	r.blob[sha(img.layer)] = img.layer
	return d
}

func (r *testRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/v2/" || req.URL.Path == "/v2" {
		w.WriteHeader(http.StatusOK)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := manifestPath.FindStringSubmatch(req.URL.Path); m != nil {
		key := m[1] + ":" + m[2]
		if strings.HasPrefix(m[2], "sha256:") {
			key = m[1] + "@" + m[2]
		}
		b, ok := r.mans[key]
		if !ok {
			http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", sha(b))
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		if req.Method != http.MethodHead {
			w.Write(b)
		}
		return
	}
	if m := blobPath.FindStringSubmatch(req.URL.Path); m != nil {
		b, ok := r.blob[m[2]]
		if !ok {
			http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Header().Set("Docker-Content-Digest", m[2])
		if req.Method != http.MethodHead {
			w.Write(b)
		}
		return
	}
	http.NotFound(w, req)
}

// ctrEnv is a daemon with a pod network, a registry holding the busybox
// test image, and the image pulled.
type ctrEnv struct {
	d     *Daemon
	n     *testNet
	reg   *testRegistry
	image string // fully qualified name of the pulled busybox image
}

// startCtrDaemon starts crio for container tests: its own runc state root
// (so leaks can be counted), the test registry marked insecure, the
// busybox image pulled.
func startCtrDaemon(t testing.TB, dropIns map[string]string) *ctrEnv {
	t.Helper()
	return startCtrDaemonEnv(t, dropIns, nil)
}

// startCtrDaemonEnv is startCtrDaemon with extra environment for crio.
func startCtrDaemonEnv(t testing.TB, dropIns map[string]string, env []string) *ctrEnv {
	t.Helper()
	RequireRoot(t)
	for _, b := range []string{"runc", "conmon"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed", b)
		}
	}
	reg := startTestRegistry(t)
	reg.push("it/busybox", "latest", newTestImage(t, imageOpts{}))
	dir := TempDir(t)
	n := newTestNet(t, dir)
	if err := os.MkdirAll(filepath.Join(dir, "cni", "net.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cni", "net.d", "10-test.conflist"), []byte(n.conflist()), 0o644); err != nil {
		t.Fatal(err)
	}
	regConf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(regConf, []byte(fmt.Sprintf("[[registry]]\nlocation = %q\ninsecure = true\n", reg.Host)), 0o644); err != nil {
		t.Fatal(err)
	}
	ins := map[string]string{
		"10-runc.conf": fmt.Sprintf("[crio.runtime.runtimes.runc]\nruntime_root = %q\n", filepath.Join(dir, "runc")),
	}
	for k, v := range dropIns {
		ins[k] = v
	}
	d := StartDaemon(t, Options{Dir: dir, DropIns: ins, Env: append([]string{"CONTAINERS_REGISTRIES_CONF=" + regConf}, env...)})
	t.Cleanup(func() { removeAllContainersAndPods(d) })
	e := &ctrEnv{d: d, n: n, reg: reg, image: reg.Host + "/it/busybox:latest"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.Image().PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: e.image}}); err != nil {
		t.Fatalf("pull test image: %v", err)
	}
	return e
}

// removeAllContainersAndPods leaves nothing running after a failed test.
func removeAllContainersAndPods(d *Daemon) {
	select {
	case <-d.Exited():
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if list, err := d.Runtime().ListContainers(ctx, &runtimeapi.ListContainersRequest{}); err == nil {
		for _, c := range list.Containers {
			d.Runtime().RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.Id})
		}
	}
	removeAllPods(d)
}

// pod runs a pod whose logs go to a directory of the test's.
func (e *ctrEnv) pod(t *testing.T, name string, mutate func(*runtimeapi.PodSandboxConfig)) (string, *runtimeapi.PodSandboxConfig) {
	t.Helper()
	cfg := podConfig(name)
	cfg.LogDirectory = filepath.Join(e.d.Dir, "podlogs", cfg.Metadata.Name)
	if mutate != nil {
		mutate(cfg)
	}
	return runPod(t, e.d, cfg), cfg
}

var ctrSeq atomic.Int32

// ctrConfig is a container of the busybox image running args.
func (e *ctrEnv) ctrConfig(name string, args ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: fmt.Sprintf("%s-%d", name, ctrSeq.Add(1))},
		Image:    &runtimeapi.ImageSpec{Image: e.image},
		Command:  args,
		LogPath:  name + "/0.log",
		Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{}},
	}
}

func (e *ctrEnv) create(t *testing.T, podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	resp, err := e.d.Runtime().CreateContainer(Context(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pod})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	return resp.ContainerId
}

func (e *ctrEnv) start(t *testing.T, id string) {
	t.Helper()
	if _, err := e.d.Runtime().StartContainer(Context(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
}

// run creates and starts a container.
func (e *ctrEnv) run(t *testing.T, podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	id := e.create(t, podID, pod, cfg)
	e.start(t, id)
	return id
}

func (e *ctrEnv) status(t *testing.T, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	resp, err := e.d.Runtime().ContainerStatus(Context(t), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStatus: %v", err)
	}
	return resp.Status
}

// waitExited waits for the container to be reported exited.
func (e *ctrEnv) waitExited(t *testing.T, id string, timeout time.Duration) *runtimeapi.ContainerStatus {
	t.Helper()
	var st *runtimeapi.ContainerStatus
	if !waitFor(timeout, func() bool {
		st = e.status(t, id)
		return st.State == runtimeapi.ContainerState_CONTAINER_EXITED
	}) {
		t.Fatalf("container %s not exited after %s: %v", id, timeout, st)
	}
	return st
}

// logLines reads a container's log and checks every line's CRI format:
// "<RFC3339Nano> <stdout|stderr> <F|P> <msg>". It returns "stream msg"
// per full line.
var criLogLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d)) (stdout|stderr) (F|P) (.*)$`)

func logLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("container log: %v", err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if l == "" {
			continue
		}
		m := criLogLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("log line %q is not in the CRI format", l)
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Fatalf("log line %q: timestamp: %v", l, err)
		}
		out = append(out, m[3]+" "+m[5])
	}
	return out
}

// runToExit runs a container to its end and returns its status and log.
func (e *ctrEnv) runToExit(t *testing.T, podID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) (*runtimeapi.ContainerStatus, []string) {
	t.Helper()
	id := e.run(t, podID, pod, cfg)
	st := e.waitExited(t, id, 30*time.Second)
	return st, logLines(t, st.LogPath)
}
