# hack/lib/bench-crio.sh: one crio on private paths for the pod benchmarks
# (hack/bench-metrics.sh, hack/bench-podfloor.sh). Sourced, after NAME is set
# (the private paths are /var/tmp/crio-NAME, /var/lib/crio-NAME and
# /run/crio-NAME).
#
# bench_setup copies the crio binary, builds cribench, starts the
# conformance harness's local registry when it does not answer (busybox
# comes from 127.0.0.1:5000), makes the bench0 bridge (10.97.0.0/16, removed
# at the end if made here) and writes the bench's CRI-O-format configs with
# the paths rewritten: $C/etc/crio.conf, storage.conf, policy.json,
# registries.conf, net.d/10-bench0.conflist, and two empty drop-in
# directories, $C/etc/crio.conf.d and $C/etc/off.d. What it starts (the
# registry, the bridge) it stops at the end.
# start_crio [DROPIN_DIR] starts it (PID; the socket is $CR/crio.sock) and
# waits for Version; stop_crio stops it; warm_up pulls the image with one
# pod. The EXIT trap stops crio, unmounts and removes the private paths and
# calls bench_cleanup_extra when the script defines it.
#
# The run directory $CR is a tmpfs of its own (RUN_TMPFS=1, the default), as
# /run is on every node: on a machine whose /run is on disk (this VM's),
# crio's and containers/storage's writes there would otherwise cost disk
# writes that a node never pays. RUN_TMPFS=0 leaves it on /run as it is.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=${BENCH:-$(cd "$REPO/../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
HARNESS=$(cd "$BENCH/../conformance" && pwd)
IMAGE=registry.k8s.io/e2e-test-images/busybox:1.29-2
W=/var/tmp/crio-$NAME
C=/var/lib/crio-$NAME
CR=/run/crio-$NAME
OUT=${OUT:-$W/out-$(date +%Y%m%d-%H%M%S)}

log() { echo "$NAME: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=hack/lib/bench-common.sh
. "$REPO/hack/lib/bench-common.sh"
[ "$(id -u)" = 0 ] || die "run as root"
for t in runc conmon jq curl go; do command -v $t >/dev/null || die "missing $t"; done

PID=
BRIDGE_CREATED=
REGISTRY_STARTED=
stop_crio() {
	[ -n "$PID" ] || return 0
	kill -TERM "$PID" 2>/dev/null || true
	local i
	for i in $(seq 1 300); do [ -d "/proc/$PID" ] || break; sleep 0.1; done
	[ -d "/proc/$PID" ] && kill -KILL "$PID"
	PID=
}
bench_cleanup() {
	set +e
	declare -F bench_cleanup_extra >/dev/null && bench_cleanup_extra
	stop_crio
	cp "$C/daemon.log" "$OUT/crio-daemon.log" 2>/dev/null
	unmount_under "$C" "$CR"
	rm -rf "$C" "$CR" "$W/podlogs"
	[ -n "$BRIDGE_CREATED" ] && ip link del bench0
	[ -n "$REGISTRY_STARTED" ] && "$HARNESS/registry.sh" stop >&2
	return 0
}
trap bench_cleanup EXIT

bench_setup() {
	mkdir -p "$W" "$OUT" "$W/podlogs"
	[ -x "${CRIO_BIN:-$REPO/bin/crio}" ] || make -C "$REPO" bin/crio >&2
	cp "${CRIO_BIN:-$REPO/bin/crio}" "$W/crio"
	(cd "$BENCH/cribench" && go build -o "$W/cribench" .)
	if ! "$HARNESS/registry.sh" status >/dev/null 2>&1; then
		"$HARNESS/registry.sh" start >&2
		REGISTRY_STARTED=1
	fi
	ensure_bench0
	mkdir -p "$CR"
	if [ "${RUN_TMPFS:-1}" != 0 ] && ! mountpoint -q "$CR"; then
		mount -t tmpfs -o mode=0755,size=2g tmpfs "$CR"
	fi
	write_crio_configs "$C" "$CR"
	mkdir -p "$C/etc/crio.conf.d" "$C/etc/off.d"
	cp "$HARNESS/registries.conf" "$C/etc/registries.conf"
}

start_crio() { # [DROPIN_DIR]
	(cd "$C" && exec setsid env CONTAINERS_STORAGE_CONF="$C/etc/storage.conf" "$W/crio" --config "$C/etc/crio.conf" \
		--config-dir "${1:-$C/etc/off.d}" --registries-conf "$C/etc/registries.conf" >>"$C/daemon.log" 2>&1) &
	PID=$!
	"$W/cribench" version -endpoint "unix://$CR/crio.sock" -wait 120s >&2 || die "crio did not start; see $C/daemon.log"
}

# warm_up: the image pulled once with crictl (the conformance harness's,
# installed by its install-tools.sh), so no cell pays a pull: cribench
# removes at its end only the images it pulled itself.
warm_up() {
	local crictl=${CRICTL:-/opt/critools/crictl}
	[ -x "$crictl" ] || "$HARNESS/install-tools.sh" >&2
	"$crictl" --runtime-endpoint "unix://$CR/crio.sock" --image-endpoint "unix://$CR/crio.sock" pull "$IMAGE" >"$W/warmup.log" 2>&1 ||
		die "warm-up pull failed; see $W/warmup.log"
}

# cribench_cell LABEL N C JSON: N pods at concurrency C against the running crio.
cribench_cell() {
	"$W/cribench" -endpoint "unix://$CR/crio.sock" -image "$IMAGE" -pods "$2" -concurrency "$3" \
		-daemon-pid "$PID" -label "$1" -log-dir "$W/podlogs" -json "$4" 2>"${4%.json}.log" ||
		die "cribench failed; see ${4%.json}.log"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print ""; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b <= 0) print "–"; else printf "%.3f\n", a/b}'; }
