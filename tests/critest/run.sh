#!/usr/bin/env bash
# run.sh: the critest ratchet. Starts bin/crio on a private configuration
# (its own storage, socket, CNI config, registries.conf pointing at the
# offline conformance registry), runs critest through the harness in
# <shared>/conformance, and fails if a spec listed in ratchet.txt did not pass.
#
# Environment:
#   CRIO_SHARED     directory holding conformance/ (default: ../shared next to
#                   the repository, then /work/shared)
#   CRIO_BINARY     daemon to test (default: bin/crio)
#   CRITEST_FOCUS   ginkgo focus regex (default: the ratchet's specs, or
#                   "Image Manager" while the ratchet is empty)
#   CRITEST_ALL=1   run every spec (reports specs that pass but are not in
#                   the ratchet yet)
#   OUT_DIR         where reports go (default /var/log/critest-harness/crio-<time>)
#   KEEP=1          keep the daemon's temporary directory
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RATCHET=${CRITEST_RATCHET:-$ROOT/tests/critest/ratchet.txt}
CRIO=${CRIO_BINARY:-$ROOT/bin/crio}
CRICTL=${CRICTL:-/opt/critools/crictl}
OUT_DIR=${OUT_DIR:-/var/log/critest-harness/crio-$(date -u +%Y%m%dT%H%M%SZ)}
export OUT_DIR
die() { echo "critest ratchet: $*" >&2; exit 2; }
log() { echo "==> $*"; }

# --- the harness ---------------------------------------------------------
HARNESS=
for dir in ${CRIO_SHARED:+"$CRIO_SHARED"} "$ROOT/../shared" /work/shared; do
    if [[ -x $dir/conformance/run-critest.sh ]]; then
        HARNESS=$(cd "$dir/conformance" && pwd)
        break
    fi
done
[[ -n $HARNESS ]] || die "conformance harness not found: set CRIO_SHARED to the directory that holds conformance/run-critest.sh (looked in \$CRIO_SHARED, $ROOT/../shared, /work/shared)"
[[ $(id -u) -eq 0 ]] || die "must run as root"
[[ -x $CRIO ]] || die "$CRIO not found (make bin/crio)"
log "harness $HARNESS"
"$HARNESS/install-tools.sh" >/dev/null || die "$HARNESS/install-tools.sh failed"
# Start the registry if needed; stop it at the end only if this run started it.
registry_started=false
if ! "$HARNESS/registry.sh" status >/dev/null 2>&1; then registry_started=true; fi
"$HARNESS/registry.sh" start >/dev/null || die "$HARNESS/registry.sh start failed"

# --- the ratchet and the focus -------------------------------------------
mapfile -t specs < <(sed -e 's/[[:space:]]*#.*$//' -e 's/[[:space:]]*$//' -e '/^$/d' "$RATCHET")
log "ratchet: ${#specs[@]} specs"
if [[ -n ${CRITEST_FOCUS:-} ]]; then
    focus=$CRITEST_FOCUS
elif [[ ${CRITEST_ALL:-0} == 1 ]]; then
    focus=
elif [[ ${#specs[@]} -eq 0 ]]; then
    focus='Image Manager'
else
    # The exact names, regex-escaped, as one alternation. Ginkgo matches
    # "<suite description> <spec text>", hence the leading space.
    focus=$(printf '%s\n' "${specs[@]}" | sed -e 's/[][\\.^$*+?(){}|]/\\&/g' -e 's/^/ /' -e 's/$/$/' | paste -sd'|')
fi

# --- a private daemon ----------------------------------------------------
# Under /var/tmp: the overlay driver needs a real filesystem, not tmpfs.
T=$(mktemp -d /var/tmp/crio-critest.XXXXXX)
pid=
# The pod network: crit0.conflist's bridge, given its gateway address here
# (as containerd-ref.sh does) so the bridge plugin needs neither isGateway
# (which switches on ip_forward) nor ipMasq; with no default route in the
# pods and no masquerade, pod traffic stays on this machine. The
# "Multiple Containers should support network" spec needs the address.
BRIDGE=crit0
BRIDGE_CIDR=10.99.0.1/16
bridge_created=false
cleanup() {
    local rc=$?
    # Pods critest left behind (a failed spec skips its clean-up), while the
    # daemon still runs: CNI DEL frees their addresses and veths.
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        timeout 300 "$CRICTL" --timeout 120s --runtime-endpoint "unix://$T/crio.sock" rmp -fa >/dev/null 2>&1 ||
            echo "critest ratchet: removing the pods left behind failed" >&2
    fi
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && { echo "crio did not stop on SIGTERM, killing it" >&2; kill -KILL "$pid"; }
        wait "$pid" 2>/dev/null || true
    fi
    # Containers the daemon left behind (runc state is private to this run).
    if [[ -d $T/runc ]]; then
        for id in $(runc --root "$T/runc" list -q 2>/dev/null); do
            runc --root "$T/runc" delete --force "$id" >/dev/null 2>&1 || true
        done
    fi
    # conmon processes of this run: their command lines name $T.
    for c in /proc/[0-9]*/cmdline; do
        if { tr '\0' ' ' <"$c"; } 2>/dev/null | grep -q "^[^ ]*conmon .*$T/"; then
            c=${c#/proc/}
            kill -KILL "${c%/cmdline}" 2>/dev/null || true
        fi
    done
    # Pod init processes of this run (shared PID namespaces) that outlived a
    # failed removal: they run chrooted in a directory under $T.
    for r in /proc/[0-9]*/root; do
        p=${r%/root}
        if [[ $(head -c 14 "$p/cmdline" 2>/dev/null | tr -d '\0') == crio-pod-init && $(readlink "$r" 2>/dev/null) == "$T"/* ]]; then
            kill -KILL "${p#/proc/}" 2>/dev/null || true
        fi
    done
    # Mounts under the temporary directory (overlay, shm, pinned namespaces), deepest first.
    awk -v t="$T/" 'index($2, t) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
    if [[ ${KEEP:-0} == 1 ]]; then echo "kept $T"; else rm -rf "$T" 2>/dev/null || true; fi
    # The bridge goes only if this run made it and no pod (of another run
    # or runtime sharing crit0) is attached to it.
    if $bridge_created && [[ -z $(ip -o link show master "$BRIDGE" 2>/dev/null) ]]; then
        ip link delete "$BRIDGE" 2>/dev/null || true
    fi
    if $registry_started; then "$HARNESS/registry.sh" stop >/dev/null 2>&1 || true; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$T/conf.d" "$T/cni" "$T/runc" "$OUT_DIR"
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    bridge_created=true
fi
ip addr replace "$BRIDGE_CIDR" dev "$BRIDGE"
ip link set "$BRIDGE" up
cp "$HARNESS/crit0.conflist" "$T/cni/"
cp "$HARNESS/registries.conf" "$T/registries.conf"
cat >"$T/policy.json" <<'JSON'
{"default": [{"type": "insecureAcceptAnything"}]}
JSON
plugin_dirs='"/usr/lib/cni/", "/opt/cni/bin/"'
cat >"$T/crio.conf" <<CONF
# crio configuration for the critest ratchet (written by tests/critest/run.sh)
[crio]
root = "$T/root"
runroot = "$T/runroot"
log_dir = "$T/pods"
version_file = "$T/version"
clean_shutdown_file = "$T/clean.shutdown"

[crio.api]
listen = "$T/crio.sock"

[crio.runtime]
cgroup_manager = "cgroupfs"
container_exits_dir = "$T/exits"
container_attach_socket_dir = "$T/attach"
namespaces_dir = "$T/ns"
log_level = "${CRIO_LOG_LEVEL:-info}"

[crio.runtime.runtimes.runc]
runtime_root = "$T/runc"

[crio.image]
signature_policy = "$T/policy.json"

[crio.network]
network_dir = "$T/cni/"
plugin_dirs = [$plugin_dirs]
CONF

log "starting $CRIO (config $T/crio.conf, log $OUT_DIR/crio.log)"
CONTAINERS_REGISTRIES_CONF=$T/registries.conf \
    "$CRIO" --config "$T/crio.conf" --config-dir "$T/conf.d" >"$OUT_DIR/crio.log" 2>&1 &
pid=$!
ready=false
for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$OUT_DIR/crio.log" >&2; pid=; die "crio exited at start-up"; }
    if [[ -S $T/crio.sock ]] && "$CRICTL" --timeout 2s --runtime-endpoint "unix://$T/crio.sock" version >/dev/null 2>&1; then
        ready=true
        break
    fi
    sleep 0.2
done
$ready || die "crio did not answer on $T/crio.sock within 60s"

# --- critest ---------------------------------------------------------------
if [[ -z ${CRITEST_FOCUS:-} && ${#specs[@]} -gt 0 && ${CRITEST_ALL:-0} != 1 ]]; then
    log "critest, focused on the ${#specs[@]} ratchet specs"
else
    log "critest, focus: ${focus:-(all specs)}"
fi
set +e
"$HARNESS/run-critest.sh" "unix://$T/crio.sock" ${focus:+"--ginkgo.focus=$focus"}
rc=$?
set -e
[[ $rc -le 1 ]] || die "the harness failed (exit $rc); see $OUT_DIR"
[[ -s $OUT_DIR/specs.tsv ]] || die "no $OUT_DIR/specs.tsv"

# --- the verdict -----------------------------------------------------------
declare -A state
while IFS=$'\t' read -r st name _; do state[$name]=$st; done <"$OUT_DIR/specs.tsv"
bad=0
echo
echo "== ratchet ($RATCHET) =="
for s in "${specs[@]}"; do
    st=${state[$s]:-not run}
    if [[ $st != passed ]]; then
        echo "[RATCHET FAILED: $st] $s"
        bad=$((bad + 1))
    fi
done
declare -A inratchet
for s in "${specs[@]}"; do inratchet[$s]=1; done
newly=$(for name in "${!state[@]}"; do
    if [[ ${state[$name]} == passed && -z ${inratchet[$name]:-} ]]; then printf '    %s\n' "$name"; fi
done | sort)
[[ -z $newly ]] || printf 'passing but not in the ratchet (add them):\n%s\n' "$newly"
count() { awk -F'\t' -v s="$1" '$1 == s' "$OUT_DIR/specs.tsv" | wc -l; }
total=$(wc -l <"$OUT_DIR/specs.tsv")
echo "critest: $total specs: $(count passed) passed, $((total - $(count passed) - $(count skipped) - $(count pending))) failed, $(count skipped) skipped"
echo "ratchet: ${#specs[@]} specs, $((${#specs[@]} - bad)) passed, $bad failed; reports in $OUT_DIR"
[[ $bad -eq 0 ]] || exit 1
