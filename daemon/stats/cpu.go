package stats

import (
	"sync"
	"time"
)

// cpuRates turns cumulative CPU usage into usage_nano_cores: the usage
// between the last sample kept for a cgroup and this one, per second of
// wall time. Samples closer together than minWindow do not replace the
// kept one (their quotient would be noise); they get the last rate.
type cpuRates struct {
	mu        sync.Mutex
	samples   map[string]*cpuSample
	lastPrune time.Time
}

type cpuSample struct {
	usage   uint64
	at      time.Time
	rate    uint64
	hasRate bool
}

const minWindow = time.Second

func newCPURates() *cpuRates { return &cpuRates{samples: map[string]*cpuSample{}} }

// rate records a sample of key's cumulative usage (ns) at time at and
// returns the usage in nanocores, or ok false while there is no earlier
// sample to compare with.
func (r *cpuRates) rate(key string, usage uint64, at time.Time) (nanoCores uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(at)
	prev := r.samples[key]
	if prev == nil || usage < prev.usage || at.Before(prev.at) {
		// First sample, or the counter went back (a new cgroup under
		// the same key): start over.
		r.samples[key] = &cpuSample{usage: usage, at: at}
		return 0, false
	}
	dt := at.Sub(prev.at)
	if dt < minWindow {
		return prev.rate, prev.hasRate
	}
	rate := uint64(float64(usage-prev.usage) / float64(dt.Nanoseconds()) * float64(time.Second))
	r.samples[key] = &cpuSample{usage: usage, at: at, rate: rate, hasRate: true}
	return rate, true
}

// pruneLocked forgets cgroups not sampled for forgetAfter (removed ones).
func (r *cpuRates) pruneLocked(now time.Time) {
	if now.Sub(r.lastPrune) < time.Minute {
		return
	}
	r.lastPrune = now
	for k, s := range r.samples {
		if now.Sub(s.at) > forgetAfter {
			delete(r.samples, k)
		}
	}
}
