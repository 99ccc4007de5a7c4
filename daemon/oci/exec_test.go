package oci

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crio-appliance/crio/internal/testutil"
)

func TestCheckExecArgs(t *testing.T) {
	for _, bad := range [][]string{nil, {}, {""}, {"sh", "a\x00b"}, {strings.Repeat("x", MaxExecArgBytes)}} {
		if err := CheckExecArgs(bad); !errors.Is(err, ErrBadExecArgs) {
			t.Errorf("CheckExecArgs(%.40q) = %v, want ErrBadExecArgs", bad, err)
		}
	}
	if err := CheckExecArgs([]string{"echo", "", "x"}); err != nil {
		t.Errorf("empty later argument refused: %v", err)
	}
}

func TestExecProcessFromSpec(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"ociVersion":"1.0.2","process":{"terminal":true,"consoleSize":{"height":1,"width":2},"user":{"uid":7,"gid":8},"args":["main"],"env":["A=1"],"cwd":"/w","capabilities":{"bounding":["CAP_KILL"]},"noNewPrivileges":true}}`), 0o600)
	p, err := ExecProcess(dir, []string{"ls", "-l"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Args, " ") != "ls -l" || p.Terminal || p.ConsoleSize != nil || p.User.UID != 7 || p.Cwd != "/w" ||
		p.Env[0] != "A=1" || p.Capabilities.Bounding[0] != "CAP_KILL" || !p.NoNewPrivileges {
		t.Fatalf("process %+v", p)
	}
	if _, err := ExecProcess(dir, []string{"a\x00"}, false); !errors.Is(err, ErrBadExecArgs) {
		t.Fatalf("NUL accepted: %v", err)
	}
	if _, err := ExecProcess(t.TempDir(), []string{"ls"}, false); err == nil {
		t.Fatal("missing config.json accepted")
	}
}

// modes runs a test with ExecSync against a running container.
func modes(t *testing.T, f func(t *testing.T, rt *Runtime, c *ctr)) {
	e := newEnv(t)
	c := e.run("sleep", "1000")
	f(t, e.rt, c)
}

func execSync(t *testing.T, rt *Runtime, c *ctr, timeout time.Duration, maxOut int, args ...string) (*ExecSyncResult, error) {
	t.Helper()
	p, err := ExecProcess(c.bundle, args, false)
	if err != nil {
		t.Fatal(err)
	}
	return rt.ExecSync(context.Background(), ExecSyncOptions{ID: c.id, Bundle: c.bundle, Process: p, Timeout: timeout, MaxOutput: maxOut})
}

func TestExecSyncOutputAndExitCode(t *testing.T) {
	modes(t, func(t *testing.T, rt *Runtime, c *ctr) {
		res, err := execSync(t, rt, c, 10*time.Second, 0, "sh", "-c", "echo out; echo err >&2; printf tail; exit 7")
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Stdout) != "out\ntail" || string(res.Stderr) != "err\n" || res.ExitCode != 7 {
			t.Fatalf("got %q %q %d", res.Stdout, res.Stderr, res.ExitCode)
		}
		res, err = execSync(t, rt, c, 0, 0, "id", "-u")
		if err != nil || string(res.Stdout) != "0\n" || res.ExitCode != 0 {
			t.Fatalf("id: %+v %v", res, err)
		}
		// A missing binary is the command's failure, not the RPC's.
		res, err = execSync(t, rt, c, 10*time.Second, 0, "/no/such")
		if err != nil || res.ExitCode == 0 {
			t.Fatalf("missing binary: %+v %v", res, err)
		}
		if entries, _ := filepath.Glob(filepath.Join(c.bundle, "exec-*")); len(entries) != 0 {
			t.Fatalf("exec files left in the bundle: %v", entries)
		}
	})
}

// procsWith lists host pids whose command line is exactly args.
func procsWith(args ...string) []string {
	want := strings.Join(args, "\x00") + "\x00"
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if b, err := os.ReadFile(d + "/cmdline"); err == nil && string(b) == want {
			out = append(out, filepath.Base(d))
		}
	}
	return out
}

func TestExecSyncTimeoutKills(t *testing.T) {
	modes(t, func(t *testing.T, rt *Runtime, c *ctr) {
		marker := "4242"
		start := time.Now()
		// The shell forks sleep: the whole process group must go.
		_, err := execSync(t, rt, c, time.Second, 0, "sh", "-c", "sleep "+marker+"; echo never")
		took := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrExecTimeout) {
			t.Fatalf("err %v, want a timeout", err)
		}
		if took < time.Second || took > 5*time.Second {
			t.Fatalf("timeout of 1s took %s", took)
		}
		deadline := time.Now().Add(3 * time.Second)
		for len(procsWith("sleep", marker)) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("sleep %s still running after the timeout: %v", marker, procsWith("sleep", marker))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func TestExecSyncCancel(t *testing.T) {
	e := newEnv(t)
	c := e.run("sleep", "1000")
	p, _ := ExecProcess(c.bundle, []string{"sleep", "4545"}, false)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := e.rt.ExecSync(ctx, ExecSyncOptions{ID: c.id, Bundle: c.bundle, Process: p})
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrExecTimeout) {
		t.Fatalf("err %v, want the context's deadline", err)
	}
	time.Sleep(200 * time.Millisecond)
	if ps := procsWith("sleep", "4545"); len(ps) > 0 {
		t.Fatalf("exec left running: %v", ps)
	}
}

func TestExecSyncOutputBounded(t *testing.T) {
	modes(t, func(t *testing.T, rt *Runtime, c *ctr) {
		// 3 MiB of output on each stream, 1 MiB kept of each; the process
		// must not block on a full pipe.
		res, err := execSync(t, rt, c, 20*time.Second, 1<<20, "sh", "-c",
			"i=0; while [ $i -lt 3072 ]; do echo "+strings.Repeat("x", 1023)+"; echo "+strings.Repeat("y", 1023)+" >&2; i=$((i+1)); done; exit 4")
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Stdout) != 1<<20 || len(res.Stderr) != 1<<20 || !res.StdoutTruncated || !res.StderrTruncated || res.ExitCode != 4 {
			t.Fatalf("stdout %d (truncated %v), stderr %d (truncated %v), code %d",
				len(res.Stdout), res.StdoutTruncated, len(res.Stderr), res.StderrTruncated, res.ExitCode)
		}
	})
}

func TestExecSyncStoppedContainer(t *testing.T) {
	e := newEnv(t)
	c := e.run("true")
	e.waitExit(c, 10*time.Second)
	p, _ := ExecProcess(c.bundle, []string{"true"}, false)
	res, err := e.rt.ExecSync(context.Background(), ExecSyncOptions{ID: c.id, Bundle: c.bundle, Process: p, Timeout: 5 * time.Second})
	if err == nil && res.ExitCode == 0 {
		t.Fatal("exec in a stopped container succeeded")
	}
}

func TestExecStreams(t *testing.T) {
	e := newEnv(t)
	c := e.run("sleep", "1000")
	p, _ := ExecProcess(c.bundle, []string{"sh", "-c", "read a; echo got $a; echo err >&2; exit 5"}, false)
	var out, errb testutil.SyncBuffer
	code, err := e.rt.Exec(context.Background(), ExecOptions{
		ID: c.id, Bundle: c.bundle, Process: p,
		Stdin: strings.NewReader("line\n"), Stdout: &out, Stderr: &errb,
	})
	if err != nil || code != 5 || out.String() != "got line\n" || errb.String() != "err\n" {
		t.Fatalf("code %d err %v out %q stderr %q", code, err, out.String(), errb.String())
	}

	// A terminal: the process sees a tty of the size sent, and input
	// typed into it.
	p, _ = ExecProcess(c.bundle, []string{"sh", "-c", "read a; stty size; tty; echo got $a; exit 3"}, true)
	inR, inW := io.Pipe()
	resize := make(chan TerminalSize, 1)
	resize <- TerminalSize{Width: 123, Height: 45}
	out = testutil.SyncBuffer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, err = e.rt.Exec(context.Background(), ExecOptions{ID: c.id, Bundle: c.bundle, Process: p, Stdin: inR, Stdout: &out, Resize: resize})
	}()
	go func() {
		time.Sleep(500 * time.Millisecond) // let the resize land before the input
		inW.Write([]byte("word\n"))
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("terminal exec did not end")
	}
	inW.Close()
	if err != nil || code != 3 {
		t.Fatalf("terminal exec: code %d err %v out %q", code, err, out.String())
	}
	s := strings.ReplaceAll(out.String(), "\r", "")
	if !strings.Contains(s, "45 123\n") || !strings.Contains(s, "/dev/pts/") || !strings.Contains(s, "got word\n") {
		t.Fatalf("terminal output %q", s)
	}

	// Cancel kills the process.
	p, _ = ExecProcess(c.bundle, []string{"sleep", "4646"}, true)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := e.rt.Exec(ctx, ExecOptions{ID: c.id, Bundle: c.bundle, Process: p, Stdout: io.Discard}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled exec: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if ps := procsWith("sleep", "4646"); len(ps) > 0 {
		t.Fatalf("cancelled exec left running: %v", ps)
	}
	// A missing binary with a terminal fails the exec.
	p, _ = ExecProcess(c.bundle, []string{"/no/such"}, true)
	code, err = e.rt.Exec(context.Background(), ExecOptions{ID: c.id, Bundle: c.bundle, Process: p, Stdout: io.Discard})
	if err == nil && code == 0 {
		t.Fatal("exec of a missing binary succeeded")
	}
	t.Logf("missing binary with a terminal: code %d, %v", code, err)
}
