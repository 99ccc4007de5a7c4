package stats

import (
	"os"
	"strconv"
	"strings"
)

// Processes is what the processes of a cgroup hold.
type Processes struct {
	Count   uint64 // processes (not threads) in the cgroup
	FDs     uint64 // open file descriptors
	Sockets uint64 // of which sockets
	// Truncated: a bound was reached; the numbers are lower bounds.
	Truncated bool
}

// Bounds of one count: a container with more processes or descriptors is
// reported as having at least this many.
const (
	maxProcs = 1024
	maxFDs   = 32768
)

// CountProcesses counts the processes listed in dir/cgroup.procs and their
// open descriptors, reading /proc (procRoot). A process that exits during
// the count is skipped.
func CountProcesses(dir, procRoot string) Processes {
	var p Processes
	data := readFile(dir, "cgroup.procs")
	for line := range strings.Lines(string(data)) {
		pid, err := strconv.Atoi(strings.TrimSpace(line))
		if err != nil || pid <= 0 {
			continue
		}
		if p.Count >= maxProcs {
			p.Truncated = true
			break
		}
		p.Count++
		if p.FDs >= maxFDs {
			p.Truncated = true
			continue
		}
		countFDs(procRoot+"/"+strconv.Itoa(pid)+"/fd", &p)
	}
	return p
}

func countFDs(fdDir string, p *Processes) {
	f, err := os.Open(fdDir)
	if err != nil {
		return
	}
	defer f.Close()
	for p.FDs < maxFDs {
		names, err := f.Readdirnames(256)
		for _, n := range names {
			if p.FDs >= maxFDs {
				p.Truncated = true
				return
			}
			p.FDs++
			// The link reads "socket:[inode]" for a socket.
			if target, err := os.Readlink(fdDir + "/" + n); err == nil && strings.HasPrefix(target, "socket:") {
				p.Sockets++
			}
		}
		if err != nil || len(names) == 0 {
			return
		}
	}
	p.Truncated = true
}
