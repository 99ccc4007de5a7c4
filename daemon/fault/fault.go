// Package fault is a test-only crash hook: crash-consistency tests make the
// daemon SIGKILL itself at a named point, so the kill provably lands in the
// window under test instead of at a lucky moment.
//
// It is inert unless CRIO_TEST_FAULT is set in the daemon's environment
// (read once, at start). Its value is "<point>" or "<point>@<n>": kill at
// the n-th time the point is reached (default the first).
package fault

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// EnvVar names the environment variable read at start.
const EnvVar = "CRIO_TEST_FAULT"

var (
	point string
	nth   int64 = 1
	hits  atomic.Int64
)

func init() {
	v := os.Getenv(EnvVar)
	if v == "" {
		return
	}
	point = v
	if p, n, ok := strings.Cut(v, "@"); ok {
		if i, err := strconv.ParseInt(n, 10, 64); err == nil && i > 0 {
			point, nth = p, i
		}
	}
}

// Point kills the process with SIGKILL when name is the configured point
// and has been reached the configured number of times. Otherwise (always,
// in production) it does nothing.
func Point(name string) {
	if point == "" || name != point {
		return
	}
	if hits.Add(1) == nth {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way; do not run past the point
	}
}
