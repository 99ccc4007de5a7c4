#!/bin/bash
# bench-podfloor.sh: crio's pod start against its floor (issue 17, item 3),
# side by side in one session.
#
#   hack/bench-podfloor.sh [OUTDIR]    (default /var/tmp/crio-bench-podfloor/out-DATE)
#
# crio: cribench's pod-ready time (RunPodSandbox + CreateContainer +
# StartContainer of `sleep 3600`) with the bench's CRI-O-format config on
# private paths (hack/lib/bench-crio.sh), the bench0 bridge (10.97.0.0/16)
# and the busybox test image from the local registry.
# floor: hack/podfloor, the same pods done directly: a pinned network
# namespace, libcni ADD of the same conflist, an overlay mount of the same
# image layers (copies of the diff directories of crio's store), config.json from
# runtime-tools and `runc run --detach`.
# Both run N pods at concurrency C for each cell of CELLS, REPS times, the
# order alternating; crio keeps running (idle) while the floor runs.
#
# With CPU=1 (the default), each side then starts the last cell's pods once
# more under `perf record -a` (linux-perf), crio's with no pull, exec or
# list calls, and the summary adds the CPU time per pod of each kind of
# process from the first CNI ADD to the last container's exec: where a
# concurrency above the core count spends its time.
#
# Environment: REPS (3), CELLS ("10x1 50x4"), CPU (1), BENCH, CRIO_BIN (as
# in hack/bench-metrics.sh).
set -euo pipefail

NAME=bench-podfloor
OUT=${1:-}
# shellcheck source=hack/lib/bench-crio.sh
. "$(dirname "$0")/lib/bench-crio.sh"
REPS=${REPS:-3}
CELLS=${CELLS:-10x1 50x4}
CPU=${CPU:-1}
[ "$CPU" = 0 ] || "$REPO/hack/install-deps.sh" linux-perf >&2
# The floor's state (bundles, overlay upper and work directories, namespace
# files, runc's state) is on crio's run directory, a tmpfs by default (see
# hack/lib/bench-crio.sh): crio keeps its containers' upper directories on
# disk, so this favours the floor.
F=$CR/floor-state

bench_cleanup_extra() {
	unmount_under "$F"
	rm -rf "$F" "$W/floor-layers"
	local d
	for d in /sys/fs/cgroup/*/podfloor /sys/fs/cgroup/unified/podfloor; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
	return 0
}

bench_setup
(cd "$REPO" && CGO_ENABLED=0 go build -o "$W/podfloor" ./hack/podfloor)
start_crio
warm_up

# The image's layers from crio's store, topmost first, copied (cribench may
# remove the image between cells): the floor's lowerdir.
G=$C/storage
top=$(jq -r --arg i "$IMAGE" '.[] | select((.names // []) | any(. == $i)) | .layer' "$G/overlay-images/images.json")
[ -n "$top" ] || die "$IMAGE is not in $G"
LOWER=
rm -rf "$W/floor-layers"
while [ -n "$top" ] && [ "$top" != null ]; do
	mkdir -p "$W/floor-layers/$top"
	cp -a "$G/overlay/$top/diff" "$W/floor-layers/$top/"
	LOWER=${LOWER:+$LOWER:}$W/floor-layers/$top/diff
	top=$(jq -r --arg l "$top" '.[] | select(.id == $l) | .parent // empty' "$G/overlay-layers/layers.json")
done
log "floor lowerdir: $LOWER"

k=0
for rep in $(seq 1 "$REPS"); do
	for j in 0 1; do
		v=$([ $(((k + j) % 2)) = 0 ] && echo crio || echo floor)
		for cell in $CELLS; do
			n=${cell%x*} c=${cell#*x}
			log "$v N=$n C=$c rep $rep (load $(cut -d' ' -f1-3 /proc/loadavg))"
			if [ "$v" = crio ]; then
				cribench_cell crio "$n" "$c" "$OUT/crio-n$n-c$c-r$rep.json"
			else
				"$W/podfloor" -lower "$LOWER" -conflist "$C/etc/net.d/10-bench0.conflist" -state "$F" \
					-pods "$n" -concurrency "$c" -json "$OUT/floor-n$n-c$c-r$rep.json" >"$OUT/floor-n$n-c$c-r$rep.log" 2>&1 ||
					die "podfloor failed; see $OUT/floor-n$n-c$c-r$rep.log"
			fi
		done
	done
	k=$((k + 1))
done

# cpu_pass: the last cell once more per side under perf, for cpu_by_kind.
if [ "$CPU" != 0 ]; then
	cpu_cell=${CELLS##* } cpu_n=${cpu_cell%x*} cpu_c=${cpu_cell#*x}
	n=$cpu_n c=$cpu_c
	log "CPU pass, N=$n C=$c"
	perf record -q -a -F 999 -e cpu-clock -e sched:sched_process_exec -o "$OUT/cpu-crio.perf" -- \
		"$W/cribench" -endpoint "unix://$CR/crio.sock" -image "$IMAGE" -pods "$n" -concurrency "$c" \
		-pull-images none -exec-reps 0 -list-reps 0 -settle 1s -mem-samples 1 \
		-label crio -log-dir "$W/podlogs" -json "$OUT/cpu-crio.json" 2>"$OUT/cpu-crio.log" ||
		die "cribench (CPU pass) failed; see $OUT/cpu-crio.log"
	perf record -q -a -F 999 -e cpu-clock -e sched:sched_process_exec -o "$OUT/cpu-floor.perf" -- \
		"$W/podfloor" -lower "$LOWER" -conflist "$C/etc/net.d/10-bench0.conflist" -state "$F" \
		-pods "$n" -concurrency "$c" -json "$OUT/cpu-floor.json" >"$OUT/cpu-floor.log" 2>&1 ||
		die "podfloor (CPU pass) failed; see $OUT/cpu-floor.log"
fi

# cpu_by_kind PERFDATA SKIP N: CPU ms per pod of each kind of process, from
# the (SKIP+1)th exec of the CNI bridge plugin (cribench's warm-up pod adds
# and deletes one network first) to the last exec of the containers'
# `sleep`, as "kind ms" lines. A process forked but not yet exec'd counts
# as its parent.
cpu_by_kind() {
	perf script -i "$1" -F comm,time,event,trace 2>/dev/null | awk -v skip="$2" -v n="$3" '
		function kind(c) {
			if (c ~ /^runc/) return "runc"
			if (c == "bridge" || c == "host-local" || c == "portmap" || c == "loopback") return "cni"
			if (c == "crio" || c == "podfloor") return "runtime"
			if (c == "conmon" || c == "cribench" || c == "swapper") return c
			return "other"
		}
		{ t = $2 + 0 }
		/sched_process_exec/ {
			if ($0 ~ /filename=[^ ]*\/bridge /) { if (++nb == skip + 1) start = t }
			if ($0 ~ /filename=[^ ]*\/sleep /) last = t
			next
		}
		/cpu-clock/ { k = kind($1); ts[NR] = t; ks[NR] = k }
		END {
			for (i in ts) if (start && ts[i] >= start && ts[i] <= last) ms[ks[i]]++
			for (k in ms) printf "%s %.1f\n", k, ms[k] / n
			printf "wall %.1f\n", (last - start) * 1000 / n
		}'
}

m() { for f in "$OUT/$1-n$2-c$3"-r*.json; do jq -r "$4 // empty" "$f"; done | median; }
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "") print "–"; else printf "%.1f\n", a - b}'; }
{
	echo "crio $("$W/crio" version | awk '/^GitCommit/ {print substr($2, 1, 12)}') against hack/podfloor; medians of $REPS runs, alternated"
	echo
	echo "| pod ready (ms) | crio | floor | crio − floor | crio ÷ floor |"
	echo "|---|---:|---:|---:|---:|"
	for cell in $CELLS; do
		n=${cell%x*} c=${cell#*x}
		for q in p50 p95; do
			cr=$(m crio "$n" "$c" ".ops[\"PodReady\"].${q}_ms") fl=$(m floor "$n" "$c" ".ready.${q}_ms")
			echo "| $q, N=$n C=$c | $cr | $fl | $(diff_ms "$cr" "$fl") | $(ratio "$cr" "$fl") |"
		done
	done
	echo
	echo "Where the time goes, p50 (ms):"
	echo
	echo "| cell | crio RunPodSandbox | crio CreateContainer | crio StartContainer | floor netns | floor cni-add | floor rootfs | floor spec | floor run |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for cell in $CELLS; do
		n=${cell%x*} c=${cell#*x}
		row="| N=$n C=$c"
		for op in RunPodSandbox CreateContainer StartContainer; do row="$row | $(m crio "$n" "$c" ".ops[\"$op\"].p50_ms")"; done
		for s in netns cni-add rootfs spec run; do row="$row | $(m floor "$n" "$c" ".[\"$s\"].p50_ms")"; done
		echo "$row |"
	done
	if [ "$CPU" != 0 ]; then
		n=$cpu_n c=$cpu_c
		cpu_by_kind "$OUT/cpu-crio.perf" 2 "$n" >"$OUT/cpu-crio.txt"
		cpu_by_kind "$OUT/cpu-floor.perf" 0 "$n" >"$OUT/cpu-floor.txt"
		g() { awk -v k="$2" '$1 == k {print $2}' "$OUT/cpu-$1.txt"; }
		busy() { awk '$1 != "swapper" && $1 != "wall" {s += $2} END {print s}' "$OUT/cpu-$1.txt"; }
		echo
		echo "CPU time per pod (ms) by process, N=$n C=$c, first CNI ADD to last container start, perf at 999 Hz on all cores:"
		echo
		echo "| process | crio | floor | crio − floor |"
		echo "|---|---:|---:|---:|"
		for k in runtime conmon runc cni cribench other; do
			cr=$(g crio $k) fl=$(g floor $k)
			echo "| $k | ${cr:-0} | ${fl:-0} | $(diff_ms "${cr:-0}" "${fl:-0}") |"
		done
		echo "| busy (all above) | $(busy crio) | $(busy floor) | |"
		echo "| idle | $(g crio swapper) | $(g floor swapper) | |"
		echo "| wall ÷ N | $(g crio wall) | $(g floor wall) | |"
		echo
		echo "(runtime: crio itself, or podfloor's own work with libcni, the overlay mount and the spec; a process forked and not yet exec'd counts as its parent.)"
	fi
} | tee "$OUT/summary.md"
log "results in $OUT"
