// Command crio is a Kubernetes CRI runtime compatible with CRI-O.
//
// This file is the composition root: it chooses the service implementations
// the daemon serves (daemon.Services via cli.Env.Build) and nothing else.
package main

import (
	"os"

	"github.com/crio-appliance/crio/daemon/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr}))
}
