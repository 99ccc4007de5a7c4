// Package metrics holds crio's Prometheus metrics, under CRI-O's names
// (container_runtime_crio_*) so that dashboards and alerts written for
// CRI-O keep working, and serves them as [crio.metrics] configures.
//
// The collectors are package-level and always record: the packages that
// feed them (server, image, container, network, oci) then need no plumbing,
// and an increment is an atomic add, cheaper than a check. Only Serve,
// which runs when enable_metrics is set, exposes them; it registers the
// collectors that metrics_collectors selects in a registry of its own.
package metrics

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sys/unix"
)

// Subsystem is CRI-O's prefix: every crio metric is named
// container_runtime_crio_<collector>.
const Subsystem = "container_runtime"

// prefix is the part of a name before the collector key.
const prefix = "crio_"

// Collector keys, as metrics_collectors names them (CRI-O also accepts
// them with the "crio_" and "container_runtime_crio_" prefixes).
const (
	OperationsTotal               = "operations_total"
	OperationsLatencySecondsTotal = "operations_latency_seconds_total"
	OperationsLatencySeconds      = "operations_latency_seconds"
	OperationsErrorsTotal         = "operations_errors_total"
	ImagePullsBytesTotal          = "image_pulls_bytes_total"
	ImagePullsSkippedBytesTotal   = "image_pulls_skipped_bytes_total"
	ImagePullsFailureTotal        = "image_pulls_failure_total"
	ImagePullsSuccessTotal        = "image_pulls_success_total"
	ImagePullsLayerSize           = "image_pulls_layer_size"
	ImageLayerReuseTotal          = "image_layer_reuse_total"
	ContainersEventsDroppedTotal  = "containers_events_dropped_total"
	ContainersOOMTotal            = "containers_oom_total"
	ContainersOOMCountTotal       = "containers_oom_count_total"
	ProcessesDefunct              = "processes_defunct"
	// crio's own latency breakdown (not in CRI-O).
	NetworkSetupSeconds = "network_setup_seconds"
	RuntimeSeconds      = "runtime_seconds"
	StorageSeconds      = "storage_seconds"
	// The Go runtime and process collectors of client_golang.
	GoCollector      = "go"
	ProcessCollector = "process"
)

// Layer size buckets of CRI-O: 1 KiB, 1 MiB, 10 MiB, 50 MiB, 100 MiB,
// 200 MiB, 300 MiB, 400 MiB, 500 MiB, 1 GiB, 10 GiB.
var sizeBuckets = []float64{
	1 << 10, 1 << 20, 10 << 20, 50 << 20, 100 << 20, 200 << 20,
	300 << 20, 400 << 20, 500 << 20, 1 << 30, 10 << 30,
}

// latencyBuckets cover a fast List (sub-millisecond) to a slow pull or
// a stuck CNI plugin (minutes).
var latencyBuckets = []float64{
	.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300,
}

func name(key string) string { return prefix + key }

var (
	operations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: Subsystem, Name: name(OperationsTotal),
		Help: "Cumulative number of CRI-O operations by operation type.",
	}, []string{"operation"})
	// CRI-O exports this name as a summary; a histogram has the same
	// _sum and _count series (so rate(_sum)/rate(_count) still works)
	// and adds buckets for percentiles across nodes.
	operationsLatencyTotal = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: Subsystem, Name: name(OperationsLatencySecondsTotal),
		Help:    "Latency in seconds of CRI-O operations, by operation type.",
		Buckets: latencyBuckets,
	}, []string{"operation"})
	operationsLatency = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Subsystem: Subsystem, Name: name(OperationsLatencySeconds),
		Help: "Latency in seconds of the latest CRI call, by operation type.",
	}, []string{"operation"})
	operationsErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: Subsystem, Name: name(OperationsErrorsTotal),
		Help: "Cumulative number of CRI-O operation errors by operation type and gRPC code.",
	}, []string{"operation", "error"})
	pullBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: Subsystem, Name: name(ImagePullsBytesTotal),
		Help: "Bytes transferred by CRI-O image pulls, by media type and layer size bucket.",
	}, []string{"mediatype", "size"})
	pullSkippedBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: Subsystem, Name: name(ImagePullsSkippedBytesTotal),
		Help: "Bytes of layers image pulls did not transfer because the store had them, by layer size bucket.",
	}, []string{"size"})
	pullFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: Subsystem, Name: name(ImagePullsFailureTotal),
		Help: "Failed image pulls by their error category.",
	}, []string{"error"})
	pullSuccesses = prometheus.NewCounter(prometheus.CounterOpts{
		Subsystem: Subsystem, Name: name(ImagePullsSuccessTotal),
		Help: "Successful image pulls.",
	})
	pullLayerSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Subsystem: Subsystem, Name: name(ImagePullsLayerSize),
		Help:    "Bytes transferred by CRI-O image pulls per layer.",
		Buckets: sizeBuckets,
	})
	layerReuse = prometheus.NewCounter(prometheus.CounterOpts{
		Subsystem: Subsystem, Name: name(ImageLayerReuseTotal),
		Help: "Layers an image pull reused from the store instead of pulling them.",
	})
	eventsDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Subsystem: Subsystem, Name: name(ContainersEventsDroppedTotal),
		Help: "Container events dropped because a GetContainerEvents subscriber did not keep up.",
	})
	oomTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Subsystem: Subsystem, Name: name(ContainersOOMTotal),
		Help: "Containers killed because they ran out of memory (OOM).",
	})
	oomByName = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: Subsystem, Name: name(ContainersOOMCountTotal),
		Help: "Containers killed because they ran out of memory (OOM), by container name.",
	}, []string{"name"})
	defunct = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Subsystem: Subsystem, Name: name(ProcessesDefunct),
		Help: "Defunct (zombie) processes on the node.",
	}, func() float64 { return float64(defunctScan.count(time.Now())) })

	networkSetup = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: Subsystem, Name: name(NetworkSetupSeconds),
		Help:    "Time in seconds of CNI calls, by action (ADD or DEL).",
		Buckets: latencyBuckets,
	}, []string{"action"})
	runtimeTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: Subsystem, Name: name(RuntimeSeconds),
		Help:    "Time in seconds of OCI runtime calls, by action (create or start).",
		Buckets: latencyBuckets,
	}, []string{"action"})
	storageTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: Subsystem, Name: name(StorageSeconds),
		Help:    "Time in seconds of storage work for a container, by action (create_rootfs or mount).",
		Buckets: latencyBuckets,
	}, []string{"action"})
)

// all maps each collector key to what it registers.
var all = map[string]prometheus.Collector{
	OperationsTotal:               operations,
	OperationsLatencySecondsTotal: operationsLatencyTotal,
	OperationsLatencySeconds:      operationsLatency,
	OperationsErrorsTotal:         operationsErrors,
	ImagePullsBytesTotal:          pullBytes,
	ImagePullsSkippedBytesTotal:   pullSkippedBytes,
	ImagePullsFailureTotal:        pullFailures,
	ImagePullsSuccessTotal:        pullSuccesses,
	ImagePullsLayerSize:           pullLayerSize,
	ImageLayerReuseTotal:          layerReuse,
	ContainersEventsDroppedTotal:  eventsDropped,
	ContainersOOMTotal:            oomTotal,
	ContainersOOMCountTotal:       oomByName,
	ProcessesDefunct:              defunct,
	NetworkSetupSeconds:           networkSetup,
	RuntimeSeconds:                runtimeTime,
	StorageSeconds:                storageTime,
	GoCollector:                   collectors.NewGoCollector(),
	ProcessCollector:              collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
}

// Keys returns every collector key crio knows.
func Keys() []string {
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	return keys
}

// normalize strips CRI-O's accepted prefixes from a collector key.
func normalize(key string) string {
	key = strings.TrimPrefix(key, Subsystem+"_")
	return strings.TrimPrefix(key, prefix)
}

// Operation counts one CRI call: its latency and, when code is not "OK",
// an error under that gRPC code name.
func Operation(op, code string, took time.Duration) {
	operations.WithLabelValues(op).Inc()
	operationsLatencyTotal.WithLabelValues(op).Observe(took.Seconds())
	operationsLatency.WithLabelValues(op).Set(took.Seconds())
	if code != "OK" {
		operationsErrors.WithLabelValues(op, code).Inc()
	}
}

// PullBytes counts n bytes of a blob of mediaType transferred; size is
// the blob's full size (-1 when unknown), which picks the size bucket.
func PullBytes(mediaType string, size int64, n uint64) {
	pullBytes.WithLabelValues(mediaType, sizeLabel(size)).Add(float64(n))
}

// PullLayerDone records a blob fully transferred.
func PullLayerDone(size int64) { pullLayerSize.Observe(float64(size)) }

// PullLayerSkipped records a blob the store already had.
func PullLayerSkipped(size int64) {
	layerReuse.Inc()
	if size > 0 {
		pullSkippedBytes.WithLabelValues(sizeLabel(size)).Add(float64(size))
	}
}

// PullSucceeded and PullFailed count a PullImage outcome, once per call.
func PullSucceeded()             { pullSuccesses.Inc() }
func PullFailed(category string) { pullFailures.WithLabelValues(category).Inc() }

// EventDropped counts a container event a subscriber did not get.
func EventDropped() { eventsDropped.Inc() }

// ContainerOOMKilled counts an OOM kill of the container called name.
func ContainerOOMKilled(name string) {
	oomTotal.Inc()
	oomByName.WithLabelValues(name).Inc()
}

// Breakdown actions.
const (
	ActionCNIAdd       = "ADD"
	ActionCNIDel       = "DEL"
	ActionCreate       = "create"
	ActionStart        = "start"
	ActionCreateRootfs = "create_rootfs"
	ActionMount        = "mount"
)

// NetworkSetup, Runtime and Storage record the time since start of one
// step of the latency breakdown.
func NetworkSetup(action string, start time.Time) {
	networkSetup.WithLabelValues(action).Observe(time.Since(start).Seconds())
}

func Runtime(action string, start time.Time) {
	runtimeTime.WithLabelValues(action).Observe(time.Since(start).Seconds())
}

func Storage(action string, start time.Time) {
	storageTime.WithLabelValues(action).Observe(time.Since(start).Seconds())
}

// sizeLabel names CRI-O's size bucket of a blob: the smallest bucket
// bound it fits under, as a byte count, or "+Inf".
func sizeLabel(size int64) string {
	for _, b := range sizeBuckets {
		if float64(size) <= b {
			return strconv.FormatInt(int64(b), 10)
		}
	}
	return "+Inf"
}

// defunctEvery bounds how often a scrape rescans /proc: a scan costs a
// few milliseconds of CPU with a node full of pods, and zombies are a slow
// signal (they pile up over minutes), so a scrape within this long of the
// last scan gets its count.
const defunctEvery = 10 * time.Second

var defunctScan = &throttledCount{every: defunctEvery, scan: func() int { return countDefunct("/proc") }}

// throttledCount runs scan at most once per every; callers in between get
// the last result.
type throttledCount struct {
	every time.Duration
	scan  func() int

	mu   sync.Mutex
	at   time.Time
	last int
}

func (c *throttledCount) count(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || now.Sub(c.at) >= c.every || now.Before(c.at) {
		c.last = c.scan()
		c.at = now
	}
	return c.last
}

// countDefunct counts processes in state Z under procRoot. A process that
// goes away during the scan is skipped.
//
// It runs on every scrape and reads one file per process on the node, so
// it reads with plain syscalls into one buffer: os.ReadFile's poller
// registration, fstat and allocation per file made it most of a scrape's
// CPU time (6.5 ms of crio CPU per scrape with 50 pods).
func countDefunct(procRoot string) int {
	d, err := os.Open(procRoot)
	if err != nil {
		return 0
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0
	}
	// The state is the field after "(comm)"; comm is at most 64 bytes
	// (TASK_COMM_LEN is 16 today), so it is well within the first 256.
	var buf [256]byte
	n := 0
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		fd, err := unix.Open(procRoot+"/"+name+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		k, err := unix.Read(fd, buf[:])
		unix.Close(fd)
		if err != nil || k <= 0 {
			continue
		}
		// comm may itself hold ")" and spaces: find the last one.
		b := buf[:k]
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			n++
		}
	}
	return n
}
