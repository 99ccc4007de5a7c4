#!/bin/bash
# bench-pull.sh: cold pull of the benchmark images, side by side in one
# session, runtimes alternated inside each repetition, medians at the end.
#
#   hack/bench-pull.sh [OUTDIR]        (default /var/tmp/crio-bench-pull/out-DATE)
#
# Contestants, each pulling 127.0.0.1:5001/bench/busybox:1.35 (1 layer) and
# 127.0.0.1:5001/bench/big:1.0 (6 layers, ~100 MiB) after removing both:
#   crio        bin/crio over CRI, timed by cribench (-pull-images A,B -pull-reps 1)
#   containerd  Debian's containerd 1.6 over CRI, timed by cribench, with the
#               bench's configs/containerd (paths rewritten to private ones)
#   skopeo      skopeo copy docker://... containers-storage:[overlay@ROOT+RUNROOT]...
#               into a store removed before every pull (wall time of the process)
#   skopeo-warm the same into a store kept between pulls, images removed with
#               skopeo delete (untimed) first: cold image, initialised store
#   copyimg     copy.Image into containers-storage in a short-lived process,
#               hack/pulltrace -ms (crio's module: the same c/image and
#               c/storage versions as crio; skopeo from Debian has older
#               ones); warm store; wall time. This is containers/image's own
#               storage destination, which applies the layers one after
#               another: crio's pull before it unpacked them in parallel
#               (daemon/image/stagedest)
#   floor       hack/pullfloor: the unavoidable work alone, as fast as Go does
#               it: manifest, config and every layer fetched at once over
#               HTTP, each layer streamed through sha256 (blob and diff ID,
#               both checked), pgzip (c/image's decompressor) and archive/tar
#               into a fresh directory per layer in $F (same file system as
#               the stores), all layers overlapping; no fsync. Timed inside
#               the process, from the first request (as pullonly times only
#               the RPC); $F is removed (untimed) before every pull.
#
# SETTLE=N (seconds; default 0 = skip) adds a second pass of REPS: per image,
# every contestant's images are removed, then sync and N s of sleep, then one
# timed pull per contestant (crio and containerd through pullonly, a minimal
# CRI client, as cribench always pulls right after removing). Why: this VM's
# root is ext4 without a journal, where a new inode skips, one by one, every
# inode freed in the last 60 s (360 s while its inode table block is dirty):
# creating files right after a removal costs more, and how much depends on
# the block group's history. SETTLE=90 takes that out, but puts the pulls
# after 90 s of idling (cold daemon heaps and CPUs), which costs too: on the
# 2-core VM the settled pulls were not faster, only noisier.
#
# CONC=N (repetitions; default 0 = skip) adds a pass for four different
# images pulled at once (CONC_IMAGES: busybox, big, pause and bench/mid:1.0,
# 3 layers of 10 MiB random data, built and pushed here when missing): per
# contestant among crio, containerd and floor, the four are removed, then
# pulled one after the other (each timed; "sequential" is the sum), removed
# again and pulled concurrently ("concurrent" is the wall time of the set).
# concurrent/sequential is how much the pulls overlap (1.0: they serialise).
#
# Environment: REPS (3), SETTLE (0), CONC (0), JOURNAL_FS (0), BENCH (../shared/bench beside the repo),
# CRIO_BIN (bin/crio, built when missing), TOOLS (contestants, in this order;
# default "crio containerd floor skopeo skopeo-warm copyimg"), KEEP=1 keeps the stores.
# Needs root and Go; installs what is missing among containerd, skopeo,
# docker-registry, jq and curl (hack/install-deps.sh; gcc too when the
# bench images have to be built).
# All traffic goes to the registry on 127.0.0.1:5001; it is started (and its
# images built) only when it does not answer, and then stopped at the end.
# Private paths: /var/tmp/crio-bench-pull, /var/lib/crio-bench-pull,
# /var/lib/containerd-bench-pull, /var/lib/crio-bench-pull-floor,
# /var/tmp/scratch-{root,runroot},
# /var/tmp/scratch-warm-{root,runroot}, /var/tmp/scratch-lib-{root,runroot}.
# cribench needs one pod per run; it runs with host networking, so the bench0
# bridge is neither needed nor touched. Only the PullImage times are used.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$(cd "$REPO/../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
REPS=${REPS:-3}
SETTLE=${SETTLE:-0}
TOOLS=${TOOLS:-crio containerd floor skopeo skopeo-warm copyimg}
REG=127.0.0.1:5001
IMAGES=(bench/busybox:1.35 bench/big:1.0)
CONC=${CONC:-0}
read -r -a CONC_IMAGES <<<"${CONC_IMAGES:-bench/busybox:1.35 bench/big:1.0 bench/pause:1.0 bench/mid:1.0}"
W=/var/tmp/crio-bench-pull
C=/var/lib/crio-bench-pull
D=/var/lib/containerd-bench-pull
F=/var/lib/crio-bench-pull-floor
S=/var/tmp/scratch-root
SR=/var/tmp/scratch-runroot
SW=/var/tmp/scratch-warm-root
SWR=/var/tmp/scratch-warm-runroot
L=/var/tmp/scratch-lib-root
LR=/var/tmp/scratch-lib-runroot
OUT=${1:-$W/out-$(date +%Y%m%d-%H%M%S)}
TAGS=containers_image_openpgp,exclude_graphdriver_btrfs
# JOURNAL_FS=1 puts every store and the floor's directory on an ext4 file
# system of their own, with a journal (a loop-mounted image in /var/tmp,
# made fresh for the run): this VM's root is ext4 without one, where new
# inodes are slow right after deletions near them, which a node's file
# system does not do (see SETTLE). The run directories (crio's runroot,
# containerd's state) then go on a tmpfs, as /run is on a node (on this VM
# it is not): containers/storage fsyncs its mount records there too.
JFS=/var/lib/bench-pull-fs
RFS=/var/lib/bench-pull-run
CR=$C/run DR=$D/run
if [ "${JOURNAL_FS:-0}" = 1 ]; then
	C=$JFS/crio D=$JFS/containerd F=$JFS/floor S=$JFS/scratch-root SR=$RFS/scratch-runroot
	SW=$JFS/scratch-warm-root SWR=$RFS/scratch-warm-runroot L=$JFS/scratch-lib-root LR=$RFS/scratch-lib-runroot
	CR=$RFS/crio DR=$RFS/containerd
fi

log() { echo "bench-pull: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=hack/lib/bench-common.sh
. "$REPO/hack/lib/bench-common.sh"
[ "$(id -u)" = 0 ] || die "run as root"
command -v go >/dev/null || die "missing go"
"$REPO/hack/install-deps.sh" containerd jq curl >&2
for t in containerd skopeo jq curl; do command -v $t >/dev/null || die "missing $t"; done
has() { [[ " $TOOLS " == *" $1 "* ]]; }

REG_STARTED=
cleanup() {
	set +e
	stop_daemon "$C" crio
	stop_daemon "$D" containerd
	unmount_under "$C" "$D" "$S" "$SR" "$SW" "$SWR" "$L" "$LR" "$CR" "$DR"
	if [ -z "${KEEP:-}" ]; then
		rm -rf "$C" "$D" "$S" "$SR" "$SW" "$SWR" "$L" "$LR" "$F" "$CR" "$DR"
	fi
	if [ "${JOURNAL_FS:-0}" = 1 ] && [ -z "${KEEP:-}" ]; then
		umount "$JFS" && rm -f /var/tmp/bench-pull-fs.img
		umount "$RFS" && rmdir "$RFS"
	fi
	if [ -n "$REG_STARTED" ]; then "$BENCH/baseline.sh" registry-stop; fi
}
trap cleanup EXIT
if [ "${JOURNAL_FS:-0}" = 1 ]; then
	mountpoint -q "$JFS" && umount "$JFS"
	rm -f /var/tmp/bench-pull-fs.img
	truncate -s 8G /var/tmp/bench-pull-fs.img
	mkfs.ext4 -q -F /var/tmp/bench-pull-fs.img
	mkdir -p "$JFS"
	mount -o loop /var/tmp/bench-pull-fs.img "$JFS"
	mountpoint -q "$RFS" && umount "$RFS"
	mkdir -p "$RFS"
	mount -t tmpfs -o mode=0700,size=1g bench-pull-run "$RFS"
	log "stores on $JFS: ext4 with a journal, on a loop device; run directories on a tmpfs, $RFS"
fi

stop_daemon() {
	local dir=$1 name=$2 pid i
	[ -f "$dir/daemon.pid" ] || return 0
	pid=$(cat "$dir/daemon.pid")
	if [ -d "/proc/$pid" ]; then
		kill -TERM "$pid"
		for i in $(seq 1 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
		[ -d "/proc/$pid" ] && kill -KILL "$pid"
		log "$name ($pid) stopped"
	fi
	rm -f "$dir/daemon.pid"
}

# --- tools -------------------------------------------------------------------
mkdir -p "$W" "$OUT"
if [ ! -x "${CRIO_BIN:-$REPO/bin/crio}" ]; then make -C "$REPO" bin/crio >&2; fi
cp "${CRIO_BIN:-$REPO/bin/crio}" "$W/crio" # a rebuild during the run changes nothing
(cd "$BENCH/cribench" && go build -o "$W/cribench" .)
CRIBENCH=$W/cribench

# pullonly: a minimal CRI client (remove, then timed PullImage), built in
# cribench's module; used to clear the runtimes' stores and for SETTLE.
mkdir -p "$W/pullonly"
cat >"$W/pullonly/main.go" <<'EOF'
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// pullonly -endpoint unix:///x.sock [-remove A,B] [-concurrent] [IMAGE...]:
// removes the -remove images (untimed), then pulls each IMAGE and prints its
// time in ms. With -concurrent the images are pulled at once and each line
// is "MS IMAGE", then "MS all" for the whole set.
func main() {
	ep := flag.String("endpoint", "", "CRI endpoint")
	rm := flag.String("remove", "", "comma-separated images to remove first")
	conc := flag.Bool("concurrent", false, "pull the images at once")
	flag.Parse()
	conn, err := grpc.NewClient(*ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	img := runtimeapi.NewImageServiceClient(conn)
	ctx := context.Background()
	for _, r := range strings.Split(*rm, ",") {
		if r != "" {
			_, _ = img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: r}})
		}
	}
	pull := func(ref string) time.Duration {
		t0 := time.Now()
		if _, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
			fmt.Fprintln(os.Stderr, ref+":", err)
			os.Exit(1)
		}
		return time.Since(t0)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	if !*conc {
		for _, ref := range flag.Args() {
			fmt.Printf("%.1f\n", ms(pull(ref)))
		}
		return
	}
	t0 := time.Now()
	times := make([]time.Duration, flag.NArg())
	var wg sync.WaitGroup
	for i, ref := range flag.Args() {
		wg.Go(func() { times[i] = pull(ref) })
	}
	wg.Wait()
	total := time.Since(t0)
	for i, ref := range flag.Args() {
		fmt.Printf("%.1f %s\n", ms(times[i]), ref)
	}
	fmt.Printf("%.1f all\n", ms(total))
}
EOF
(cd "$BENCH/cribench" && go build -o "$W/pullonly/pullonly" "$W/pullonly/main.go")

if has copyimg; then
	(cd "$REPO" && CGO_ENABLED=0 go build -tags "$TAGS" -o "$W/pulltrace" ./hack/pulltrace)
fi
if has floor; then
	(cd "$REPO" && CGO_ENABLED=0 go build -o "$W/pullfloor" ./hack/pullfloor)
fi

# --- registry and images ---------------------------------------------------------
# ensure_registry: (re)starts the bench registry when it does not answer (the
# registry is shared: another user of baseline.sh may stop it meanwhile).
ensure_registry() {
	local i
	curl -sf "http://$REG/v2/" >/dev/null && return
	log "registry on $REG does not answer: starting it"
	"$BENCH/baseline.sh" registry-start >&2
	REG_STARTED=1
	for i in $(seq 1 50); do curl -sf "http://$REG/v2/" >/dev/null && return; sleep 0.2; done
	die "registry did not come up; see /var/lib/bench-registry/registry.log"
}
ensure_registry
for img in "${IMAGES[@]}" bench/pause:1.0; do
	if ! curl -sf -o /dev/null "http://$REG/v2/${img%:*}/manifests/${img#*:}" \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json'; then
		log "image $img missing: building the bench images"
		"$REPO/hack/install-deps.sh" gcc libc6-dev >&2
		"$BENCH/images/build-images.sh" >&2
		break
	fi
done

# build_mid: bench/mid:1.0, three layers of 10 MiB random data (OCI layout
# pushed with skopeo, as images/build-images.sh does), for the CONC pass.
build_mid() {
	local w=$W/mid-build i d diffid dg cfgd mfd layers=() diffids=()
	rm -rf "$w"
	mkdir -p "$w/oci/blobs/sha256"
	for i in 1 2 3; do
		d=$w/l$i
		mkdir -p "$d/data"
		head -c $((10 * 1024 * 1024)) /dev/urandom >"$d/data/mid$i.bin"
		tar -C "$d" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$w/l$i.tar" .
		diffid=$(sha256sum <"$w/l$i.tar" | cut -d' ' -f1)
		gzip -n -1 -c "$w/l$i.tar" >"$w/l$i.tgz"
		dg=$(sha256sum <"$w/l$i.tgz" | cut -d' ' -f1)
		layers+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$dg\",\"size\":$(stat -c %s "$w/l$i.tgz")}")
		diffids+=("\"sha256:$diffid\"")
		mv "$w/l$i.tgz" "$w/oci/blobs/sha256/$dg"
	done
	jq -c -n --argjson d "[$(IFS=,; echo "${diffids[*]}")]" \
		'{architecture:"amd64", os:"linux", created:"1970-01-01T00:00:00Z", config:{Cmd:["sh"]}, rootfs:{type:"layers", diff_ids:$d}}' >"$w/cfg"
	cfgd=$(sha256sum <"$w/cfg" | cut -d' ' -f1)
	mv "$w/cfg" "$w/oci/blobs/sha256/$cfgd"
	jq -c -n --arg c "sha256:$cfgd" --argjson cs "$(stat -c %s "$w/oci/blobs/sha256/$cfgd")" --argjson l "[$(IFS=,; echo "${layers[*]}")]" \
		'{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
		  config:{mediaType:"application/vnd.oci.image.config.v1+json", digest:$c, size:$cs}, layers:$l}' >"$w/mf"
	mfd=$(sha256sum <"$w/mf" | cut -d' ' -f1)
	mv "$w/mf" "$w/oci/blobs/sha256/$mfd"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci/oci-layout"
	jq -c -n --arg d "sha256:$mfd" --argjson s "$(stat -c %s "$w/oci/blobs/sha256/$mfd")" \
		'{schemaVersion:2, manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json", digest:$d, size:$s,
		  annotations:{"org.opencontainers.image.ref.name":"1.0"}}]}' >"$w/oci/index.json"
	skopeo copy --quiet --dest-tls-verify=false "oci:$w/oci:1.0" "docker://$REG/bench/mid:1.0" >&2
	rm -rf "$w"
	log "pushed $REG/bench/mid:1.0"
}
if [ "$CONC" -gt 0 ]; then
	for img in "${CONC_IMAGES[@]}"; do
		if ! curl -sf -o /dev/null "http://$REG/v2/${img%:*}/manifests/${img#*:}" \
			-H 'Accept: application/vnd.oci.image.manifest.v1+json'; then
			[ "$img" = bench/mid:1.0 ] || die "image $img missing from $REG"
			build_mid
		fi
	done
fi

# --- daemons -----------------------------------------------------------------------
# crio: the bench's CRI-O-format config with private paths; registries.conf
# through CONTAINERS_REGISTRIES_CONF, policy through --signature-policy.
mkdir -p "$C/etc/net.d" "$C/etc/crio.conf.d" "$CR" "$C/log"
sed -e "s#/var/lib/crio-bench#$C#g; s#/run/crio-bench#$CR#g; s#/var/log/crio-bench#$C/log#g; s#/etc/crio-bench#$C/etc#g" \
	"$BENCH/configs/crio/crio.conf" >"$C/etc/crio.conf"
cp "$BENCH/configs/crio/registries.conf" "$BENCH/configs/crio/policy.json" "$C/etc/"
cp "$BENCH/configs/cni/10-bench0.conflist" "$C/etc/net.d/"
"$W/crio" -c "$C/etc/crio.conf" -d "$C/etc/crio.conf.d" config validate >&2
CRIO_SOCK=$CR/crio.sock

# containerd: the bench's config with private paths (so that it cannot clash
# with a `baseline.sh start containerd` elsewhere on the machine).
mkdir -p "$D/etc/net.d" "$DR"
sed -e "s#/var/lib/containerd-bench#$D/root#g; s#/run/containerd-bench#$DR#g; s#/etc/containerd-bench#$D/etc#g" \
	"$BENCH/configs/containerd/config.toml" >"$D/etc/config.toml"
cp -r "$BENCH/configs/containerd/certs.d" "$D/etc/"
cp "$BENCH/configs/cni/10-bench0.conflist" "$D/etc/net.d/"
CTRD_SOCK=$DR/containerd.sock

start_daemon() { # dir name sock cmd...
	local dir=$1 name=$2 sock=$3
	shift 3
	(cd "$dir" && exec setsid "$@" >>"$dir/daemon.log" 2>&1) &
	echo $! >"$dir/daemon.pid"
	"$CRIBENCH" version -endpoint "unix://$sock" -wait 60s >&2 || die "$name did not start; see $dir/daemon.log"
	log "$name pid $(cat "$dir/daemon.pid")"
}
if has crio; then
	start_daemon "$C" crio "$CRIO_SOCK" env CONTAINERS_REGISTRIES_CONF="$C/etc/registries.conf" \
		"$W/crio" -c "$C/etc/crio.conf" -d "$C/etc/crio.conf.d" --signature-policy "$C/etc/policy.json"
fi
if has containerd; then
	start_daemon "$D" containerd "$CTRD_SOCK" containerd --config "$D/etc/config.toml"
fi

# --- measurements -------------------------------------------------------------
RES=$OUT/results.tsv # pass rep tool image ms
: >"$RES"
ALL=$(printf "$REG/%s," "${IMAGES[@]}")
ALL=${ALL%,}
PASS=remove-then-pull
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$PASS" "$@" >>"$RES"; }

# cribench REP TOOL SOCK: both images, each pulled right after removing both.
run_cribench() {
	local rep=$1 tool=$2 sock=$3 json=$OUT/$2-r$1.json img
	"$CRIBENCH" -endpoint "unix://$sock" -image "$REG/${IMAGES[0]}" -pull-images "$ALL" -pull-reps 1 \
		-pods 1 -warmup 0 -hostnet -exec-reps 0 -list-reps 1 -settle 0s -log-dir "$W/podlogs" \
		-label "$tool" -json "$json" >>"$OUT/cribench.log" 2>&1 || die "cribench $tool failed; see $OUT/cribench.log"
	for img in "${IMAGES[@]}"; do
		record "$rep" "$tool" "$img" "$(jq -r --arg op "PullImage:$REG/$img" '.ops[$op].p50_ms' "$json")"
	done
}

skopeo_copy() { # root runroot image
	skopeo --registries-conf "$C/etc/registries.conf" --policy "$C/etc/policy.json" \
		copy -q "docker://$REG/$3" "containers-storage:[overlay@$1+$2]$REG/$3"
}

# clear TOOL: removes both images from TOOL's store (untimed).
clear_store() {
	local i
	case $1 in
	crio) "$W/pullonly/pullonly" -endpoint "unix://$CRIO_SOCK" -remove "$ALL" ;;
	containerd) "$W/pullonly/pullonly" -endpoint "unix://$CTRD_SOCK" -remove "$ALL" ;;
	skopeo)
		unmount_under "$S" "$SR" 2>/dev/null
		rm -rf "$S" "$SR"
		;;
	skopeo-warm)
		for i in "${IMAGES[@]}"; do
			skopeo delete "containers-storage:[overlay@$SW+$SWR]$REG/$i" 2>/dev/null || true
		done
		;;
	copyimg) "$W/pulltrace" -root "$L" -runroot "$LR" -delete "$ALL" ;;
	floor) rm -rf "$F" ;;
	esac
}

# pull_one REP TOOL IMAGE: one timed pull into a store cleared before.
pull_one() {
	local rep=$1 tool=$2 img=$3 t0 inner
	case $tool in
	crio) record "$rep" "$tool" "$img" "$("$W/pullonly/pullonly" -endpoint "unix://$CRIO_SOCK" "$REG/$img")" ;;
	containerd) record "$rep" "$tool" "$img" "$("$W/pullonly/pullonly" -endpoint "unix://$CTRD_SOCK" "$REG/$img")" ;;
	skopeo | skopeo-warm)
		t0=$(date +%s%N)
		if [ "$tool" = skopeo ]; then skopeo_copy "$S" "$SR" "$img"; else skopeo_copy "$SW" "$SWR" "$img"; fi
		record "$rep" "$tool" "$img" "$(ms_since "$t0")"
		;;
	copyimg)
		t0=$(date +%s%N)
		inner=$("$W/pulltrace" -root "$L" -runroot "$LR" -registries-conf "$C/etc/registries.conf" \
			-policy "$C/etc/policy.json" -ms "$REG/$img")
		record "$rep" copyimg "$img" "$(ms_since "$t0")"
		record "$rep" copyimg-inproc "$img" "$inner"
		;;
	floor)
		inner=$("$W/pullfloor" -registry "$REG" -dest "$F" "$img") || die "pullfloor $img failed"
		record "$rep" floor "$img" "${inner%% *}"
		;;
	esac
}

# measure REP TOOL (first pass): remove, pull at once, for each image.
measure() {
	local img
	case $2 in
	crio) sync; run_cribench "$1" crio "$CRIO_SOCK" ;;
	containerd) sync; run_cribench "$1" containerd "$CTRD_SOCK" ;;
	*)
		for img in "${IMAGES[@]}"; do
			clear_store "$2"
			sync
			pull_one "$1" "$2" "$img"
		done
		;;
	esac
}

read -r -a order <<<"$TOOLS"
n=${#order[@]}
# Round 0 warms the registry's page cache, the binaries and the stores; it is
# not counted. The order of the contestants rotates every repetition.
for rep in $(seq 0 "$REPS"); do
	for k in $(seq 0 $((n - 1))); do
		tool=${order[$(((k + rep) % n))]}
		log "$PASS rep $rep $tool (load $(cut -d' ' -f1-3 /proc/loadavg))"
		ensure_registry
		measure "$rep" "$tool"
	done
	if [ "$rep" = 0 ]; then : >"$RES"; fi
done

if [ "$SETTLE" -gt 0 ]; then
	PASS=settled-${SETTLE}s
	for rep in $(seq 1 "$REPS"); do
		for img in "${IMAGES[@]}"; do
			for tool in "${order[@]}"; do clear_store "$tool"; done
			sync
			log "$PASS rep $rep $img: waiting ${SETTLE}s after the removals"
			sleep "$SETTLE"
			for k in $(seq 0 $((n - 1))); do
				tool=${order[$(((k + rep) % n))]}
				log "$PASS rep $rep $img $tool (load $(cut -d' ' -f1-3 /proc/loadavg))"
				ensure_registry
				pull_one "$rep" "$tool" "$img"
			done
		done
	done
fi

# concurrent REP TOOL: the CONC_IMAGES one after the other, then at once.
concurrent() {
	local rep=$1 tool=$2 all sock img t out sum=0 line mode
	all=$(printf "$REG/%s," "${CONC_IMAGES[@]}")
	all=${all%,}
	case $tool in crio) sock=$CRIO_SOCK ;; containerd) sock=$CTRD_SOCK ;; esac
	for mode in sequential concurrent; do
		if [ "$tool" = floor ]; then rm -rf "$F"; else "$W/pullonly/pullonly" -endpoint "unix://$sock" -remove "$all"; fi
		sync
		if [ $mode = sequential ]; then
			sum=0
			for img in "${CONC_IMAGES[@]}"; do
				if [ "$tool" = floor ]; then
					rm -rf "$F"
					out=$("$W/pullfloor" -registry "$REG" -dest "$F" "$img") || die "pullfloor $img failed"
					t=${out%% *}
				else
					t=$("$W/pullonly/pullonly" -endpoint "unix://$sock" "$REG/$img") || die "pullonly $tool $img failed"
				fi
				sum=$(awk -v a="$sum" -v b="$t" 'BEGIN {print a + b}')
			done
			record "$rep" "$tool" sequential "$sum"
		else
			if [ "$tool" = floor ]; then
				out=$("$W/pullfloor" -registry "$REG" -dest "$F" "${CONC_IMAGES[@]}") || die "pullfloor failed"
			else
				# shellcheck disable=SC2046
				out=$("$W/pullonly/pullonly" -endpoint "unix://$sock" -concurrent $(printf "$REG/%s " "${CONC_IMAGES[@]}")) ||
					die "pullonly $tool -concurrent failed"
			fi
			while read -r t line; do
				[ "$line" = all ] && line=concurrent || line=${line#"$REG/"}
				record "$rep" "$tool" "$line" "$t"
			done <<<"$out"
		fi
	done
}
if [ "$CONC" -gt 0 ]; then
	PASS=concurrent-4
	conc_tools=()
	for tool in "${order[@]}"; do case $tool in crio | containerd | floor) conc_tools+=("$tool") ;; esac; done
	for rep in $(seq 1 "$CONC"); do
		for k in $(seq 0 $((${#conc_tools[@]} - 1))); do
			tool=${conc_tools[$(((k + rep) % ${#conc_tools[@]}))]}
			log "$PASS rep $rep $tool (load $(cut -d' ' -f1-3 /proc/loadavg))"
			ensure_registry
			concurrent "$rep" "$tool"
		done
	done
fi

# --- medians ------------------------------------------------------------------
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
med() { awk -F'\t' -v p="$1" -v t="$2" -v i="$3" '$1==p && $3==t && $4==i {print $5}' "$RES" | median; }
runs() { awk -F'\t' -v p="$1" -v t="$2" -v i="$3" '$1==p && $3==t && $4==i {printf "%s%.0f", s, $5; s=" "}' "$RES"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a=="" || b=="" || b==0) print "-"; else printf "%.2f\n", a/b}'; }
cell() { local m; m=$(med "$@"); if [ -n "$m" ]; then printf '%.0f [%s]' "$m" "$(runs "$@")"; else echo -; fi; }
{
	echo "Cold pull, ms: median [runs]; crio $("$W/crio" version | awk '/^GitCommit/ {print substr($2, 1, 12) (index($2, "-dirty") ? "-dirty" : "")}'),"\
		"containerd $(containerd --version | cut -d' ' -f3), skopeo $(skopeo --version | cut -d' ' -f3), REPS=$REPS"
	for pass in $(cut -f1 "$RES" | grep -v '^concurrent' | uniq); do
		echo
		echo "### $pass"
		echo
		echo "| image | crio | containerd | floor | crio/containerd | crio/floor | containerd/floor |"
		echo "|---|---:|---:|---:|---:|---:|---:|"
		for img in "${IMAGES[@]}"; do
			cr=$(med "$pass" crio "$img"); ct=$(med "$pass" containerd "$img"); fl=$(med "$pass" floor "$img")
			echo "| $img | $(cell "$pass" crio "$img") | $(cell "$pass" containerd "$img") | $(cell "$pass" floor "$img")" \
				"| $(ratio "$cr" "$ct") | $(ratio "$cr" "$fl") | $(ratio "$ct" "$fl") |"
		done
		if has skopeo || has skopeo-warm || has copyimg; then
			echo
			echo "| image | skopeo (fresh store) | skopeo (warm store) | copyimg (crio's libs) | copyimg, copy.Image only | crio/skopeo | crio/skopeo-warm |"
			echo "|---|---:|---:|---:|---:|---:|---:|"
			for img in "${IMAGES[@]}"; do
				cr=$(med "$pass" crio "$img"); sk=$(med "$pass" skopeo "$img"); sw=$(med "$pass" skopeo-warm "$img")
				echo "| $img | $(cell "$pass" skopeo "$img") | $(cell "$pass" skopeo-warm "$img")" \
					"| $(cell "$pass" copyimg "$img") | $(cell "$pass" copyimg-inproc "$img") | $(ratio "$cr" "$sk") | $(ratio "$cr" "$sw") |"
			done
		fi
		if has copyimg && has crio; then
			echo
			echo "| image | crio (layers unpacked in parallel) | copyimg, copy.Image only (layers one after another) | floor | crio/copyimg | copyimg/floor |"
			echo "|---|---:|---:|---:|---:|---:|"
			for img in "${IMAGES[@]}"; do
				cr=$(med "$pass" crio "$img"); ci=$(med "$pass" copyimg-inproc "$img"); fl=$(med "$pass" floor "$img")
				echo "| $img | $(cell "$pass" crio "$img") | $(cell "$pass" copyimg-inproc "$img") | $(cell "$pass" floor "$img")" \
					"| $(ratio "$cr" "$ci") | $(ratio "$ci" "$fl") |"
			done
		fi
	done
	if [ "$CONC" -gt 0 ]; then
		pass=concurrent-4
		echo
		echo "### $pass: ${CONC_IMAGES[*]}, medians of $CONC [runs]"
		echo
		echo "| | crio | containerd | floor | crio/containerd | crio/floor | containerd/floor |"
		echo "|---|---:|---:|---:|---:|---:|---:|"
		for row in sequential concurrent "${CONC_IMAGES[@]}"; do
			cr=$(med "$pass" crio "$row"); ct=$(med "$pass" containerd "$row"); fl=$(med "$pass" floor "$row")
			echo "| $row | $(cell "$pass" crio "$row") | $(cell "$pass" containerd "$row") | $(cell "$pass" floor "$row")" \
				"| $(ratio "$cr" "$ct") | $(ratio "$cr" "$fl") | $(ratio "$ct" "$fl") |"
		done
		echo
		echo "concurrent/sequential (1.0 = the four pulls serialise):" \
			"crio $(ratio "$(med "$pass" crio concurrent)" "$(med "$pass" crio sequential)")," \
			"containerd $(ratio "$(med "$pass" containerd concurrent)" "$(med "$pass" containerd sequential)")," \
			"floor $(ratio "$(med "$pass" floor concurrent)" "$(med "$pass" floor sequential)")"
	fi
} | tee "$OUT/summary.md"
log "results in $OUT"
