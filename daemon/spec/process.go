package spec

import (
	"fmt"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crio-appliance/crio/daemon/errdefs"
)

// defaultPath is the PATH of a container whose image sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// processArgs applies Kubernetes' rules: command replaces the image's
// Entrypoint (and then the image's Cmd is dropped too); args replace the
// image's Cmd.
//
// NULs are refused. Line breaks are allowed: a "sh -c" script in a pod
// spec is routinely multi-line, and argv goes to the runtime as JSON, so
// they cannot confuse anything on the way.
func processArgs(cfg *runtimeapi.ContainerConfig, img *imgspecv1.ImageConfig) ([]string, error) {
	command, args := cfg.GetCommand(), cfg.GetArgs()
	if len(command)+len(args) > maxArgs {
		return nil, errdefs.Invalid("config.command", "command and args have more than %d entries", maxArgs)
	}
	total := 0
	for i, s := range command {
		if err := checkString(s, fmt.Sprintf("config.command[%d]", i), maxArgLen); err != nil {
			return nil, err
		}
		total += len(s) + 1
	}
	for i, s := range args {
		if err := checkString(s, fmt.Sprintf("config.args[%d]", i), maxArgLen); err != nil {
			return nil, err
		}
		total += len(s) + 1
	}
	if total > maxArgsBytes {
		return nil, errdefs.Invalid("config.args", "command and args total more than %d bytes", maxArgsBytes)
	}
	var out []string
	switch {
	case len(command) > 0:
		out = append(append(out, command...), args...)
	case len(args) > 0:
		out = append(append(out, entrypoint(img)...), args...)
	default:
		out = append(append(out, entrypoint(img)...), imageCmd(img)...)
	}
	if len(out) == 0 || out[0] == "" {
		return nil, errdefs.Invalid("config.command", "no command given and the image has no Entrypoint or Cmd")
	}
	if strings.ContainsAny(out[0], "\n\r") {
		return nil, errdefs.Invalid("config.command[0]", "the program name contains a line break")
	}
	return out, nil
}

func entrypoint(img *imgspecv1.ImageConfig) []string {
	if img == nil {
		return nil
	}
	return img.Entrypoint
}

func imageCmd(img *imgspecv1.ImageConfig) []string {
	if img == nil {
		return nil
	}
	return img.Cmd
}

// processEnv merges the environment: PATH (the image's or a default), then
// the image's variables, then default_env, then the CRI's, later ones
// replacing earlier ones of the same name. HOSTNAME is the pod's, and a
// terminal gets TERM=xterm unless something set TERM.
func processEnv(in *Input, tty bool) ([]string, error) {
	var order []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	set("PATH", strings.TrimPrefix(defaultPath, "PATH="))
	if in.Pod.Hostname != "" {
		set("HOSTNAME", in.Pod.Hostname)
	}
	if tty {
		set("TERM", "xterm")
	}
	if in.Image != nil {
		for _, e := range in.Image.Env {
			k, v, _ := strings.Cut(e, "=")
			if k != "" && !strings.ContainsAny(k, "\x00\n\r") && !strings.Contains(v, "\x00") {
				set(k, v)
			}
		}
	}
	for _, e := range in.Defaults.Env {
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("crio.runtime.default_env: %q is not KEY=value", e)
		}
		set(k, v)
	}
	envs := in.Config.GetEnvs()
	if len(envs) > maxEnv {
		return nil, errdefs.Invalid("config.envs", "more than %d variables", maxEnv)
	}
	total := 0
	for i, e := range envs {
		field := fmt.Sprintf("config.envs[%d]", i)
		k, v := e.GetKey(), string(e.GetValue())
		if k == "" {
			return nil, errdefs.Invalid(field+".key", "empty variable name")
		}
		if strings.Contains(k, "=") {
			return nil, errdefs.Invalid(field+".key", "%q contains '='", errdefs.Clip(k))
		}
		if err := checkLine(k, field+".key", maxArgLen); err != nil {
			return nil, err
		}
		// Values may span lines (a PEM certificate in a variable is
		// common); only NUL cannot be passed through execve.
		if err := checkString(v, field+".value", maxArgLen); err != nil {
			return nil, err
		}
		total += len(k) + len(v) + 2
		if total > maxArgsBytes {
			return nil, errdefs.Invalid("config.envs", "variables total more than %d bytes", maxArgsBytes)
		}
		set(k, v)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vals[k])
	}
	return out, nil
}

// workingDir is the CRI's working_dir, else the image's, else "/".
func workingDir(cfg *runtimeapi.ContainerConfig, img *imgspecv1.ImageConfig) (string, error) {
	if wd := cfg.GetWorkingDir(); wd != "" {
		return containerPath(wd, "config.working_dir")
	}
	if img != nil && img.WorkingDir != "" {
		if wd, err := containerPath(img.WorkingDir, "image WorkingDir"); err == nil {
			return wd, nil
		}
	}
	return "/", nil
}
