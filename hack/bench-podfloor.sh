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
# Environment: REPS (3), CELLS ("10x1 50x4"), BENCH, CRIO_BIN (as in
# hack/bench-metrics.sh).
set -euo pipefail

NAME=bench-podfloor
OUT=${1:-}
# shellcheck source=hack/lib/bench-crio.sh
. "$(dirname "$0")/lib/bench-crio.sh"
REPS=${REPS:-3}
CELLS=${CELLS:-10x1 50x4}
F=$W/floor-state

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
} | tee "$OUT/summary.md"
log "results in $OUT"
