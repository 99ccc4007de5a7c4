// Command crio is a Kubernetes CRI runtime compatible with CRI-O.
//
// This file is the composition root: it chooses the service implementations
// the daemon serves (daemon.Services via cli.Env.Build) and nothing else.
package main

import (
	"context"
	"errors"
	"maps"
	"os"
	"runtime"
	"slices"

	"go.podman.io/storage/pkg/reexec"

	"github.com/crio-appliance/crio/daemon/cgroups"
	"github.com/crio-appliance/crio/daemon/cli"
	// Runs containers/storage's layer helpers before the rest of crio is
	// initialized (the init order is by import path, not by this list).
	_ "github.com/crio-appliance/crio/daemon/cmd/crio/storagechild"
	"github.com/crio-appliance/crio/daemon/container"
	"github.com/crio-appliance/crio/daemon/daemon"
	"github.com/crio-appliance/crio/daemon/events"
	"github.com/crio-appliance/crio/daemon/image"
	"github.com/crio-appliance/crio/daemon/network"
	"github.com/crio-appliance/crio/daemon/sandbox"
	"github.com/crio-appliance/crio/daemon/server"
	"github.com/crio-appliance/crio/daemon/stats"
	"github.com/crio-appliance/crio/daemon/streaming"
)

// init pins the main goroutine to the main OS thread, the thread group
// leader. Code that enters a pod's namespaces does so on a locked thread and
// lets the thread die afterwards rather than reuse it; Go cannot end the
// leader, so it would stay parked in that pod's network namespace, and
// /proc/<crio pid>/ns/net, which tools and cAdvisor read as the daemon's,
// would name a pod's. Pinned here, no other goroutine ever runs on it.
func init() {
	runtime.LockOSThread()
}

func main() {
	// The storage library runs helpers in re-executed copies of this
	// binary; storagechild's init has run the layer helpers already, and
	// any other helper child must stop here.
	if reexec.Init() {
		return
	}
	os.Exit(cli.Main(os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Build: build}))
}

// minProcs is the fewest Ps the daemon runs with; see raiseProcs.
const minProcs = 4

// raiseProcs gives the daemon at least minProcs Ps on a machine with fewer
// CPUs, unless GOMAXPROCS is set. A pull keeps several goroutines per
// layer busy (inflating, digests, tar-split) beside threads that mostly
// wait in system calls (unpacking, fsync); with one P per CPU, each of
// those goes to the back of Go's run queue whenever a system call returns.
// With more Ps than CPUs the kernel schedules the threads, and it runs
// one waking from I/O promptly: on 2 CPUs, pulls of 4 images at once took
// 10% less time, one after another 8% less.
func raiseProcs() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < minProcs {
		runtime.GOMAXPROCS(minProcs)
	}
}

// build constructs the services from the configuration at daemon start.
func build(_ context.Context, env daemon.Env) (daemon.Services, error) {
	raiseProcs()
	opts := image.OptionsFromConfig(env.Config, env.PreviousShutdownClean)
	opts.Logger = env.Logger
	images, err := image.New(opts)
	if err != nil {
		return daemon.Services{}, err
	}
	netOpts := network.OptionsFromConfig(env.Config)
	netOpts.Logger = env.Logger
	nets := network.New(netOpts)
	if err := cgroups.CheckManager(env.Config.Runtime.CgroupManager); err != nil {
		images.Close()
		return daemon.Services{}, err
	}
	cgs, err := cgroups.Detect()
	if err != nil {
		images.Close()
		return daemon.Services{}, err
	}
	// The runtime handlers are set up first: RunPodSandbox accepts only
	// those that work (a configured handler whose binary is missing is
	// refused there, with the reason in the log).
	ctrOpts, err := container.OptionsFromConfig(env.Config, env.Logger)
	if err != nil {
		images.Close()
		return daemon.Services{}, err
	}
	// Lifecycle events only when asked for (CRI-O's default is off).
	var evts *events.Broadcaster
	if env.Config.Runtime.EnablePodEvents {
		evts = events.New(events.Options{Logger: env.Logger})
		ctrOpts.Events = evts
	}
	podOpts := sandbox.OptionsFromConfig(env.Config)
	podOpts.RuntimeHandlers = slices.Sorted(maps.Keys(ctrOpts.Handlers))
	podOpts.Network, podOpts.Cgroups, podOpts.Logger = nets, cgs, env.Logger
	if env.Config.Runtime.CgroupManager == "systemd" {
		// Pod slices and the scopes of pod inits and monitors go through
		// systemd; containers' scopes through runc --systemd-cgroup.
		sd, err := cgroups.NewSystemd(cgs)
		if err != nil {
			images.Close()
			return daemon.Services{}, err
		}
		podOpts.Cgroups, ctrOpts.Cgroups = sd, sd
	}
	// After a reboot nothing of the old pods runs; the kubelet makes them
	// again. Their containers go too: the container service removes those
	// whose pod is gone.
	podOpts.Wipe = env.Rebooted && env.Config.InternalWipe
	if evts != nil {
		podOpts.Events = evts
	}
	pods, err := sandbox.New(podOpts)
	if err != nil {
		images.Close()
		return daemon.Services{}, err
	}
	ctrOpts.Pods, ctrOpts.Images, ctrOpts.Storage = pods, images, images.Store()
	ctrs, err := container.New(ctrOpts)
	if err != nil {
		images.Close()
		return daemon.Services{}, err
	}
	pods.SetContainers(ctrs)
	st, err := stats.New(stats.Options{
		Containers: ctrs, Pods: pods, Cgroups: cgs, CgroupV2: cgs.V2,
		StorageRoot: env.Config.Root, Logger: env.Logger,
	})
	if err != nil {
		ctrs.Close()
		images.Close()
		return daemon.Services{}, err
	}
	// The streaming server listens from here on: a port in use fails the
	// start, as a socket in use does.
	var streams *streaming.Service
	streamOpts, err := streaming.OptionsFromConfig(env.Config, env.Logger)
	if err == nil {
		streamOpts.Containers, streamOpts.Pods = ctrs, pods
		streams, err = streaming.New(streamOpts)
	}
	if err != nil {
		st.Close()
		ctrs.Close()
		images.Close()
		return daemon.Services{}, err
	}
	return daemon.Services{
		Image:      server.NewImageServer(images),
		Network:    nets,
		Sandbox:    pods,
		Container:  ctrs,
		Containers: ctrs,
		Events:     evts,
		Stats:      st,
		Resources:  server.ResourceServices{Containers: ctrs, Pods: pods},
		Streams:    streams,
		Reload:     images.ReloadRegistries,
		Close: func(context.Context) error {
			streams.Close() // ends the streams (execs are killed) first
			st.Close()
			return errors.Join(ctrs.Close(), pods.Close(), images.Close())
		},
	}, nil
}
