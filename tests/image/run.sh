#!/usr/bin/env bash
# tests/image/run.sh: boot the crio node image (image-build/, `make image`)
# in QEMU (TCG, UEFI with OVMF, the disk read-only, no network) and prove
# the chain firmware → kernel → systemd → first boot applies the Ignition
# config → crio ready → a pod runs from a preloaded image, with no registry
# reachable. Everything is read from the serial console.
#
#   1. good config: a crio drop-in (log_level = "debug", pids_limit) and a
#      unit that, once crio is ready, runs a pod from the preloaded busybox
#      image with crictl, execs into it, restarts crio and checks the
#      container is still running, printing "NODE-SMOKE:" lines.
#   2. bad config: a drop-in with a typo'd key. crio-firstboot fails, crio
#      does not start, the console shows the file:line error.
#   3. the good config again on a copy of the image whose boot entry adds
#      systemd.unified_cgroup_hierarchy=0: systemd runs the hybrid layout
#      (cgroup v1 controllers, its own hierarchy on cgroup2), as this CI
#      host does, and the same pod's scopes, limits, update and stats are
#      read from the v1 files.
#
# Environment: IMG (default build/image/crio-node-amd64.img), OVMF_CODE,
# OVMF_VARS, BOOT_TIMEOUT (seconds per boot, default 600), BOOTS (which of
# "v2 bad v1" to run, default all), KEEP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IMG=${IMG:-$ROOT/build/image/crio-node-amd64.img}
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-600}
BOOTS=${BOOTS:-v2 bad v1}
IMAGE=registry.k8s.io/e2e-test-images/busybox:1.29-2

[[ -f $IMG ]] || { echo "run.sh: no image at $IMG (make image)" >&2; exit 2; }
for f in "$OVMF_CODE" "$OVMF_VARS"; do [[ -f $f ]] || { echo "run.sh: $f missing (apt-get install ovmf)" >&2; exit 2; }; done
command -v qemu-system-x86_64 >/dev/null || { echo "run.sh: qemu-system-x86_64 missing (apt-get install qemu-system-x86)" >&2; exit 2; }
command -v mcopy >/dev/null || { echo "run.sh: mcopy missing (apt-get install mtools)" >&2; exit 2; }
WORK=$(mktemp -d /var/tmp/crio-imgtest.XXXXXX)
QEMU_PID=
# shellcheck source=tests/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cleanup() {
    local rc=$?
    [[ -n $QEMU_PID ]] && kill "$QEMU_PID" 2>/dev/null || true
    if [[ ${KEEP:-0} == 1 ]]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit $rc
}
trap cleanup EXIT

# --- Ignition configs ----------------------------------------------------------
json_string() { python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'; }
ign_file() { # PATH MODE CONTENTS
    printf '{"path": "%s", "mode": %d, "contents": {"source": "data:;base64,%s"}}' "$1" "$2" "$(printf '%s' "$3" | base64 -w0)"
}
DROPIN=$'[crio.runtime]\nlog_level = "debug"\ndefault_env = ["FLEET_MARKER=from-ignition"]\n'
SMOKE=$(cat "$ROOT/tests/image/smoke.sh")
# The pod under a kubepods-style slice, as the kubelet's systemd driver names
# it; two containers with memory and CPU limits.
POD='{"metadata": {"name": "smoke", "namespace": "default", "uid": "smoke-uid", "attempt": 0}, "hostname": "smoke-pod", "log_directory": "/var/log/pods/smoke", "linux": {"cgroup_parent": "kubepods-burstable-podsmoke.slice"}}'
ctr_json() { # NAME MEMORY CPU_QUOTA
    printf '{"metadata": {"name": "%s"}, "image": {"image": "%s"}, "command": ["sleep", "3600"], "log_path": "%s.log", "linux": {"resources": {"memory_limit_in_bytes": %d, "cpu_period": 100000, "cpu_quota": %d}}}' \
        "$1" "$IMAGE" "$1" "$2" "$3"
}
CTR=$(ctr_json sleeper 67108864 50000)
CTR2=$(ctr_json second 33554432 20000)
UNIT=$'[Unit]\nDescription=crio node smoke test (from Ignition)\nAfter=crio.service\nWants=crio.service\n[Service]\nType=oneshot\nExecStart=/bin/sh /etc/node-smoke/smoke.sh\nExecStartPost=/bin/systemctl --no-block poweroff\nStandardOutput=journal\n[Install]\nWantedBy=multi-user.target\n'
cat >"$WORK/good.ign" <<JSON
{"ignition": {"version": "3.3.0"},
 "storage": {"files": [
   $(ign_file /etc/crio/crio.conf.d/50-fleet.conf 420 "$DROPIN"),
   $(ign_file /etc/node-smoke/smoke.sh 493 "$SMOKE"),
   $(ign_file /etc/node-smoke/pod.json 420 "$POD"),
   $(ign_file /etc/node-smoke/ctr.json 420 "$CTR"),
   $(ign_file /etc/node-smoke/ctr2.json 420 "$CTR2")]},
 "systemd": {"units": [{"name": "node-smoke.service", "enabled": true, "contents": $(printf '%s' "$UNIT" | json_string)}]}}
JSON
cat >"$WORK/bad.ign" <<JSON
{"ignition": {"version": "3.3.0"},
 "storage": {"files": [
   $(ign_file /etc/crio/crio.conf.d/50-fleet.conf 420 $'[crio.runtime]\nlog_levl = "debug"\n')]}}
JSON

# --- boot ----------------------------------------------------------------------
# boot NAME CONFIG UNTIL_REGEX: boot the image (DISK, default IMG) with
# CONFIG on fw_cfg until the serial log matches UNTIL_REGEX, the guest powers
# off, or the timeout. Sets BOOT_SECONDS (power-on to the match) and SERIAL.
boot() {
    local name=$1 config=$2 until=$3 grace=${4:-60}
    SERIAL=$WORK/serial-$name.log
    cp "$OVMF_VARS" "$WORK/vars-$name.fd"
    : >"$SERIAL"
    local t0
    t0=$(date +%s.%N)
    qemu-system-x86_64 -accel tcg -machine q35 -cpu max -m 1024 -smp 2 -nographic -no-reboot -nic none \
        -drive if=pflash,format=raw,unit=0,readonly=on,file="$OVMF_CODE" \
        -drive if=pflash,format=raw,unit=1,file="$WORK/vars-$name.fd" \
        -drive if=virtio,format=raw,readonly=on,file="${DISK:-$IMG}" \
        -fw_cfg name=opt/com.coreos/config,file="$config" \
        -serial file:"$SERIAL" -monitor none -display none </dev/null >"$WORK/qemu-$name.log" 2>&1 &
    QEMU_PID=$!
    local deadline=$(( $(date +%s) + BOOT_TIMEOUT ))
    BOOT_SECONDS=
    STAMP_SECONDS=
    while kill -0 "$QEMU_PID" 2>/dev/null && [[ $(date +%s) -lt $deadline ]]; do
        if [[ -n ${STAMP:-} && -z $STAMP_SECONDS ]] && grep -qaE "$STAMP" "$SERIAL"; then
            STAMP_SECONDS=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
        fi
        if grep -qaE "$until" "$SERIAL"; then
            BOOT_SECONDS=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
            break
        fi
        sleep 1
    done
    # The good config powers off by itself; wait a little, then stop QEMU.
    local i
    for i in $(seq "$grace"); do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 1; done
    kill "$QEMU_PID" 2>/dev/null || true
    wait "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=
    echo "    $name: $(wc -l <"$SERIAL") console lines; matched after ${BOOT_SECONDS:-never} s"
}
serial_has() { grep -aF -- "$1" "$SERIAL"; }

# good_boot NAME LAYOUT: boot DISK with the good config and assert on the
# smoke unit's lines. LAYOUT (v2 or v1) is the cgroup layout the boot entry
# gives systemd; the limits are read from that layout's files and property
# names (MemoryMax and memory.max on v2, MemoryLimit and
# memory.limit_in_bytes on v1).
good_boot() {
    local name=$1 layout=$2
    # A host-side stamp for CRI ready: the first console line the smoke
    # unit prints runs right after crio reported READY=1 (it is ordered
    # after it).
    STAMP='NODE-SMOKE: crio ready at' boot "$name" "$WORK/good.ign" 'NODE-SMOKE: (DONE|FAIL)'
    READY_SECONDS=$STAMP_SECONDS
    grep -a 'NODE-SMOKE' "$SERIAL" | tr -d '\r' | sed 's/^/    | /'
    check "firmware → systemd-boot → kernel: the kernel booted from the ESP" serial_has 'Linux version'
    check "the root is the read-only squashfs, /etc writable (overlay)" bash -c "! grep -aE 'etc-overlay: could not' '$SERIAL'"
    check "first boot applied the Ignition config from fw_cfg (qemu platform)" serial_has 'crio firstboot: applied (qemu platform'
    check "crio became ready (sd_notify; the ordered unit ran)" serial_has 'NODE-SMOKE: crio ready at'
    check "systemd runs the $layout cgroup layout" serial_has "NODE-SMOKE: cgroup layout: $layout "
    check "the drop-in from the config is in effect (crio config --origin)" \
        grep -aE 'NODE-SMOKE: origin: # Set by /etc/crio/crio.conf.d/50-fleet.conf:2\. log_level = "debug"' "$SERIAL"
    check "the preloaded image is there with no registry" serial_has 'NODE-SMOKE: images: '
    check "a pod ran from the preloaded image and exec answered" serial_has 'NODE-SMOKE: exec: hello-from-pod-smoke-pod'
    check "the pod got an address from the CNI bridge (10.85.0.0/16)" grep -aE 'NODE-SMOKE: pod ip: 10\.85\.' "$SERIAL"
    check "the drop-in's default_env reached the container" serial_has 'NODE-SMOKE: env in the container: FLEET_MARKER=from-ignition'
    check "RuntimeConfig reports the systemd cgroup driver" grep -aE 'NODE-SMOKE: cgroup driver \(RuntimeConfig\): .*SYSTEMD' "$SERIAL"
    check "each container is a crio-<id>.scope in the pod's kubepods slice" \
        grep -aE 'NODE-SMOKE: container cgroup: /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podsmoke.slice/crio-[0-9a-f]{64}\.scope' "$SERIAL"
    check "the second container has its own scope in the same slice" \
        grep -aE 'NODE-SMOKE: second container cgroup: /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podsmoke.slice/crio-[0-9a-f]{64}\.scope' "$SERIAL"
    local first second updated
    if [[ $layout == v2 ]]; then
        first='MemoryMax=67108864 CPUQuotaPerSecUSec=500ms memory.max=67108864 cpu.max=50000/100000'
        second='MemoryMax=33554432 CPUQuotaPerSecUSec=200ms memory.max=33554432 cpu.max=20000/100000'
        updated='MemoryMax=134217728 CPUQuotaPerSecUSec=250ms memory.max=134217728 cpu.max=25000/100000'
    else
        first='MemoryLimit=67108864 CPUQuotaPerSecUSec=500ms memory.limit_in_bytes=67108864 cpu.cfs=50000/100000'
        second='MemoryLimit=33554432 CPUQuotaPerSecUSec=200ms memory.limit_in_bytes=33554432 cpu.cfs=20000/100000'
        updated='MemoryLimit=134217728 CPUQuotaPerSecUSec=250ms memory.limit_in_bytes=134217728 cpu.cfs=25000/100000'
    fi
    check "systemd and the kernel hold the container's limits (64 MiB, 0.5 CPU)" serial_has "NODE-SMOKE: limits: $first"
    check "and the second container's (32 MiB, 0.2 CPU)" serial_has "NODE-SMOKE: second limits: $second"
    check "the pod slice and the scopes are active systemd units" \
        grep -aE 'NODE-SMOKE: units: .*crio-CTR1.scope=active crio-CTR2.scope=active .*kubepods-burstable-podsmoke.slice=active' "$SERIAL"
    check "UpdateContainerResources reached systemd and the kernel (128 MiB, 0.25 CPU)" serial_has "NODE-SMOKE: updated limits: $updated"
    check "container stats from the systemd-created cgroup are non-zero" \
        grep -aE 'NODE-SMOKE: container stats: cpu=[1-9][0-9]* memory=[1-9][0-9]*' "$SERIAL"
    check "pod stats are non-zero" grep -aE 'NODE-SMOKE: pod stats: cpu=[1-9][0-9]* memory=[1-9][0-9]*' "$SERIAL"
    check "systemctl restart crio left the container and its scope running" \
        grep -aE 'NODE-SMOKE: after restart: .* active, container CONTAINER_RUNNING pid [0-9]+, scope active' "$SERIAL"
    check "the same container process survived the restart" serial_has 'NODE-SMOKE: restart kept the container running'
    check "stopping and removing the pod left no scope or slice" serial_has 'NODE-SMOKE: units left after removal: []'
    check "the smoke test finished" serial_has 'NODE-SMOKE: DONE'
    local ready_us
    ready_us=$(grep -aoE 'NODE-SMOKE: crio ready at [0-9]+us' "$SERIAL" | grep -oE '[0-9]+' | head -n1 || true)
    echo "    power-on → CRI ready (host clock, to the smoke unit's first line): ${READY_SECONDS:-?} s;" \
        "kernel start → crio READY=1 (guest monotonic clock): $(awk -v u="${ready_us:-0}" 'BEGIN { printf "%.1f", u / 1000000 }') s"
    grep -aoE 'NODE-SMOKE: memory: .*' "$SERIAL" | tr -d '\r' | sed 's/^NODE-SMOKE: /    idle node, pod removed: /'
}

bad_boot() {
    # Until the error is on the console, then 20 s more for systemd to give
    # up on crio.service.
    boot bad "$WORK/bad.ign" 'crio.runtime.log_levl' 20
    check "first boot refused the config with the file:line error on the console" \
        grep -aE '/etc/crio/crio.conf.d/50-fleet.conf\):2: crio.runtime.log_levl: unknown key' "$SERIAL"
    check "crio did not start" bash -c "! grep -aE 'Started crio.service' '$SERIAL' && ! grep -aq 'NODE-SMOKE' '$SERIAL'"
}

# hybrid_disk: a copy of the image whose boot entry also has
# systemd.unified_cgroup_hierarchy=0, edited in the ESP (at 1 MiB) with
# mtools; the original stays untouched.
hybrid_disk() {
    local disk=$WORK/hybrid.img entry=$WORK/crio-node.conf
    cp --sparse=always "$IMG" "$disk"
    MTOOLS_SKIP_CHECK=1 mcopy -n -i "$disk@@1M" ::/loader/entries/crio-node.conf "$entry"
    sed -i '/^options / s/$/ systemd.unified_cgroup_hierarchy=0/' "$entry"
    grep -q '^options .*systemd.unified_cgroup_hierarchy=0' "$entry" || { echo "run.sh: no options line in the boot entry" >&2; exit 1; }
    MTOOLS_SKIP_CHECK=1 mcopy -o -i "$disk@@1M" "$entry" ::/loader/entries/crio-node.conf
    echo "$disk"
}

log "image $(basename "$IMG") ($(du -m --apparent-size "$IMG" | cut -f1) MiB)"
for b in $BOOTS; do
    case $b in
    v2)
        log "boot: Ignition config with a crio drop-in and a smoke-test unit (cgroup v2)"
        DISK=$IMG good_boot good v2
        ;;
    bad)
        log "boot: Ignition config with a bad crio drop-in"
        DISK=$IMG bad_boot
        ;;
    v1)
        log "boot: the same good config, systemd.unified_cgroup_hierarchy=0 (hybrid cgroup v1)"
        disk=$(hybrid_disk)
        DISK=$disk good_boot hybrid v1
        ;;
    *) echo "run.sh: unknown boot $b in BOOTS" >&2; exit 2 ;;
    esac
done

summary "image boot test"
