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
# 127.0.0.1:19537, every collector, and the endpoint scraped every
# SCRAPE_INTERVAL seconds while the variant runs: 1 by default, a stress
# test, as Prometheus scrapes every 15 to 60 s). The order of the variants
# alternates every repetition; cribench runs N pods at concurrency C for
# each cell of CELLS.
# The busybox test image comes from the conformance harness's local registry
# (127.0.0.1:5000, started when it does not answer).
#
# Environment: REPS (5), CELLS ("50x1 50x4"), SCRAPE_INTERVAL (1), BENCH
# (../shared/bench beside the repo), CRIO_BIN (bin/crio, built when missing;
# copied). The crio set-up is hack/lib/bench-crio.sh's.
set -euo pipefail

NAME=bench-metrics
OUT=${1:-}
# shellcheck source=hack/lib/bench-crio.sh
. "$(dirname "$0")/lib/bench-crio.sh"
REPS=${REPS:-5}
CELLS=${CELLS:-50x1 50x4}
METRICS=127.0.0.1:19537
SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-1}

SCRAPER=
stop_scraper() {
	# The scraper dies of SIGTERM: wait's status is 143, not a failure here.
	if [ -n "$SCRAPER" ]; then
		kill "$SCRAPER" 2>/dev/null || true
		wait "$SCRAPER" 2>/dev/null || true
	fi
	SCRAPER=
}
bench_cleanup_extra() { stop_scraper; }

bench_setup
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

start_variant() { # off | on
	if [ "$1" = off ]; then
		start_crio "$C/etc/off.d"
		curl -sf -o /dev/null "http://$METRICS/metrics" && die "metrics off, but $METRICS answers"
		return 0
	fi
	start_crio "$C/etc/crio.conf.d"
	# To a file first: grep -q quits at the first match, and under pipefail
	# the curl it leaves writing into a closed pipe fails the test.
	curl -sf -o "$W/scrape.txt" "http://$METRICS/metrics" && grep -q '^container_runtime_crio_operations_total' "$W/scrape.txt" ||
		die "metrics on, but no container_runtime_crio_operations_total at $METRICS"
	scrape_cost
	(while sleep "$SCRAPE_INTERVAL"; do curl -sf -o /dev/null "http://$METRICS/metrics"; done) &
	SCRAPER=$!
}

start_variant off
warm_up
stop_crio

k=0
for rep in $(seq 1 "$REPS"); do
	for j in 0 1; do
		v=$([ $(((k + j) % 2)) = 0 ] && echo off || echo on)
		start_variant "$v"
		for cell in $CELLS; do
			n=${cell%x*} c=${cell#*x}
			log "metrics $v N=$n C=$c rep $rep (load $(cut -d' ' -f1-3 /proc/loadavg))"
			cribench_cell "metrics-$v" "$n" "$c" "$OUT/metrics-$v-n$n-c$c-r$rep.json"
		done
		stop_scraper
		stop_crio
	done
	k=$((k + 1))
done

m() { for f in "$OUT/metrics-$1-n$2-c$3"-r*.json; do jq -r "$4 // empty" "$f"; done | median; }
{
	echo "crio $("$W/crio" version | awk '/^GitCommit/ {print substr($2, 1, 12)}'); medians of $REPS runs per variant, alternated"
	echo
	echo "| metric | metrics off | metrics on (scraped every $SCRAPE_INTERVAL s) | on ÷ off |"
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
