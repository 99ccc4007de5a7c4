#!/bin/bash
# bench-metrics.sh: what enabling [crio.metrics] costs on pod start (issue 18:
# at most 2% on pod-ready p50 and RunPodSandbox p50), measured side by side.
#
#   hack/bench-metrics.sh [OUTDIR]     (default /var/tmp/crio-bench-metrics/out-DATE)
#
# One crio binary on private paths (the bench's CRI-O-format config from
# ../shared/bench/configs/crio, paths rewritten, the bridge bench0 on
# 10.97.0.0/16), restarted between the two variants: "off" (the bench config,
# enable_metrics = false) and "on" (a drop-in with enable_metrics = true on
# 127.0.0.1:19537, every collector, and the endpoint scraped every second
# while the variant runs: Prometheus scrapes every 15 to 60 s, so this costs
# more than a real scraper). The order of the variants alternates every
# repetition; cribench runs N pods at concurrency C for each cell of CELLS.
# The busybox test image comes from the conformance harness's local registry
# (127.0.0.1:5000, started when it does not answer).
#
# Environment: REPS (5), CELLS ("50x1 50x4"), BENCH (../shared/bench beside
# the repo), CRIO_BIN (bin/crio, built when missing; copied).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$(cd "$REPO/../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
HARNESS=$(cd "$BENCH/../conformance" && pwd)
REPS=${REPS:-5}
CELLS=${CELLS:-50x1 50x4}
IMAGE=registry.k8s.io/e2e-test-images/busybox:1.29-2
W=/var/tmp/crio-bench-metrics
C=/var/lib/crio-bench-metrics
CR=/run/crio-bench-metrics
OUT=${1:-$W/out-$(date +%Y%m%d-%H%M%S)}
METRICS=127.0.0.1:19537

log() { echo "bench-metrics: $*" >&2; }
die() { log "$*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
for t in runc conmon jq curl go; do command -v $t >/dev/null || die "missing $t"; done

PID=
SCRAPER=
BRIDGE_CREATED=
unmount_under() {
	local d m
	for d in "$@"; do
		awk -v d="$d" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo |
			sort -r | while read -r m; do umount -l "$m"; done
	done
}
stop_crio() {
	# The scraper dies of SIGTERM: wait's status is 143, not a failure here.
	if [ -n "$SCRAPER" ]; then
		kill "$SCRAPER" 2>/dev/null || true
		wait "$SCRAPER" 2>/dev/null || true
	fi
	SCRAPER=
	[ -n "$PID" ] || return 0
	kill -TERM "$PID" 2>/dev/null || true
	local i
	for i in $(seq 1 300); do [ -d "/proc/$PID" ] || break; sleep 0.1; done
	[ -d "/proc/$PID" ] && kill -KILL "$PID"
	PID=
}
cleanup() {
	set +e
	stop_crio
	cp "$C/daemon.log" "$OUT/crio-daemon.log" 2>/dev/null
	unmount_under "$C" "$CR"
	rm -rf "$C" "$CR" "$W/podlogs"
	[ -n "$BRIDGE_CREATED" ] && ip link del bench0
}
trap cleanup EXIT

mkdir -p "$W" "$OUT" "$W/podlogs"
[ -x "${CRIO_BIN:-$REPO/bin/crio}" ] || make -C "$REPO" bin/crio >&2
cp "${CRIO_BIN:-$REPO/bin/crio}" "$W/crio"
(cd "$BENCH/cribench" && go build -o "$W/cribench" .)
"$HARNESS/registry.sh" status >/dev/null 2>&1 || "$HARNESS/registry.sh" start >&2
if ! ip link show bench0 >/dev/null 2>&1; then
	# A fixed MAC, as baseline.sh does: see its ensure_bridge.
	ip link add bench0 type bridge
	ip link set bench0 address 02:42:0a:61:00:01
	ip link set bench0 up
	BRIDGE_CREATED=1
fi
mkdir -p /var/lib/cni-bench/networks

# Configs: the bench's, on private paths; the local test registry.
mkdir -p "$C/etc/net.d" "$C/etc/crio.conf.d" "$C/etc/off.d" "$C/log" "$CR"
for f in crio.conf storage.conf; do
	sed -e "s#/var/lib/crio-bench#$C#g; s#/run/crio-bench#$CR#g; s#/var/log/crio-bench#$C/log#g; s#/etc/crio-bench#$C/etc#g" \
		"$BENCH/configs/crio/$f" >"$C/etc/$f"
done
cp "$BENCH/configs/crio/policy.json" "$C/etc/"
cp "$HARNESS/registries.conf" "$C/etc/registries.conf"
cp "$BENCH/configs/cni/10-bench0.conflist" "$C/etc/net.d/"
cat >"$C/etc/crio.conf.d/50-metrics.conf" <<EOF
[crio.metrics]
enable_metrics = true
metrics_host = "${METRICS%:*}"
metrics_port = ${METRICS#*:}
EOF

# scrape_cost: crio's CPU time (user + system) per scrape and the scrape's
# wall time, over 20 back-to-back scrapes of the idle daemon: what the
# scraper adds, whatever the pod-start noise.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
scrape_cost() {
	local t0 w0 w1 t1 i
	t0=$(cpu_ticks) w0=$(date +%s%N)
	for i in $(seq 20); do curl -sf -o /dev/null "http://$METRICS/metrics"; done
	w1=$(date +%s%N) t1=$(cpu_ticks)
	awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v w="$((w1 - w0))" \
		'BEGIN {printf "%.2f %.2f\n", t * 1000 / hz / 20, w / 1e6 / 20}' >>"$OUT/scrape-cost.txt"
}

start_crio() { # VARIANT
	local dropins=$C/etc/off.d
	[ "$1" = on ] && dropins=$C/etc/crio.conf.d
	(cd "$C" && exec setsid env CONTAINERS_STORAGE_CONF="$C/etc/storage.conf" "$W/crio" --config "$C/etc/crio.conf" \
		--config-dir "$dropins" --registries-conf "$C/etc/registries.conf" >>"$C/daemon.log" 2>&1) &
	PID=$!
	"$W/cribench" version -endpoint "unix://$CR/crio.sock" -wait 120s >&2 || die "crio did not start; see $C/daemon.log"
	if [ "$1" = on ]; then
		curl -sf "http://$METRICS/metrics" | grep -q '^container_runtime_crio_operations_total' ||
			die "metrics on, but no container_runtime_crio_operations_total at $METRICS"
		scrape_cost
		(while sleep 1; do curl -sf -o /dev/null "http://$METRICS/metrics"; done) &
		SCRAPER=$!
	elif curl -sf -o /dev/null "http://$METRICS/metrics"; then
		die "metrics off, but $METRICS answers"
	fi
}

# The image once, so no cell pays a pull.
start_crio off
"$W/cribench" -endpoint "unix://$CR/crio.sock" -image "$IMAGE" -pods 1 -concurrency 1 -label warmup \
	-log-dir "$W/podlogs" -json "$W/warmup.json" 2>"$W/warmup.log" || die "warm-up failed; see $W/warmup.log"
stop_crio

k=0
for rep in $(seq 1 "$REPS"); do
	for j in 0 1; do
		v=$([ $(((k + j) % 2)) = 0 ] && echo off || echo on)
		start_crio "$v"
		for cell in $CELLS; do
			n=${cell%x*} c=${cell#*x}
			log "metrics $v N=$n C=$c rep $rep (load $(cut -d' ' -f1-3 /proc/loadavg))"
			"$W/cribench" -endpoint "unix://$CR/crio.sock" -image "$IMAGE" -pods "$n" -concurrency "$c" \
				-daemon-pid "$PID" -label "metrics-$v" -log-dir "$W/podlogs" \
				-json "$OUT/metrics-$v-n$n-c$c-r$rep.json" 2>"$OUT/metrics-$v-n$n-c$c-r$rep.log" ||
				die "cribench failed; see $OUT/metrics-$v-n$n-c$c-r$rep.log"
		done
		stop_crio
	done
	k=$((k + 1))
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print ""; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
m() { for f in "$OUT/metrics-$1-n$2-c$3"-r*.json; do jq -r "$4 // empty" "$f"; done | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b <= 0) print "–"; else printf "%.3f\n", a/b}'; }
{
	echo "crio $("$W/crio" version | awk '/^GitCommit/ {print substr($2, 1, 12)}'); medians of $REPS runs per variant, alternated"
	echo
	echo "| metric | metrics off | metrics on (scraped every 1 s) | on ÷ off |"
	echo "|---|---:|---:|---:|"
	for cell in $CELLS; do
		n=${cell%x*} c=${cell#*x}
		for op in PodReady RunPodSandbox CreateContainer StartContainer; do
			for q in p50 p95; do
				off=$(m off "$n" "$c" ".ops[\"$op\"].${q}_ms") on=$(m on "$n" "$c" ".ops[\"$op\"].${q}_ms")
				echo "| $op $q (ms), N=$n C=$c | $off | $on | $(ratio "$on" "$off") |"
			done
		done
	done
	echo
	echo "One scrape of the idle daemon (20 back to back, medians over the \"on\" starts): crio CPU" \
		"$(cut -d' ' -f1 "$OUT/scrape-cost.txt" | median) ms, wall $(cut -d' ' -f2 "$OUT/scrape-cost.txt" | median) ms"
} | tee "$OUT/summary.md"
log "results in $OUT"
