package stats

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/crio-appliance/crio/daemon/nsfile"
)

// Interface is one network interface's counters from /proc/net/dev.
type Interface struct {
	Name                                    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// maxInterfaces bounds the interfaces read from one namespace; a pod with
// more is not one the kubelet made.
const maxInterfaces = 256

// ParseNetDev parses the /proc/net/dev format: two header lines, then
// "<name>: <8 receive counters> <8 transmit counters>" per interface.
// Lines that do not fit are skipped.
func ParseNetDev(data []byte) []Interface {
	var out []Interface
	for line := range strings.Lines(string(data)) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		fields := strings.Fields(rest)
		if name == "" || len(name) > unix.IFNAMSIZ || len(fields) < 16 {
			continue // the header lines have "|" but no ':'-separated name
		}
		var v [16]uint64
		bad := false
		for i := range v {
			n, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				bad = true
				break
			}
			v[i] = n
		}
		if bad {
			continue
		}
		out = append(out, Interface{
			Name:    name,
			RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11],
		})
		if len(out) == maxInterfaces {
			break
		}
	}
	return out
}

// ReadNetNS returns the interface counters of the network namespace pinned
// at nsPath. /proc/thread-self/net/dev shows the namespace of the calling
// thread, so a thread visits the pod's namespace to read it (sysfs would
// show the namespace it was mounted in, not the thread's).
func ReadNetNS(nsPath string) ([]Interface, error) {
	var data []byte
	err := nsfile.Visit(nsPath, nsfile.Net, func() (err error) {
		data, err = readNetDevFile("/proc/thread-self/net/dev")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	return ParseNetDev(data), nil
}

// maxNetDevSize bounds the read of /proc/net/dev (about 130 bytes a line).
const maxNetDevSize = maxInterfaces*200 + 512

func readNetDevFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxNetDevSize))
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty /proc/net/dev")
	}
	return b, nil
}
