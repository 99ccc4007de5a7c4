#!/usr/bin/env bash
# tests/bundle/run.sh: the release bundle, as an operator meets it. Root.
#
#   1. build: packaging/bundle/build.sh for amd64 and arm64 (in the
#      repository, or in a clone of HEAD when tracked files have changes);
#      then again from a clone at another path: same tarball sha256.
#   2. contents: sha256sums verify, versions and the SPDX SBOM name every
#      component, every ELF is static and of the bundle's architecture.
#   3. amd64: `install` into a scratch DESTDIR (twice: idempotent), start
#      the installed crio on a private drop-in that uses only the bundle's
#      runc and CNI plugins (and the host's conmon, the one requirement),
#      with the bundle's crictl: pull from the local registry, run a pod and
#      a container, exec, stop, remove; `uninstall` keeps a changed config
#      file and removes everything else; install + `uninstall --purge`
#      leaves DESTDIR empty.
#   4. arm64: every binary answers --version (or CNI VERSION) under
#      qemu-aarch64-static, and crio under qemu-user answers a CRI Version
#      call on its socket.
#
# Environment: CRIO_SHARED (the conformance harness, for the local
# registry), KEEP=1 (keep the work directory), SKIP_REPRO=1 (skip the
# second build).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IMAGE=registry.k8s.io/e2e-test-images/busybox:1.29-2
[[ $(id -u) -eq 0 ]] || { echo "run.sh: must run as root" >&2; exit 2; }
# Under /var/tmp: overlay storage needs a real file system, not tmpfs.
WORK=$(mktemp -d /var/tmp/crio-bundletest.XXXXXX)
# shellcheck source=tests/lib.sh
. "$ROOT/tests/lib.sh"
die() { echo "    FATAL: $*" >&2; exit 1; }

HARNESS=
for dir in ${CRIO_SHARED:+"$CRIO_SHARED"} "$ROOT/../shared" /work/shared; do
    if [[ -x $dir/conformance/registry.sh ]]; then HARNESS=$(cd "$dir/conformance" && pwd); break; fi
done
[[ -n $HARNESS ]] || die "conformance harness not found (set CRIO_SHARED)"

# The private pod network: a bridge of this test's own, given its gateway
# address here, so the bridge plugin needs neither isGateway nor ipMasq;
# pods get no default route: traffic stays between them and this host.
BRIDGE=crbundle0
BRIDGE_CIDR=10.213.0.1/24
crio_pid=
bridge_created=false
registry_started=false

stop_crio() {
    [[ -n $crio_pid ]] || return 0
    kill -TERM "$crio_pid" 2>/dev/null || true
    local i
    for i in $(seq 100); do kill -0 "$crio_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$crio_pid" 2>/dev/null || true
    wait "$crio_pid" 2>/dev/null || true
    crio_pid=
}
cleanup() {
    local rc=${1:-$?}
    stop_crio
    # Mounts crio or runc left under the work directory (a failed run).
    awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    $bridge_created && ip link del "$BRIDGE" 2>/dev/null || true
    $registry_started && "$HARNESS/registry.sh" stop >/dev/null 2>&1 || true
    if [[ ${KEEP:-0} == 1 ]]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. build, twice -----------------------------------------------------
version=$(tr -d '[:space:]' <"$ROOT/VERSION")
if git -C "$ROOT" diff --quiet HEAD --; then
    A=$ROOT
else
    log "tracked files have uncommitted changes: building HEAD from a clone"
    git clone -q "$ROOT" "$WORK/a"
    A=$WORK/a
fi
log "build 1 in $A"
start=$(date +%s)
make -s -C "$A" --no-print-directory release-bundle >"$WORK/build1.log" 2>&1 || { tail -n 30 "$WORK/build1.log"; die "make release-bundle failed"; }
echo "    built in $(($(date +%s) - start))s"
for arch in amd64 arm64; do
    t=$A/bundle/crio.$arch.$version.tar.gz
    [[ -f $t ]] || die "$t missing"
    echo "    $(du -h "$t" | cut -f1)  $t"
    check "$arch: .sha256 matches the tarball" bash -c "cd '$A/bundle' && sha256sum -c 'crio.$arch.$version.tar.gz.sha256'"
done
if [[ ${SKIP_REPRO:-0} != 1 ]]; then
    B=$WORK/another/path/crio
    git clone -q "$ROOT" "$B"
    log "build 2 in $B (another path)"
    start=$(date +%s)
    make -s -C "$B" --no-print-directory release-bundle >"$WORK/build2.log" 2>&1 || { tail -n 30 "$WORK/build2.log"; die "second build failed"; }
    echo "    built in $(($(date +%s) - start))s"
    for arch in amd64 arm64; do
        n=crio.$arch.$version.tar.gz
        a=$(sha256sum <"$A/bundle/$n" | cut -d' ' -f1)
        b=$(sha256sum <"$B/bundle/$n" | cut -d' ' -f1)
        echo "    $a  $arch (build 1)"
        echo "    $b  $arch (build 2)"
        if [[ $a == "$b" ]]; then ok "$arch: byte-reproducible"; else
            fail "$arch: the two builds differ"
            diff <(tar -tvzf "$A/bundle/$n") <(tar -tvzf "$B/bundle/$n") | head -n 10 >&2 || true
        fi
    done
fi

# --- 2. contents ---------------------------------------------------------
# elf_ok FILE MACHINE: the ELF header's machine, and no interpreter or
# shared libraries (readelf, not `file`'s guess).
elf_ok() {
    readelf -h "$1" | grep -q "Machine:[[:space:]]*$2" || { echo "$1: $(readelf -h "$1" | grep Machine)"; return 1; }
    ! readelf -lW "$1" | grep -q INTERP || { echo "$1: has PT_INTERP"; return 1; }
    ! readelf -dW "$1" 2>/dev/null | grep -q NEEDED || { echo "$1: NEEDED libraries"; return 1; }
}
contents() { # contents ARCH MACHINE
    local arch=$1 u=$WORK/unpack-$1
    mkdir -p "$u"
    tar -xzf "$A/bundle/crio.$arch.$version.tar.gz" -C "$u"
    check "$arch: sha256sums verify" bash -c "cd '$u/crio' && sha256sum --quiet -c sha256sums"
    check "$arch: sha256sums lists every file" bash -c "cd '$u/crio' && diff <(find . -type f ! -name sha256sums -printf '%P\n' | LC_ALL=C sort) <(cut -c67- sha256sums)"
    local f
    for f in bin/crio bin/crictl libexec/crio/runc cni-plugins/bridge cni-plugins/host-local cni-plugins/loopback \
        cni-plugins/portmap cni-plugins/bandwidth cni-plugins/firewall cni-plugins/tuning etc/10-crio.conf \
        etc/policy.json etc/crio.service etc/crio.env etc/crictl.yaml etc/11-crio-ipv4-bridge.conflist.disabled \
        man/man8/crio.8.gz man/man5/crio.conf.5.gz completions/bash/crio install uninstall versions sbom.spdx.json; do
        [[ -e $u/crio/$f ]] || fail "$arch: $f missing"
    done
    local elves=0 bad=0
    while IFS= read -r -d '' f; do
        [[ $(head -c 4 "$f" | od -An -c | tr -d ' ') == 177ELF ]] || continue
        elves=$((elves + 1))
        elf_ok "$f" "$2" >>"$WORK/elf-$arch.out" || bad=$((bad + 1))
    done < <(find "$u/crio" -type f -print0)
    if [[ $bad -eq 0 && $elves -ge 10 ]]; then ok "$arch: all $elves ELF files static and $2"; else
        fail "$arch: $bad of $elves ELF files not static $2"; cat "$WORK/elf-$arch.out" >&2; fi
    check "$arch: versions names each component" grep -qE '^runc +v[0-9]' "$u/crio/versions"
    check "$arch: SBOM is SPDX 2.3 with the four components and their Go modules" jq -e '
        .spdxVersion == "SPDX-2.3"
        and ([.packages[] | select(.SPDXID | startswith("SPDXRef-component-")) | .name] | sort == ["cni-plugins","crictl","crio","runc"])
        and ([.packages[] | select(.name == "github.com/opencontainers/runc")] | length == 1)
        and ([.packages[] | select(.name == "sigs.k8s.io/cri-tools")] | length == 1)
        and ([.relationships[] | select(.relationshipType == "DEPENDS_ON")] | length > 50)' "$u/crio/sbom.spdx.json"
}
log "contents"
contents amd64 'Advanced Micro Devices X86-64'
contents arm64 'AArch64'

# --- 3. amd64: install, run a pod, uninstall -----------------------------
U=$WORK/unpack-amd64/crio
DEST=$WORK/dest
P=$DEST/usr/local
mkdir -p "$DEST"
log "amd64: install into DESTDIR=$DEST"
check "install" env DESTDIR="$DEST" "$U/install"
cp "$P/share/crio/bundle-manifest" "$WORK/manifest.1"
check "install again (idempotent: same files, same record)" bash -c "DESTDIR='$DEST' '$U/install' && cmp '$WORK/manifest.1' '$P/share/crio/bundle-manifest'"
check "installed drop-in points at the bundle's paths" grep -q 'runtime_path = "/usr/local/libexec/crio/runc"' "$DEST/etc/crio/crio.conf.d/10-crio.conf"
check "installed crio runs" "$P/bin/crio" version
check "install without conmon refuses and says how to get it" bash -c "! CONMON=/nonexistent/conmon DESTDIR='$WORK/dest-noconmon' '$U/install' >'$WORK/noconmon.out' 2>&1 && grep -q 'apt-get install conmon' '$WORK/noconmon.out' && [[ ! -e '$WORK/dest-noconmon' ]]"

# The installed drop-in, then a private one on top: cgroupfs (no systemd
# here), private state, the bundle's runc and CNI plugins under DESTDIR.
T=$WORK/crio
mkdir -p "$T/conf.d" "$T/cni" "$T/runc"
cp "$DEST/etc/crio/crio.conf.d/10-crio.conf" "$T/conf.d/"
cat >"$T/conf.d/99-test.conf" <<CONF
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
seccomp_profile = "$P/share/crio/seccomp.json"
[crio.runtime.runtimes.runc]
runtime_path = "$P/libexec/crio/runc"
runtime_root = "$T/runc"
# A handler table replaces the installed one whole: keep its monitor.
$(grep '^monitor_path' "$DEST/etc/crio/crio.conf.d/10-crio.conf")
[crio.image]
signature_policy = "$DEST/etc/crio/policy.json"
[crio.network]
network_dir = "$T/cni/"
plugin_dirs = ["$P/libexec/cni/"]
CONF
cat >"$T/cni/10-bundle.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "crio-bundle-test", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.213.0.0/24", "gateway": "10.213.0.1"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then ip link add "$BRIDGE" type bridge; bridge_created=true; fi
ip addr replace "$BRIDGE_CIDR" dev "$BRIDGE"
ip link set "$BRIDGE" up
if ! "$HARNESS/registry.sh" status >/dev/null 2>&1; then registry_started=true; fi
"$HARNESS/registry.sh" start >/dev/null

check "crio config validate accepts the private configuration" \
    env CONTAINERS_REGISTRIES_CONF="$HARNESS/registries.conf" "$P/bin/crio" --config /dev/null --config-dir "$T/conf.d" config validate
log "amd64: starting the installed crio"
CONTAINERS_REGISTRIES_CONF=$HARNESS/registries.conf \
    "$P/bin/crio" --config /dev/null --config-dir "$T/conf.d" >"$WORK/crio.log" 2>&1 &
crio_pid=$!
crictl() { "$P/bin/crictl" --timeout 60s --runtime-endpoint "unix://$T/crio.sock" "$@"; }
ready=false
for _ in $(seq 120); do
    kill -0 "$crio_pid" 2>/dev/null || break
    if crictl version >/dev/null 2>&1; then ready=true; break; fi
    sleep 0.5
done
$ready || { tail -n 30 "$WORK/crio.log" >&2; die "installed crio did not answer on $T/crio.sock"; }
ok "installed crio answers the bundle's crictl"
check "crio uses the bundle's runc" bash -c "'$P/bin/crio' --config /dev/null --config-dir '$T/conf.d' config 2>/dev/null | grep -F 'runtime_path = \"$P/libexec/crio/runc\"'"

cat >"$WORK/pod.json" <<JSON
{"metadata": {"name": "bundle-pod", "namespace": "default", "uid": "bundle-pod-uid", "attempt": 0},
 "log_directory": "$T/pods/bundle", "linux": {}}
JSON
cat >"$WORK/ctr.json" <<JSON
{"metadata": {"name": "sleeper"}, "image": {"image": "$IMAGE"},
 "command": ["sleep", "3600"], "log_path": "sleeper.log", "linux": {}}
JSON
check "pull $IMAGE from the local registry" crictl pull "$IMAGE"
pod=$(crictl runp "$WORK/pod.json" 2>"$WORK/runp.err") || { cat "$WORK/runp.err" >&2; tail -n 20 "$WORK/crio.log" >&2; }
if [[ -n $pod ]]; then
    ok "pod $pod runs"
    ctr=$(crictl create "$pod" "$WORK/ctr.json" "$WORK/pod.json" 2>"$WORK/create.err") || cat "$WORK/create.err" >&2
    if [[ -n $ctr ]]; then
        check "container starts" crictl start "$ctr"
        check "container is running under the bundle's runc" bash -c "'$P/libexec/crio/runc' --root '$T/runc' list | grep -q '^$ctr.*running'"
        check "exec into it" bash -c "[[ \$('$P/bin/crictl' --runtime-endpoint 'unix://$T/crio.sock' exec '$ctr' echo hello-bundle) == hello-bundle ]]"
        check "pod has an address on the private bridge" bash -c "crictl() { '$P/bin/crictl' --runtime-endpoint 'unix://$T/crio.sock' \"\$@\"; }; crictl inspectp '$pod' | jq -r .status.network.ip | grep -q '^10\.213\.0\.'"
        check "stop the container" crictl stop -t 5 "$ctr"
        check "remove the container" crictl rm "$ctr"
    else
        fail "container created"
    fi
    check "stop the pod" crictl stopp "$pod"
    check "remove the pod" crictl rmp "$pod"
    check "no pods left" bash -c "[[ -z \$('$P/bin/crictl' --runtime-endpoint 'unix://$T/crio.sock' pods -q) ]]"
else
    fail "pod runs"
fi
stop_crio
awk -v w="$T" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true

log "amd64: uninstall"
echo "# an operator's change" >>"$DEST/etc/crictl.yaml"
check "install keeps an operator's change" bash -c "DESTDIR='$DEST' '$U/install' | grep -q 'keeping /etc/crictl.yaml' && grep -q 'operator' '$DEST/etc/crictl.yaml'"
check "uninstall" env DESTDIR="$DEST" "$U/uninstall"
check "uninstall keeps the changed config file and nothing else" bash -c "[[ \$(cd '$DEST' && find . -type f) == ./etc/crictl.yaml ]]"
rm -f "$DEST/etc/crictl.yaml"
rmdir "$DEST/etc" 2>/dev/null || true
check "install again, uninstall --purge" bash -c "DESTDIR='$DEST' '$U/install' >/dev/null && echo x >>'$DEST/etc/default/crio' && DESTDIR='$DEST' '$U/uninstall' --purge"
check "nothing of the bundle left in DESTDIR" bash -c "[[ -z \$(ls -A '$DEST') ]] || { find '$DEST'; false; }"
check "uninstall again does nothing" env DESTDIR="$DEST" "$U/uninstall"

# --- 4. arm64 under qemu-user --------------------------------------------
log "arm64 under qemu-aarch64-static"
Q=qemu-aarch64-static
command -v $Q >/dev/null || die "$Q not installed"
V=$WORK/unpack-arm64/crio
check "arm64 crio version" $Q "$V/bin/crio" version
check "arm64 crictl --version" $Q "$V/bin/crictl" --version
check "arm64 runc --version (seccomp linked in)" bash -c "$Q '$V/libexec/crio/runc' --version | tee /dev/stderr | grep -q '^libseccomp: 2\.'"
bad=()
for plugin in "$V"/cni-plugins/*; do
    CNI_COMMAND=VERSION $Q "$plugin" </dev/null 2>&1 | grep -q supportedVersions || bad+=("${plugin##*/}")
done
if [[ ${#bad[@]} -eq 0 ]]; then ok "arm64 CNI plugins answer VERSION"; else fail "arm64 CNI plugins not answering VERSION: ${bad[*]}"; fi

# crio under qemu-user on a private configuration: a CRI Version call over
# its socket, made by the amd64 crictl of the bundle.
T=$WORK/crio-arm64
mkdir -p "$T/conf.d" "$T/cni"
cp "$V/etc/10-crio.conf" "$T/conf.d/"
sed -e "s|$WORK/crio|$T|g" -e "s|$P/libexec/crio/runc|$V/libexec/crio/runc|" \
    -e "s|$P/libexec/cni/|$V/cni-plugins/|" -e "s|$P/share/crio/seccomp.json|$V/share/seccomp.json|" \
    "$WORK/crio/conf.d/99-test.conf" >"$T/conf.d/99-test.conf"
$Q "$V/bin/crio" --config /dev/null --config-dir "$T/conf.d" >"$WORK/crio-arm64.log" 2>&1 &
crio_pid=$!
ready=false
for _ in $(seq 240); do
    kill -0 "$crio_pid" 2>/dev/null || break
    if "$U/bin/crictl" --timeout 5s --runtime-endpoint "unix://$T/crio.sock" version >"$WORK/arm-version.out" 2>&1; then ready=true; break; fi
    sleep 0.5
done
if $ready && grep -q 'RuntimeName:.*crio' "$WORK/arm-version.out"; then
    ok "arm64 crio answers CRI Version under qemu-user"
    sed 's/^/        /' "$WORK/arm-version.out"
else
    fail "arm64 crio answers CRI Version under qemu-user"
    tail -n 20 "$WORK/crio-arm64.log" >&2
fi
stop_crio

summary bundle
