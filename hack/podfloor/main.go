// Command podfloor measures the floor of a pod start: the work no CRI
// runtime can avoid to run one container with its own network, done
// directly, so that a runtime's pod-ready time can be read against it
// (hack/bench-podfloor.sh runs it beside crio under cribench).
//
//	podfloor -lower DIR[:DIR...] -conflist FILE -state DIR [-cni-path DIRS]
//	         [-pods N] [-concurrency C] [-runtime runc] [-json OUT]
//
// For each of N pods, C at a time, the timed start is:
//
//  1. netns: a new network namespace, pinned by a bind mount (as every
//     runtime pins a pod's);
//  2. cni-add: libcni ADD of the configuration list FILE (the same plugins
//     the runtime under test calls) for interface eth0;
//  3. rootfs: an overlay mount of the image's layers (-lower, already
//     extracted, topmost first) with a fresh upper and work directory;
//  4. spec: config.json written with runtime-tools' generator (the default
//     spec, the pod's network namespace, `sleep 3600`);
//  5. run: `runc run --detach` of that bundle, stdio on /dev/null.
//
// No monitor process, no records, no log files, no pod-level namespaces
// besides the network's: a runtime that does those pays for them above the
// floor. Then, untimed for the ready figure but reported: runc delete
// --force, CNI DEL, unmounts, directories removed.
//
// Output: per-step and total p50/p95 in ms on stdout, and with -json the
// same plus every sample.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/opencontainers/runtime-tools/generate"
	"golang.org/x/sys/unix"
)

var steps = []string{"netns", "cni-add", "rootfs", "spec", "run", "ready", "teardown"}

type options struct {
	lower, conflist, state, cniPath, runtime string
	pods, concurrency                        int
}

func main() {
	var o options
	var jsonOut string
	flag.StringVar(&o.lower, "lower", "", "the image's extracted layers, topmost first, colon-separated")
	flag.StringVar(&o.conflist, "conflist", "", "CNI configuration list")
	flag.StringVar(&o.state, "state", "", "working directory (bundles, mounts, namespace files, runc state)")
	flag.StringVar(&o.cniPath, "cni-path", "/usr/lib/cni:/opt/cni/bin", "CNI plugin directories")
	flag.StringVar(&o.runtime, "runtime", "runc", "OCI runtime")
	flag.IntVar(&o.pods, "pods", 10, "pods to start")
	flag.IntVar(&o.concurrency, "concurrency", 1, "pods started at once")
	flag.StringVar(&jsonOut, "json", "", "write the samples and percentiles here")
	flag.Parse()
	if o.lower == "" || o.conflist == "" || o.state == "" || o.pods < 1 || o.concurrency < 1 {
		fmt.Fprintln(os.Stderr, "usage: podfloor -lower DIR[:DIR...] -conflist FILE -state DIR [-pods N] [-concurrency C] [-json OUT]")
		os.Exit(2)
	}
	samples, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "podfloor:", err)
		os.Exit(1)
	}
	report := map[string]any{"pods": o.pods, "concurrency": o.concurrency}
	for _, s := range steps {
		p50, p95 := percentiles(samples[s])
		fmt.Printf("%-9s p50 %7.1f ms  p95 %7.1f ms\n", s, p50, p95)
		report[s] = map[string]any{"p50_ms": p50, "p95_ms": p95, "samples_ms": samples[s]}
	}
	if jsonOut != "" {
		b, _ := json.MarshalIndent(report, "", " ")
		if err := os.WriteFile(jsonOut, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "podfloor:", err)
			os.Exit(1)
		}
	}
}

func percentiles(v []float64) (p50, p95 float64) {
	if len(v) == 0 {
		return 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	at := func(q float64) float64 { return s[int(q*float64(len(s)-1)+0.5)] }
	return at(0.50), at(0.95)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// run starts every pod (C at a time), then tears every one down.
func run(o options) (map[string][]float64, error) {
	netList, err := libcni.ConfListFromFile(o.conflist)
	if err != nil {
		return nil, err
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(o.cniPath), filepath.Join(o.state, "cni-cache"), nil)
	if err := os.MkdirAll(o.state, 0o700); err != nil {
		return nil, err
	}
	f := &floor{o: o, cni: cni, net: netList, samples: map[string][]float64{}}
	ids := make([]string, o.pods)
	for i := range ids {
		ids[i] = fmt.Sprintf("podfloor-%d-%d", os.Getpid(), i)
	}
	var errs []error
	f.each(ids, func(id string) error { return f.start(id) }, &errs)
	f.each(ids, func(id string) error { return f.stop(id) }, &errs)
	return f.samples, errors.Join(errs...)
}

type floor struct {
	o   options
	cni *libcni.CNIConfig
	net *libcni.NetworkConfigList

	mu      sync.Mutex
	samples map[string][]float64
}

func (f *floor) record(step string, d time.Duration) {
	f.mu.Lock()
	f.samples[step] = append(f.samples[step], ms(d))
	f.mu.Unlock()
}

// each runs fn for every id, concurrency at a time, collecting errors.
func (f *floor) each(ids []string, fn func(string) error, errs *[]error) {
	sem := make(chan struct{}, f.o.concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(id); err != nil {
				mu.Lock()
				*errs = append(*errs, fmt.Errorf("%s: %w", id, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func (f *floor) paths(id string) (dir, netns, bundle, merged string) {
	dir = filepath.Join(f.o.state, id)
	return dir, filepath.Join(dir, "netns"), filepath.Join(dir, "bundle"), filepath.Join(dir, "bundle", "rootfs")
}

func (f *floor) rt(args ...string) error {
	cmd := exec.Command(f.o.runtime, append([]string{"--root", filepath.Join(f.o.state, "runc")}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", f.o.runtime, args[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

// runDetached is `runc run --detach`: the container's stdio is runc's, so
// it gets /dev/null (a pipe would keep the caller waiting for the
// container's end), and runc's own errors go to a log file.
func (f *floor) runDetached(id, bundle, log string) error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	cmd := exec.Command(f.o.runtime, "--root", filepath.Join(f.o.state, "runc"), "--log", log,
		"run", "--detach", "--bundle", bundle, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(log)
		return fmt.Errorf("%s run: %w: %s", f.o.runtime, err, strings.TrimSpace(string(b)))
	}
	return nil
}

func (f *floor) rtConf(id, netns string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: "eth0"}
}

func (f *floor) start(id string) error {
	dir, netns, bundle, merged := f.paths(id)
	t0 := time.Now()
	step := func(name string, fn func() error) error {
		s := time.Now()
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		f.record(name, time.Since(s))
		return nil
	}
	if err := step("netns", func() error { return pinNetNS(dir, netns) }); err != nil {
		return err
	}
	if err := step("cni-add", func() error {
		_, err := f.cni.AddNetworkList(context.Background(), f.net, f.rtConf(id, netns))
		return err
	}); err != nil {
		return err
	}
	if err := step("rootfs", func() error {
		upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
		for _, d := range []string{upper, work, merged} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		data := "lowerdir=" + f.o.lower + ",upperdir=" + upper + ",workdir=" + work
		return unix.Mount("overlay", merged, "overlay", 0, data)
	}); err != nil {
		return err
	}
	if err := step("spec", func() error {
		g, err := generate.New("linux")
		if err != nil {
			return err
		}
		g.SetRootPath("rootfs")
		g.SetProcessArgs([]string{"sleep", "3600"})
		g.SetProcessTerminal(false)
		if err := g.AddOrReplaceLinuxNamespace("network", netns); err != nil {
			return err
		}
		g.SetLinuxCgroupsPath("/podfloor/" + id)
		return g.SaveToFile(filepath.Join(bundle, "config.json"), generate.ExportOptions{})
	}); err != nil {
		return err
	}
	if err := step("run", func() error { return f.runDetached(id, bundle, filepath.Join(dir, "runc.log")) }); err != nil {
		return err
	}
	f.record("ready", time.Since(t0))
	return nil
}

func (f *floor) stop(id string) error {
	dir, netns, _, merged := f.paths(id)
	t0 := time.Now()
	var errs []error
	if err := f.rt("delete", "--force", id); err != nil {
		errs = append(errs, err)
	}
	if err := f.cni.DelNetworkList(context.Background(), f.net, f.rtConf(id, netns)); err != nil {
		errs = append(errs, fmt.Errorf("cni del: %w", err))
	}
	for _, m := range []string{merged, netns} {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	f.record("teardown", time.Since(t0))
	return errors.Join(errs...)
}

// pinNetNS creates a network namespace on a thread of its own and bind
// mounts it at path. The thread stays in the new namespace and dies with
// its goroutine (it is never unlocked).
func pinNetNS(dir, path string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, "")
	}()
	return <-errc
}
