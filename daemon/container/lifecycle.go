package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crio-appliance/crio/daemon/errdefs"
	"github.com/crio-appliance/crio/daemon/events"
	"github.com/crio-appliance/crio/daemon/oci"
	"github.com/crio-appliance/crio/daemon/sandbox"
)

// Start runs a created container's process.
func (s *Service) Start(ctx context.Context, id string) error {
	e := s.lookup(id)
	if e == nil {
		return notFound("container %q", errdefs.Clip(id))
	}
	// The pod must stay ready while the process starts: a Stop or Remove
	// of the pod waits for this start, then stops or removes the container
	// with the pod; after one, the start is refused. The pod is held
	// before the container's lock is taken, the order pod Stop and Remove
	// take them in (pod, then its containers).
	podID := e.podID() // never changes
	release, err := s.opts.Pods.Hold(podID, true)
	switch {
	case errors.Is(err, sandbox.ErrNotFound):
		return notFound("pod sandbox %.12s of container %.12s", podID, errdefs.Clip(id))
	case errors.Is(err, sandbox.ErrNotReady):
		return precondition("pod sandbox %.12s of container %.12s is not ready (stopped or being removed)", podID, errdefs.Clip(id))
	case err != nil:
		return err
	}
	defer release()
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	if e.removed {
		e.mu.Unlock()
		return notFound("container %q", errdefs.Clip(id))
	}
	c := e.c
	if c.State != StateCreated {
		state := c.State
		e.mu.Unlock()
		return precondition("container %.12s is %s; only a created container can be started", c.ID, state)
	}
	// The start time is set before the runtime runs the process: a
	// process that exits at once is recorded as started, then exited.
	c.StartedAt = time.Now().UnixNano()
	cid, rt := c.ID, c.Runtime
	e.mu.Unlock()

	h, err := s.handler(rt)
	if err != nil {
		return err
	}
	if err := h.Runtime.Start(ctx, cid); err != nil {
		e.mu.Lock()
		if e.c.State == StateCreated {
			e.c.StartedAt = 0
		}
		e.mu.Unlock()
		return fmt.Errorf("start container %.12s: %w", cid, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c.State != StateCreated {
		return nil // it exited already; recordExit reported the start
	}
	e.c.State = StateRunning
	if err := s.store.SaveVolatile(e.c); err != nil {
		return err
	}
	s.publish(events.Started, e.c)
	return nil
}

// Stop stops a container: its stop signal, then SIGKILL after timeout. An
// unknown or already stopped container is not an error. Concurrent Stops
// of one container each wait on their own, so a second Stop with a
// shorter timeout is not held up by the first.
func (s *Service) Stop(ctx context.Context, id string, timeout time.Duration) error {
	e := s.lookup(id)
	if e == nil {
		return nil
	}
	return s.stop(ctx, e, timeout)
}

func (s *Service) stop(ctx context.Context, e *entry, timeout time.Duration) error {
	e.mu.Lock()
	if e.removed || e.c.State == StateExited || e.c.State == StateCreating {
		e.mu.Unlock()
		return nil
	}
	cid, rt, sig, state, ownNS, pid := e.c.ID, e.c.Runtime, e.c.StopSignal, e.c.State, e.c.OwnPIDNS, e.c.Pid
	e.mu.Unlock()
	h, err := s.handler(rt)
	if err != nil {
		return err
	}
	if timeout > 0 && state == StateRunning {
		if sig == "" {
			sig = "SIGTERM"
		}
		if err := h.Runtime.Kill(ctx, cid, sig, false); err != nil && !stoppedErr(err) {
			s.log.Warn("sending stop signal", "id", cid, "signal", sig, "error", err)
		}
		select {
		case <-e.exited:
			return nil
		case <-time.After(timeout):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// In a shared (pod or host) PID namespace the other processes of the
	// container survive its init: --all signals every process in its
	// cgroup. In a namespace of its own, killing the init is enough and
	// does not depend on the cgroup: on the v1 hierarchies runc finds the
	// processes through the devices controller, and systemd moves a
	// scope's processes to the parent slice in that hierarchy, so the walk
	// finds nobody there.
	if err := h.Runtime.Kill(ctx, cid, "KILL", !ownNS); err != nil && !stoppedErr(err) {
		s.log.Warn("killing container", "id", cid, "error", err)
	}
	if !ownNS {
		// The walk may have missed the init too (see above); signal it
		// directly. The pid cannot belong to another process yet: the
		// init is the monitor's child, and its pid stays taken until the
		// monitor reaps it, which is how crio learns of the exit.
		killInit(pid)
	}
	select {
	case <-e.exited:
		return nil
	case <-time.After(s.opts.KillTimeout):
	case <-ctx.Done():
		return ctx.Err()
	}
	// SIGKILL cannot be ignored: either the exit file is late or the
	// monitor is gone. Ask the runtime.
	if st, err := h.Runtime.State(ctx, cid); errors.Is(err, oci.ErrNotExist) || err == nil && st.Status == "stopped" {
		if !s.recordExit(cid) {
			s.markLost(e, "the container was killed but its monitor did not report the exit")
		}
		return nil
	}
	return fmt.Errorf("container %.12s did not exit %s after SIGKILL", cid, s.opts.KillTimeout)
}

// stoppedErr is the runtime's complaint about signalling a container that
// has already stopped.
func stoppedErr(err error) bool {
	if errors.Is(err, oci.ErrNotExist) {
		return true
	}
	m := err.Error()
	return strings.Contains(m, "not running") || strings.Contains(m, "process already finished") || strings.Contains(m, "no such process")
}

// Remove stops a container if needed and removes it and everything it
// owns except its log. An unknown id is not an error.
func (s *Service) Remove(ctx context.Context, id string) error {
	e := s.lookup(id)
	if e == nil {
		return nil
	}
	e.op.Lock()
	defer e.op.Unlock()
	if err := s.stop(ctx, e, 0); err != nil {
		return err
	}
	e.mu.Lock()
	if e.removed {
		e.mu.Unlock()
		return nil
	}
	c := e.c.clone()
	e.mu.Unlock()
	if err := s.release(ctx, c); err != nil {
		return err
	}
	e.mu.Lock()
	e.removed = true
	s.publish(events.Deleted, c)
	e.mu.Unlock()
	s.mu.Lock()
	delete(s.byID, c.ID)
	s.mu.Unlock()
	s.names.Forget(c.Name, c.ID)
	return nil
}

// ReopenLog makes conmon reopen the container's log file after the
// kubelet rotated it, and waits until the new file exists.
func (s *Service) ReopenLog(ctx context.Context, id string) error {
	c, err := s.Get(id)
	if err != nil {
		return err
	}
	if c.State != StateRunning {
		return precondition("container %.12s is not running", c.ID)
	}
	if err := oci.ReopenLog(c.Bundle); err != nil {
		if errors.Is(err, oci.ErrMonitorGone) {
			return precondition("container %.12s is not running", c.ID)
		}
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(c.LogPath); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("container %.12s: log %s not reopened", c.ID, c.LogPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// StopPodContainers kills every container of a pod (the kubelet has
// already stopped them gracefully before it stops the pod).
func (s *Service) StopPodContainers(ctx context.Context, podID string) error {
	return s.forPod(podID, func(e *entry) error { return s.stop(ctx, e, 0) })
}

// RemovePodContainers removes every container of a pod.
func (s *Service) RemovePodContainers(ctx context.Context, podID string) error {
	return s.forPod(podID, func(e *entry) error {
		e.mu.Lock()
		id := e.c.ID
		e.mu.Unlock()
		return s.Remove(ctx, id)
	})
}

// podID is the id of the container's pod, which never changes.
func (e *entry) podID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.c.PodID
}

// forPod runs fn on the pod's containers in parallel.
func (s *Service) forPod(podID string, fn func(*entry) error) error {
	s.mu.Lock()
	var es []*entry
	for _, e := range s.byID {
		if e.c.PodID == podID { // PodID never changes: safe without e.mu
			es = append(es, e)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(es))
	for i, e := range es {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(e)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// killInit sends SIGKILL to a container's init by pid; gone already is fine.
func killInit(pid int) {
	if pid > 1 {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}
