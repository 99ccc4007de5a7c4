// Command pulltrace prints where the time of one image pull goes, layer by
// layer, when the pull goes through containers/image's own storage
// destination, as crio's did before it unpacked layers in parallel
// (daemon/image/stagedest): copy.Image from containers/image into a
// containers/storage overlay store, with the same module versions as crio
// (it is built in crio's module).
//
//	pulltrace -root DIR -runroot DIR [-registries-conf F] [-policy F] [-parallel N] [-delete REF,...] [-ms] [REF]
//
// The image is removed from the store first (untimed), so the pull is cold
// for every layer no other image in the store holds. Then, from the first
// request, each layer's timeline in milliseconds:
//
//	fetch   from the start of its download to the end: the blob streamed into
//	        a temporary file while containers/image decompresses it a first
//	        time for its diff ID (sha256 of blob and tar); "≤" when the end
//	        is bounded by the application's start (progress events are
//	        throttled, and the last one may not come until later);
//	wait    from the end of its download to the start of its application:
//	        containers/storage applies layers in order, each on its parent;
//	apply   from the start of its application to the start of the next
//	        (the last: to the image's creation): the blob decompressed a
//	        second time, tar-split metadata recorded, the tar piped to a
//	        re-executed copy of this binary (storage-untar) that extracts it,
//	        and the layer's metadata written.
//
// -delete removes those images first, untimed (with no REF, that is all it
// does); -ms prints only the milliseconds of the pull, as hack/bench-pull.sh
// reads them (its contestant "copyimg").
//
// The events come from copy.Options.Progress (download start and end) and
// from containers/storage's debug log ("Applying tar in", one per layer, in
// layer order); the tool is a measuring aid, not a test.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/reexec"
	storagetypes "go.podman.io/storage/types"
)

// timeline collects the events of one pull, stamped on arrival.
type timeline struct {
	mu       sync.Mutex
	t0       time.Time
	fetched  map[string][2]time.Duration // blob digest -> download start, end
	sizes    map[string]int64
	skipped  map[string]bool // blobs the store already had
	order    []string        // layer digests, in the manifest's order
	applying []time.Duration // starts of "Applying tar", in order
	created  time.Duration   // the image record written
}

func (t *timeline) since() time.Duration { return time.Since(t.t0) }

// Levels and Fire make the timeline a logrus hook: containers/storage logs
// the start of each layer's application at debug level.
func (t *timeline) Levels() []logrus.Level { return []logrus.Level{logrus.DebugLevel} }

func (t *timeline) Fire(e *logrus.Entry) error {
	now := t.since()
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case strings.HasPrefix(e.Message, "Applying tar in "):
		t.applying = append(t.applying, now)
	case strings.HasPrefix(e.Message, "created new image ID"):
		t.created = now
	}
	return nil
}

func (t *timeline) watch(ch <-chan types.ProgressProperties, done chan<- struct{}) {
	for p := range ch {
		now := t.since()
		d := p.Artifact.Digest.String()
		t.mu.Lock()
		f := t.fetched[d]
		switch p.Event {
		case types.ProgressEventNewArtifact:
			f[0] = now
			t.sizes[d] = p.Artifact.Size
		case types.ProgressEventRead:
			// Done comes only when the goroutine that fetched a layer
			// returns, which may be after it applied this and later
			// layers: the read that reaches the blob's size ends the fetch.
			if f[1] == 0 && p.Artifact.Size > 0 && int64(p.Offset) >= p.Artifact.Size {
				f[1] = now
			}
		case types.ProgressEventSkipped:
			t.skipped[d] = true
		case types.ProgressEventDone:
			if f[1] == 0 {
				f[1] = now
			}
		}
		t.fetched[d] = f
		t.mu.Unlock()
	}
	close(done)
}

func main() {
	if reexec.Init() {
		return
	}
	root := flag.String("root", "", "graph root of the store")
	runroot := flag.String("runroot", "", "run root of the store")
	regconf := flag.String("registries-conf", "", "registries.conf")
	policyPath := flag.String("policy", "", "policy.json (default: accept anything)")
	parallel := flag.Uint("parallel", 0, "copy.Options.MaxParallelDownloads (0: containers/image's default)")
	del := flag.String("delete", "", "comma-separated images to remove first, untimed")
	onlyMS := flag.Bool("ms", false, "print only the milliseconds of the pull")
	flag.Parse()
	if *root == "" || *runroot == "" || flag.NArg() > 1 || (flag.NArg() == 0 && *del == "") {
		fmt.Fprintln(os.Stderr, "usage: pulltrace -root DIR -runroot DIR [-registries-conf F] [-policy F] [-parallel N] [-delete REF,...] [-ms] [REF]")
		os.Exit(2)
	}
	o := options{root: *root, runroot: *runroot, regconf: *regconf, policy: *policyPath, parallel: *parallel, onlyMS: *onlyMS}
	if *del != "" {
		o.remove = strings.Split(*del, ",")
	}
	if err := run(o, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "pulltrace:", err)
		os.Exit(1)
	}
}

// options are the command line's.
type options struct {
	root, runroot, regconf, policy string
	parallel                       uint
	remove                         []string
	onlyMS                         bool
}

// storeRef names ref, with the default tag when it has none, in store.
func storeRef(store storage.Store, ref string) (reference.Named, types.ImageReference, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, nil, err
	}
	named = reference.TagNameOnly(named)
	dst, err := istorage.Transport.NewStoreReference(store, named, "")
	return named, dst, err
}

func run(o options, ref string) error {
	store, err := storage.GetStore(storagetypes.StoreOptions{GraphRoot: o.root, RunRoot: o.runroot, GraphDriverName: "overlay"})
	if err != nil {
		return err
	}
	defer func() { _, _ = store.Shutdown(false) }()
	sys := &types.SystemContext{SystemRegistriesConfPath: o.regconf}
	ctx := context.Background()
	for _, r := range append(o.remove, ref) {
		if r == "" {
			continue
		}
		_, old, err := storeRef(store, r)
		if err != nil {
			return err
		}
		_ = old.DeleteImage(ctx, sys) // absent is fine
	}
	if ref == "" {
		return nil
	}
	named, dst, err := storeRef(store, ref)
	if err != nil {
		return err
	}
	src, err := docker.NewReference(named)
	if err != nil {
		return err
	}

	policy := &signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}}
	if o.policy != "" {
		if policy, err = signature.NewPolicyFromFile(o.policy); err != nil {
			return err
		}
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return err
	}
	defer func() { _ = pc.Destroy() }()

	// The layer order, from the manifest, before the timed pull.
	img, err := src.NewImage(ctx, sys)
	if err != nil {
		return err
	}
	var order []string
	for _, l := range img.LayerInfos() {
		order = append(order, l.Digest.String())
	}
	_ = img.Close()

	tl := &timeline{fetched: map[string][2]time.Duration{}, sizes: map[string]int64{}, skipped: map[string]bool{}, order: order}
	logrus.SetLevel(logrus.DebugLevel)
	logrus.SetOutput(io.Discard)
	logrus.AddHook(tl)
	progress := make(chan types.ProgressProperties, 1024)
	watched := make(chan struct{})
	go tl.watch(progress, watched)

	tl.t0 = time.Now()
	_, err = copy.Image(ctx, pc, dst, src, &copy.Options{
		SourceCtx: sys, DestinationCtx: sys, ReportWriter: io.Discard,
		Progress: progress, ProgressInterval: time.Millisecond, MaxParallelDownloads: o.parallel,
	})
	total := tl.since()
	close(progress)
	<-watched
	if err != nil {
		return err
	}
	if o.onlyMS {
		fmt.Println(ms(total))
		return nil
	}
	tl.report(os.Stdout, ref, total)
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// report prints one row per layer. Layers the store already held (shared
// with another image: containers/image reports them skipped) have no fetch
// and no apply; applications are matched to the remaining layers in order.
func (t *timeline) report(w io.Writer, ref string, total time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(w, "%s: %s ms from the first request to the image record\n", ref, ms(total))
	fmt.Fprintln(w, "| layer | compressed bytes | fetch start | fetch end | apply start | apply end | fetch | wait | apply |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	next := 0
	var sumApply time.Duration
	for _, d := range t.order {
		f, ok := t.fetched[d]
		if t.skipped[d] || !ok || next >= len(t.applying) {
			fmt.Fprintf(w, "| %.19s | – | – | – | – | – | – | – | – (already in the store) |\n", d)
			continue
		}
		start := t.applying[next]
		// Progress events are throttled, so the one at the blob's last
		// byte may never come: a layer is fetched, at the latest, when its
		// application starts.
		fetchEnd, bound := f[1], ""
		if fetchEnd == 0 || fetchEnd > start {
			fetchEnd, bound = start, "≤ "
		}
		end := t.created
		if next+1 < len(t.applying) {
			end = t.applying[next+1]
		}
		next++
		sumApply += end - start
		fmt.Fprintf(w, "| %.19s | %d | %s | %s%s | %s | %s | %s%s | %s | %s |\n", d, t.sizes[d],
			ms(f[0]), bound, ms(fetchEnd), ms(start), ms(end), bound, ms(fetchEnd-f[0]), ms(start-fetchEnd), ms(end-start))
	}
	fmt.Fprintf(w, "applications, one after another: %s ms of %s ms\n", ms(sumApply), ms(total))
}
